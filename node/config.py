"""The node's configuration: `<home>/config.toml`, read with tomllib, written with tomli-w.

Rule kept here: a `NodeConfig` that exists is complete and in range. Each section is a
frozen dataclass validated on construction; the loader refuses bad TOML, unknown sections
or keys, wrong types and bad addresses with a `ConfigError` naming the field
(`api.admin_listen`) and saying why in one line. Relative paths are relative to the home
directory (`NodeConfig.resolve`), so a home can be moved as a whole.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import pathlib
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import tomli_w
from multiaddr import Multiaddr
from multiaddr.exceptions import Error as MultiaddrError

from node.errors import SetupError
from node.ledger.certificate import MAX_VALIDATORS
from node.ledger.crypto import PUBLIC_KEY_BYTES
from node.ledger.tx import CHAIN_ID_RE

CONFIG_FILE = "config.toml"
MONIKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HASH_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
KEY_HEX_RE = re.compile(r"^[0-9a-fA-F]{64}$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*$")
LISTEN_PROTOCOLS = ("ip4", "ip6")
DIAL_PROTOCOLS = ("ip4", "ip6", "dns", "dns4", "dns6")
LOG_FORMATS = ("text", "json")
STORE_COMPRESSIONS = ("snappy", "none")
LOG_LEVELS = ("debug", "info", "warning", "error")
CONFIG_BYTES_MAX = 1024 * 1024


class ConfigError(SetupError):
    """A config file that cannot be read, or a field that is missing, unknown or invalid."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(field, detail)
        self.field = field


# -- field checks ------------------------------------------------------------------------


def _check(condition: bool, where: str, detail: str) -> None:
    if not condition:
        raise ConfigError(where, detail)


def _int_in(value: int, where: str, low: int, high: int) -> None:
    _check(type(value) is int, where, "expected an integer")
    _check(low <= value <= high, where, f"must be in {low}..{high}, got {value}")


def _matches(value: str, pattern: re.Pattern[str], where: str, what: str) -> None:
    _check(isinstance(value, str) and bool(pattern.match(value)), where, f"{what}, got {value!r}")


def _relative_or_absolute_path(value: str, where: str) -> None:
    _check(isinstance(value, str) and value != "" and "\0" not in value, where, "bad path")


def check_multiaddr(text: str, where: str, protocols: tuple[str, ...]) -> int:
    """Validate a libp2p TCP multiaddr such as /ip4/127.0.0.1/tcp/27000; return its port."""
    try:
        names = [p.name for p in Multiaddr(text).protocols()]
        port = int(Multiaddr(text).value_for_protocol("tcp")) if "tcp" in names else 0
    except (MultiaddrError, ValueError, TypeError) as exc:
        raise ConfigError(where, f"bad multiaddr {text!r}: {exc}") from exc
    ok = len(names) >= 2 and names[0] in protocols and names[1] == "tcp"
    _check(ok, where, f"expected /{'|'.join(protocols)}/<host>/tcp/<port>, got {text!r}")
    _int_in(port, where, 1, 65535)
    return port


def parse_host_port(text: str, where: str) -> tuple[str, int]:
    """Split "host:port" or "[ipv6]:port"; the host is an IP literal or a DNS name."""
    _check(isinstance(text, str), where, "expected a string host:port")
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text)
    _check(m is not None, where, f"expected host:port, got {text!r}")
    assert m is not None
    host, port = (m[1], m[2]) if m[1] is not None else (m[3], m[4])
    if m[1] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ConfigError(where, f"bad IPv6 address {host!r}") from exc
    elif not _is_ip(host):
        _check(bool(HOSTNAME_RE.match(host)), where, f"bad host {host!r}")
    _int_in(int(port), where, 1, 65535)
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


