"""The `alps` commands: init, keys, the genesis ceremony, install and node start. The
ceremony run through the commands yields the same genesis hash as building the Genesis
in Python; every user error is one line and a non-zero exit status."""

from __future__ import annotations

import pathlib
import stat
import sys
import types

import pytest

import cli.main
import contracts_vm
from node.config import load_config
from node.genesis_file import genesis_hash, load_genesis, read_genesis
from node.keys import load_signer
from node.ledger.genesis import Genesis, Params
from node.ledger.model import Member
from tests.cli.helpers import ok, one_line_error, run

T0 = 1_767_225_600_000


def init(home: pathlib.Path, moniker: str = "node-0", *extra: str) -> bytes:
    out = ok("init", "--home", home, "--moniker", moniker, "--chain-id", "alps-test", *extra)
    return bytes.fromhex(out.strip())


def test_init_creates_a_loadable_home(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "n0"
    key = init(home, "node-0", "--p2p-port", "27100", "--api-port", "8800")
    cfg = load_config(home)
    assert cfg.node.moniker == "node-0" and cfg.node.chain_id == "alps-test"
    assert cfg.p2p.listen == "/ip4/127.0.0.1/tcp/27100"
    assert (cfg.api.listen, cfg.api.admin_listen) == ("127.0.0.1:8800", "127.0.0.1:8801")
    assert stat.S_IMODE(cfg.key_path.stat().st_mode) == 0o600
    assert load_signer(cfg.key_path).public_key == key
    assert ok("keys", "show", "--home", home).strip() == key.hex()


def test_init_refuses_an_existing_home(tmp_path: pathlib.Path) -> None:
    home = tmp_path / "n0"
    init(home)
    config_before = (home / "config.toml").read_bytes()
    key_before = (home / "keys" / "validator.json").read_bytes()
    line = one_line_error(run("init", "--home", home, "--moniker", "other"))
    assert "already exists" in line
    assert (home / "config.toml").read_bytes() == config_before
    assert (home / "keys" / "validator.json").read_bytes() == key_before


def test_keys_new_writes_a_private_member_key_once(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "members" / "bank.json"
    key = bytes.fromhex(ok("keys", "new", "--out", out).strip())
    assert load_signer(out).public_key == key
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "already exists" in one_line_error(run("keys", "new", "--out", out))


def ceremony(tmp_path: pathlib.Path, file: pathlib.Path) -> tuple[list[bytes], dict[str, bytes]]:
    """Two validator homes and three members, through the commands only."""
    validators = [init(tmp_path / f"n{i}", f"node-{i}") for i in range(2)]
    members = {
        name: bytes.fromhex(ok("keys", "new", "--out", tmp_path / f"{name}.json").strip())
        for name in ("codec", "oem", "bank")
    }
    ok("genesis", "new", file, "--chain-id", "alps-test", "--time-ms", str(T0))
    for i, key in enumerate(validators):
        ok("genesis", "add-member", file, "--name", f"node-{i}", "--key", key.hex(), "--validator")
    ok(
        "genesis",
        "add-member",
        file,
        "--name",
        "codec",
        "--key",
        members["codec"].hex(),
        "--roles",
        "licensor",
    )
    ok(
        "genesis",
        "add-member",
        file,
        "--name",
        "oem",
        "--key",
        members["oem"].hex().upper(),
        "--roles",
        "licensee,licensor",
    )
    ok(
        "genesis",
        "add-member",
        file,
        "--name",
        "bank",
        "--key",
        members["bank"].hex(),
        "--roles",
        "bank,auditor",
        "--validator",
    )
    return validators, members


def test_ceremony_builds_the_same_genesis_as_python(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "genesis.json"
    validators, members = ceremony(tmp_path, file)
    expected = Genesis(
        "alps-test",
        T0,
        (
            Member("node-0", validators[0], ("validator",)),
            Member("node-1", validators[1], ("validator",)),
            Member("codec", members["codec"], ("licensor",)),
            Member("oem", members["oem"], ("licensee", "licensor")),
            Member("bank", members["bank"], ("auditor", "bank", "validator")),
        ),
        (validators[0], validators[1], members["bank"]),
        Params(contracts_vm.VM_VERSION, 2_000_000, 2000),
    )
    assert read_genesis(file) == expected
    assert ok("genesis", "hash", file).strip() == genesis_hash(expected)
    shown = ok("genesis", "show", file)
    assert f"hash             {genesis_hash(expected)}" in shown
    assert "bank" in shown and "(validator #2)" in shown


def test_install_pins_the_hash_and_warns_a_non_validator(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "genesis.json"
    ceremony(tmp_path, file)
    h = ok("genesis", "hash", file).strip()
    result = run("genesis", "install", file, "--home", tmp_path / "n0")
    assert result.exit_code == 0 and result.stderr == "", result.output
    cfg = load_config(tmp_path / "n0")
    assert cfg.node.genesis_hash == h
    assert genesis_hash(load_genesis(cfg)) == h
    outsider = tmp_path / "outsider"
    init(outsider, "outsider")
    result = run("genesis", "install", file, "--home", outsider)
    assert result.exit_code == 0
    assert (
        result.stderr.startswith("warning: this node's key") and "not a validator" in result.stderr
    )
    assert load_config(outsider).node.genesis_hash == h


def test_install_refuses_another_chain_and_a_second_genesis(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "genesis.json"
    validators, _ = ceremony(tmp_path, file)
    ok("genesis", "install", file, "--home", tmp_path / "n0")
    other = tmp_path / "other.json"
    ok("genesis", "new", other, "--chain-id", "alps-test", "--time-ms", "5")
    ok("genesis", "add-member", other, "--name", "v", "--key", validators[0].hex(), "--validator")
    line = one_line_error(run("genesis", "install", other, "--home", tmp_path / "n0"))
    assert "another genesis" in line and "--force" in line
    ok("genesis", "install", other, "--home", tmp_path / "n0", "--force")
    assert load_config(tmp_path / "n0").node.genesis_hash == ok("genesis", "hash", other).strip()
    foreign = tmp_path / "foreign.json"
    ok("genesis", "new", foreign, "--chain-id", "other-chain", "--time-ms", "5")
    ok("genesis", "add-member", foreign, "--name", "v", "--key", validators[0].hex(), "--validator")
    line = one_line_error(run("genesis", "install", foreign, "--home", tmp_path / "n1"))
    assert "'other-chain'" in line
    assert load_config(tmp_path / "n1").node.genesis_hash == ""


def test_genesis_new_refuses_an_existing_file(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "g.json"
    ok("genesis", "new", file, "--chain-id", "alps-test")
    before = file.read_bytes()
    assert "already exists" in one_line_error(run("genesis", "new", file, "--chain-id", "x"))
    assert file.read_bytes() == before


KEY = "ab" * 32


def errors_table(tmp: pathlib.Path) -> list[tuple[str, list[str], int, str]]:
    g = str(tmp / "g.json")
    return [
        ("missing option", ["init", "--home", str(tmp / "h")], 2, "Missing option '--moniker'"),
        ("unknown command", ["frobnicate"], 2, "No such command"),
        (
            "bad port",
            ["init", "--home", str(tmp / "h"), "--moniker", "a", "--p2p-port", "0"],
            2,
            "--p2p-port",
        ),
        ("bad moniker", ["init", "--home", str(tmp / "h"), "--moniker", "a b"], 1, "node.moniker"),
        ("bad chain id", ["genesis", "new", g, "--chain-id", "BAD"], 2, "--chain-id"),
        (
            "bad key hex",
            ["genesis", "add-member", g, "--name", "a", "--key", "xyz", "--roles", "bank"],
            2,
            "64 hex",
        ),
        (
            "unknown role",
            ["genesis", "add-member", g, "--name", "a", "--key", KEY, "--roles", "king"],
            1,
            "unknown roles",
        ),
        ("no role", ["genesis", "add-member", g, "--name", "a", "--key", KEY], 2, "--roles"),
        ("incomplete hash", ["genesis", "hash", g], 1, "no validators yet"),
        ("missing file", ["genesis", "show", str(tmp / "none.json")], 1, "cannot read"),
        ("no home", ["keys", "show", "--home", str(tmp / "nohome")], 1, "config.toml"),
        ("not installed", ["node", "start", "--home", str(tmp / "h2")], 1, "no genesis installed"),
        ("insecure key", ["keys", "show", "--home", str(tmp / "h3")], 1, "chmod 600"),
        ("bad toml", ["node", "start", "--home", str(tmp / "h4")], 1, "bad TOML"),
    ]


def test_every_user_error_is_one_line_and_non_zero(tmp_path: pathlib.Path) -> None:
    ok("genesis", "new", tmp_path / "g.json", "--chain-id", "alps-test")
    init(tmp_path / "h2", "h2")
    init(tmp_path / "h3", "h3")
    (tmp_path / "h3" / "keys" / "validator.json").chmod(0o644)
    (tmp_path / "h4").mkdir()
    (tmp_path / "h4" / "config.toml").write_text("[node\n")
    for what, argv, code, fragment in errors_table(tmp_path):
        result = run(*argv)
        line = one_line_error(result)
        assert result.exit_code == code, (what, result.exit_code, line)
        assert fragment in line, (what, line)


def installed(tmp_path: pathlib.Path) -> pathlib.Path:
    file = tmp_path / "genesis.json"
    ceremony(tmp_path, file)
    ok("genesis", "install", file, "--home", tmp_path / "n0")
    return tmp_path / "n0"


def test_node_start_without_the_daemon_is_one_line(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = installed(tmp_path)
    monkeypatch.setattr(cli.main, "DAEMON_MODULE", "node.runtime.no_such_daemon_module")
    line = one_line_error(run("node", "start", "--home", home))
    assert "not built yet" in line


def test_node_start_runs_the_daemon_with_the_loaded_config(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = installed(tmp_path)
    calls = []
    fake = types.ModuleType("fake_alps_daemon")
    fake.run = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_alps_daemon", fake)
    monkeypatch.setattr(cli.main, "DAEMON_MODULE", "fake_alps_daemon")
    ok("node", "start", "--home", home)
    assert calls == [load_config(home)]
