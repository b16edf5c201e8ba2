"""node/config.py: config.toml loads into a validated NodeConfig, and every kind of bad
input is refused with a ConfigError naming the field in one line."""

from __future__ import annotations

import pathlib

import pytest

from node.config import (
    ApiSettings,
    ConfigError,
    NodeConfig,
    NodeSettings,
    P2PSettings,
    StoreSettings,
    config_to_toml,
    load_config,
    write_config,
)

KEY_A = "aa" * 32
KEY_B = "bb" * 32
MINIMAL = '[node]\nmoniker = "node-0"\nchain_id = "alps-test"\n'


def write(home: pathlib.Path, text: str) -> pathlib.Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def test_minimal_config_gets_the_documented_defaults(tmp_path: pathlib.Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.node.moniker == "node-0" and cfg.node.chain_id == "alps-test"
    assert cfg.node.genesis_hash == ""
    assert cfg.genesis_path == tmp_path / "genesis.json"
    assert cfg.key_path == tmp_path / "keys" / "validator.json"
    assert cfg.data_path == tmp_path / "data"
    assert cfg.p2p.listen == "/ip4/127.0.0.1/tcp/27000" and dict(cfg.p2p.peers) == {}
    assert cfg.api.listen_host_port == ("127.0.0.1", 8700)
    assert cfg.api.admin_host_port == ("127.0.0.1", 8701)
    assert cfg.api.body_bytes_max == 1048576
    c = cfg.consensus
    assert (c.tick_ms, c.view_change_timeout_ticks) == (50, 40)
    assert (cfg.mempool.size_max, cfg.mempool.forward_batch_max) == (50_000, 1000)
    assert (cfg.block.max_txs, cfg.block.interval_ms) == (2000, 200)
    assert cfg.block.in_flight_max == 2 and cfg.store.compression == "snappy"
    assert (cfg.log.format, cfg.log.level) == ("text", "info")


def test_full_config_with_peers_and_paths(tmp_path: pathlib.Path) -> None:
    text = f"""
[node]
moniker = "n1"
chain_id = "alps-test"
genesis_file = "/etc/alps/genesis.json"
key_file = "secret/k.json"
data_dir = "../shared-data"
genesis_hash = "{"ab" * 32}"
[p2p]
listen = "/ip6/::1/tcp/27001"
peers = {{ "{KEY_A}" = "/ip4/10.0.0.2/tcp/27000", "{KEY_B.upper()}" = "/dns4/node-b/tcp/27000" }}
[api]
listen = "0.0.0.0:9000"
admin_listen = "[::1]:9001"
[log]
format = "json"
level = "debug"
"""
    cfg = load_config(write(tmp_path, text))
    assert cfg.genesis_path == pathlib.Path("/etc/alps/genesis.json")  # absolute kept
    assert cfg.key_path == tmp_path / "secret" / "k.json"  # relative to home
    assert cfg.data_path == tmp_path / ".." / "shared-data"
    assert dict(cfg.p2p.peers) == {
        bytes.fromhex(KEY_A): "/ip4/10.0.0.2/tcp/27000",
        bytes.fromhex(KEY_B): "/dns4/node-b/tcp/27000",
    }
    assert cfg.api.admin_host_port == ("::1", 9001)
    assert cfg.log.format == "json"


def test_written_config_loads_back_equal(tmp_path: pathlib.Path) -> None:
    cfg = NodeConfig(
        home=tmp_path,
        node=NodeSettings("node-3", "alps-test", genesis_hash="cd" * 32),
        p2p=P2PSettings("/ip4/127.0.0.1/tcp/27003", {bytes.fromhex(KEY_A): "/ip4/1.2.3.4/tcp/5"}),
        api=ApiSettings("127.0.0.1:8706", "localhost:8707"),
        store=StoreSettings("none"),
    )
    write_config(cfg, exclusive=True)
    assert load_config(tmp_path) == cfg
    assert '[store]\ncompression = "none"' in (tmp_path / "config.toml").read_text()
    with pytest.raises(FileExistsError):
        write_config(cfg, exclusive=True)
    assert config_to_toml(cfg) == (tmp_path / "config.toml").read_text()


def test_unreadable_or_missing_config(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nowhere")
    assert err.value.field == "config.toml" and "cannot read" in err.value.detail


BAD = [
    # (what, TOML appended to / replacing the minimal config, field, detail fragment)
    ("bad TOML", "[node\n", "config.toml", "bad TOML"),
    ("unknown section", "[bogus]\nx = 1\n", "bogus", "unknown section"),
    ("unknown key", "[api]\nport = 1\n", "api.port", "unknown key"),
    ("string for int", '[api]\nbody_bytes_max = "big"\n', "api.body_bytes_max", "integer"),
    ("bool for int", "[consensus]\ntick_ms = true\n", "consensus.tick_ms", "integer"),
    ("float for int", "[block]\nmax_txs = 1.5\n", "block.max_txs", "integer"),
    ("int for string", "[log]\nlevel = 3\n", "log.level", "string"),
    ("p2p listen garbage", '[p2p]\nlisten = "garbage"\n', "p2p.listen", "bad multiaddr"),
    ("p2p listen udp", '[p2p]\nlisten = "/ip4/127.0.0.1/udp/1"\n', "p2p.listen", "tcp"),
    ("p2p listen dns", '[p2p]\nlisten = "/dns4/a/tcp/1"\n', "p2p.listen", "ip4|ip6"),
    ("p2p listen bad ip", '[p2p]\nlisten = "/ip4/300.1.1.1/tcp/1"\n', "p2p.listen", "bad"),
    ("p2p port 0", '[p2p]\nlisten = "/ip4/127.0.0.1/tcp/0"\n', "p2p.listen", "1..65535"),
    ("peers not table", '[p2p]\npeers = "x"\n', "p2p.peers", "expected a table"),
    ("peer key short", '[p2p.peers]\nabcd = "/ip4/1.2.3.4/tcp/1"\n', "p2p.peers.abcd", "64 hex"),
    ("peer addr bad", f'[p2p.peers]\n{KEY_A} = "/ip4/1.2.3.4"\n', f"p2p.peers.{KEY_A}", "tcp"),
    ("peer addr int", f"[p2p.peers]\n{KEY_A} = 5\n", f"p2p.peers.{KEY_A}", "multiaddr"),
    ("api no port", '[api]\nlisten = "127.0.0.1"\n', "api.listen", "host:port"),
    ("api port range", '[api]\nlisten = "127.0.0.1:70000"\n', "api.listen", "1..65535"),
    ("api bad host", '[api]\nlisten = "bad_host!:80"\n', "api.listen", "bad host"),
    ("admin public", '[api]\nadmin_listen = "0.0.0.0:8701"\n', "api.admin_listen", "loopback"),
    ("admin lan", '[api]\nadmin_listen = "10.0.0.1:8701"\n', "api.admin_listen", "loopback"),
    ("admin name", '[api]\nadmin_listen = "node-a:8701"\n', "api.admin_listen", "loopback"),
    ("admin = api", '[api]\nadmin_listen = "127.0.0.1:8700"\n', "api.admin_listen", "differ"),
    ("body too small", "[api]\nbody_bytes_max = 0\n", "api.body_bytes_max", "1024.."),
    ("tick 0", "[consensus]\ntick_ms = 0\n", "consensus.tick_ms", "1..10000"),
    (  # a protocol constant (node.ledger.certificate), not a setting
        "window is no setting",
        "[consensus]\nwatermark_window = 32\n",
        "consensus.watermark_window",
        "unknown key",
    ),
    (
        "vc timeout 1",
        "[consensus]\nview_change_timeout_ticks = 1\n",
        "consensus.view_change_timeout_ticks",
        "2..",
    ),
    (
        "forward > size",
        "[mempool]\nsize_max = 10\nforward_batch_max = 11\n",
        "mempool.forward_batch_max",
        "1..10",
    ),
    ("block > 10000", "[block]\nmax_txs = 10001\n", "block.max_txs", "1..10000"),
    (
        "block > mempool",
        "[mempool]\nsize_max = 10\nforward_batch_max = 5\n",
        "block.max_txs",
        "mempool.size_max",
    ),
    ("block in flight 0", "[block]\nin_flight_max = 0\n", "block.in_flight_max", "1..8"),
    ("compression", '[store]\ncompression = "zstd"\n', "store.compression", "one of"),
    ("log format", '[log]\nformat = "xml"\n', "log.format", "one of"),
    ("log level", '[log]\nlevel = "loud"\n', "log.level", "one of"),
]


@pytest.mark.parametrize(("what", "extra", "field", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_is_refused_naming_the_field(
    tmp_path: pathlib.Path, what: str, extra: str, field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL + extra))
    assert err.value.field == field, what
    assert fragment in err.value.detail, (what, err.value.detail)
    assert "\n" not in str(err.value)


NODE_BAD = [
    ("section not a table", "api = 5\n" + MINIMAL, "api", "expected a table"),
    ("no node section", '[log]\nlevel = "info"\n', "node", "required"),
    ("no moniker", '[node]\nchain_id = "alps-test"\n', "node.moniker", "required"),
    ("no chain id", '[node]\nmoniker = "n"\n', "node.chain_id", "required"),
    ("bad chain id", '[node]\nmoniker = "n"\nchain_id = "Bad Chain"\n', "node.chain_id", "a-z0-9"),
    ("bad moniker", '[node]\nmoniker = "a b"\nchain_id = "c"\n', "node.moniker", "A-Za-z0-9"),
    (
        "bad hash",
        '[node]\nmoniker = "n"\nchain_id = "c"\ngenesis_hash = "xyz"\n',
        "node.genesis_hash",
        "64 hex",
    ),
    (
        "empty path",
        '[node]\nmoniker = "n"\nchain_id = "c"\nkey_file = ""\n',
        "node.key_file",
        "bad path",
    ),
]


@pytest.mark.parametrize(
    ("what", "text", "field", "fragment"), NODE_BAD, ids=[b[0] for b in NODE_BAD]
)
def test_bad_node_section_is_refused(
    tmp_path: pathlib.Path, what: str, text: str, field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert (err.value.field, fragment in err.value.detail) == (field, True), err.value


def test_sections_validate_when_built_in_python() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        ApiSettings(admin_listen="192.168.1.1:8701")
    with pytest.raises(ConfigError, match="32-byte"):
        P2PSettings(peers={b"short": "/ip4/1.2.3.4/tcp/1"})