# -- sections ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """[node]: who this node is and where its files are (paths relative to home)."""

    SECTION: ClassVar[str] = "node"
    moniker: str
    chain_id: str
    genesis_file: str = "genesis.json"
    genesis_hash: str = ""  # hex sha256 of the installed genesis; "" until installed
    key_file: str = "keys/validator.json"
    data_dir: str = "data"

    def __post_init__(self) -> None:
        _matches(self.moniker, MONIKER_RE, "node.moniker", "expected [A-Za-z0-9._-], <= 64")
        _matches(self.chain_id, CHAIN_ID_RE, "node.chain_id", "expected [a-z0-9._-], <= 64")
        gh = self.genesis_hash
        _check(gh == "" or bool(HASH_HEX_RE.match(gh)), "node.genesis_hash", "expected 64 hex")
        for name in ("genesis_file", "key_file", "data_dir"):
            _relative_or_absolute_path(getattr(self, name), f"node.{name}")


@dataclass(frozen=True, slots=True)
class P2PSettings:
    """[p2p]: where this validator listens and the other validators (public key -> addr)."""

    SECTION: ClassVar[str] = "p2p"
    listen: str = "/ip4/127.0.0.1/tcp/27000"
    peers: Mapping[bytes, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        check_multiaddr(self.listen, "p2p.listen", LISTEN_PROTOCOLS)
        _check(isinstance(self.peers, Mapping), "p2p.peers", "expected a table")
        _check(len(self.peers) < MAX_VALIDATORS, "p2p.peers", "too many peers")
        for key, addr in self.peers.items():
            where = f"p2p.peers.{key.hex() if isinstance(key, bytes) else key}"
            ok = isinstance(key, bytes) and len(key) == PUBLIC_KEY_BYTES
            _check(ok, where, "a peer key is a 32-byte public key (64 hex digits)")
            _check(isinstance(addr, str), where, "expected a multiaddr string")
            check_multiaddr(addr, where, DIAL_PROTOCOLS)
        object.__setattr__(self, "peers", MappingProxyType(dict(self.peers)))


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """[api]: the public HTTP API and the admin API (loopback only)."""

    SECTION: ClassVar[str] = "api"
    listen: str = "127.0.0.1:8700"
    admin_listen: str = "127.0.0.1:8701"
    body_bytes_max: int = 1024 * 1024

    def __post_init__(self) -> None:
        listen = parse_host_port(self.listen, "api.listen")
        admin = parse_host_port(self.admin_listen, "api.admin_listen")
        _check(is_loopback(admin[0]), "api.admin_listen", f"must be loopback, got {admin[0]!r}")
        _check(listen != admin, "api.admin_listen", "must differ from api.listen")
        _int_in(self.body_bytes_max, "api.body_bytes_max", 1024, 64 * 1024 * 1024)

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "api.listen")

    @property
    def admin_host_port(self) -> tuple[str, int]:
        return parse_host_port(self.admin_listen, "api.admin_listen")


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    """[consensus]: logical time (consensus.types.Config). The PBFT checkpoint interval
    and watermark window are protocol constants (node.ledger.certificate), not settings:
    they fix the height a validator-set change activates at, which every node and every
    offline verifier must agree on."""

    SECTION: ClassVar[str] = "consensus"
    tick_ms: int = 50
    view_change_timeout_ticks: int = 40

    def __post_init__(self) -> None:
        _int_in(self.tick_ms, "consensus.tick_ms", 1, 10_000)
        _int_in(self.view_change_timeout_ticks, "consensus.view_change_timeout_ticks", 2, 10**6)


@dataclass(frozen=True, slots=True)
class MempoolSettings:
    """[mempool]: bounded pending transactions; batches forwarded to the primary."""

    SECTION: ClassVar[str] = "mempool"
    size_max: int = 50_000
    forward_batch_max: int = 1000

    def __post_init__(self) -> None:
        _int_in(self.size_max, "mempool.size_max", 1, 10_000_000)
        _int_in(self.forward_batch_max, "mempool.forward_batch_max", 1, self.size_max)


@dataclass(frozen=True, slots=True)
class BlockSettings:
    """[block]: what the primary proposes (never more than genesis params allow)."""

    SECTION: ClassVar[str] = "block"
    max_txs: int = 2000
    interval_ms: int = 200
    in_flight_max: int = 2  # proposed and not yet committed (1: no pipelining)

    def __post_init__(self) -> None:
        _int_in(self.max_txs, "block.max_txs", 1, 10_000)
        _int_in(self.interval_ms, "block.interval_ms", 1, 60_000)
        _int_in(self.in_flight_max, "block.in_flight_max", 1, 8)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """[store]: the LevelDB under data_dir. `compression` of its tables: "snappy" (LevelDB's
    default) halves the disk a usage record takes (~335 -> ~635 bytes without it) for
    background CPU (~15 us per usage record when 4 validators share 2 cores); "none" gives
    that CPU back where cores are scarce (the cluster benchmark)."""

    SECTION: ClassVar[str] = "store"
    compression: str = "snappy"

    def __post_init__(self) -> None:
        _check(
            self.compression in STORE_COMPRESSIONS,
            "store.compression",
            f"must be one of {STORE_COMPRESSIONS}",
        )


@dataclass(frozen=True, slots=True)
class LogSettings:
    SECTION: ClassVar[str] = "log"
    format: str = "text"
    level: str = "info"

    def __post_init__(self) -> None:
        _check(self.format in LOG_FORMATS, "log.format", f"must be one of {LOG_FORMATS}")
        _check(self.level in LOG_LEVELS, "log.level", f"must be one of {LOG_LEVELS}")


Section = (
    NodeSettings
    | P2PSettings
    | ApiSettings
    | ConsensusSettings
    | MempoolSettings
    | BlockSettings
    | StoreSettings
    | LogSettings
)
SECTIONS: tuple[type[Section], ...] = (
    NodeSettings,
    P2PSettings,
    ApiSettings,
    ConsensusSettings,
    MempoolSettings,
    BlockSettings,
    StoreSettings,
    LogSettings,
)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's whole configuration; `home` is the directory holding config.toml."""

    home: pathlib.Path
    node: NodeSettings
    p2p: P2PSettings = field(default_factory=P2PSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    consensus: ConsensusSettings = field(default_factory=ConsensusSettings)
    mempool: MempoolSettings = field(default_factory=MempoolSettings)
    block: BlockSettings = field(default_factory=BlockSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def __post_init__(self) -> None:
        _check(isinstance(self.home, pathlib.Path), "home", "expected a path")
        _check(
            self.block.max_txs <= self.mempool.size_max,
            "block.max_txs",
            "must not exceed mempool.size_max",
        )

    def resolve(self, path: str) -> pathlib.Path:
        """A path from the config: absolute as written, else relative to home."""
        return self.home / pathlib.Path(path).expanduser()

    @property
    def config_path(self) -> pathlib.Path:
        return self.home / CONFIG_FILE

    @property
    def genesis_path(self) -> pathlib.Path:
        return self.resolve(self.node.genesis_file)

    @property
    def key_path(self) -> pathlib.Path:
        return self.resolve(self.node.key_file)

    @property
    def data_path(self) -> pathlib.Path:
        return self.resolve(self.node.data_dir)

    @property
    def listen_ports(self) -> dict[str, int]:
        """The TCP ports the node binds on start, by what binds them."""
        return {
            "p2p": check_multiaddr(self.p2p.listen, "p2p.listen", LISTEN_PROTOCOLS),
            "api": self.api.listen_host_port[1],
            "admin": self.api.admin_host_port[1],
        }

    def with_genesis_hash(self, genesis_hash: str) -> NodeConfig:
        return dataclasses.replace(
            self, node=dataclasses.replace(self.node, genesis_hash=genesis_hash)
        )


# -- loading ---------------------------------------------------------------------------------


def load_config(home: str | os.PathLike[str]) -> NodeConfig:
    """Read and validate `<home>/config.toml`."""
    home_path = pathlib.Path(home).absolute()
    path = home_path / CONFIG_FILE
    try:
        with path.open("rb") as f:
            data = f.read(CONFIG_BYTES_MAX + 1)
    except OSError as exc:
        raise ConfigError(CONFIG_FILE, f"cannot read {path}: {exc.strerror or exc}") from exc
    _check(len(data) <= CONFIG_BYTES_MAX, CONFIG_FILE, f"{path} is larger than 1 MiB")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(CONFIG_FILE, f"bad TOML in {path}: {exc}") from exc
    return config_from_dict(raw, home_path)


def config_from_dict(raw: Mapping[str, Any], home: pathlib.Path) -> NodeConfig:
    """Build a NodeConfig from parsed TOML (a dict of section tables)."""
    known = {cls.SECTION: cls for cls in SECTIONS}
    for name in raw:
        _check(name in known, name, f"unknown section (known: {', '.join(known)})")
    _check("node" in raw, "node", "the [node] section is required")
    sections = {name: _section(cls, raw.get(name, {})) for name, cls in known.items()}
    return NodeConfig(home=home, **sections)  # type: ignore[arg-type]


def _section(cls: type[Section], table: Any) -> Section:
    _check(isinstance(table, dict), cls.SECTION, "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{cls.SECTION}.{key}"
        _check(key in fields, where, f"unknown key (known: {', '.join(fields)})")
        kind = hints[key]
        if kind is str or kind is int:
            ok = type(value) is kind
            _check(ok, where, f"expected {'a string' if kind is str else 'an integer'}")
            kwargs[key] = value
        else:  # p2p.peers: a table of public key hex -> multiaddr
            kwargs[key] = _peers(value, where)
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        _check(name in kwargs or not missing, f"{cls.SECTION}.{name}", "required")
    return cls(**kwargs)


def _peers(value: Any, where: str) -> dict[bytes, str]:
    _check(isinstance(value, dict), where, "expected a table of public key hex = multiaddr")
    out: dict[bytes, str] = {}
    for key, addr in value.items():
        _check(bool(KEY_HEX_RE.match(key)), f"{where}.{key}", "key must be 64 hex digits")
        _check(isinstance(addr, str), f"{where}.{key}", "expected a multiaddr string")
        out[bytes.fromhex(key)] = addr
    return out


# -- writing ---------------------------------------------------------------------------------


def config_document(cfg: NodeConfig) -> dict[str, dict[str, Any]]:
    """The TOML document for `cfg` (every field written, so operators see the defaults)."""
    doc: dict[str, dict[str, Any]] = {}
    for cls in SECTIONS:
        section = getattr(cfg, cls.SECTION)
        table: dict[str, Any] = {}
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, Mapping):
                value = {k.hex(): v for k, v in sorted(value.items())}
            table[f.name] = value
        doc[cls.SECTION] = table
    return doc


def config_to_toml(cfg: NodeConfig) -> str:
    header = "# ALPS node configuration. Relative paths are relative to this directory.\n\n"
    return header + tomli_w.dumps(config_document(cfg))


def write_config(cfg: NodeConfig, *, exclusive: bool = False) -> pathlib.Path:
    """Write `cfg` to `<home>/config.toml` atomically; with `exclusive`, refuse an existing
    file. Comments in an existing file are not kept (the file is rewritten from `cfg`)."""
    write_atomic(cfg.config_path, config_to_toml(cfg).encode(), exclusive=exclusive)
    return cfg.config_path


def write_atomic(
    path: pathlib.Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False
) -> None:
    """Write `data` to `path` so a crash leaves the old file or the new one, never half.
    With `exclusive`, fail with FileExistsError if `path` exists (checked atomically)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
