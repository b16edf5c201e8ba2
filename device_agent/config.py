"""The agent's config file (TOML, read with the standard library's tomllib).

Rule kept here: a config that loads is complete and in range; everything else raises
ConfigError naming the key. Relative paths are relative to the config file's directory.
See README.md ("Device agent") for an annotated example.
"""

from __future__ import annotations

import pathlib
import tomllib
from dataclasses import dataclass, field
from typing import Any

from device_agent.errors import ConfigError
from node.ledger.tx import CHAIN_ID_RE
from node.ledger.usage import SKU_RE, TERRITORY_RE

SOURCE_KINDS = ("simulated", "counter_file", "lines", "command")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    chain_id: str
    sku: str
    territory: str
    key_file: pathlib.Path
    state_dir: pathlib.Path
    endpoints: tuple[str, ...]
    source: SourceConfig
    passphrase_file: pathlib.Path | None = None
    timeout_s: float = 5.0
    batch_size_max: int = 100
    backoff_base_s: float = 0.5
    backoff_max_s: float = 300.0
    confirm_interval_s: float = 1.0
    confirm_lookups_max: int = 5
    enrolment_check_s: float = 60.0
    clock_skew_warn_s: float = 120.0
    jitter_seed: int | None = None
    records_max: int = 10_000
    record_interval_s: float = 10.0
    tick_s: float = 0.5
    log_level: str = "info"

    @property
    def outbox_path(self) -> pathlib.Path:
        return self.state_dir / "outbox.sqlite"


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ConfigError("missing", f"{where}.{key} is required")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError("wrong_type", f"{where}.{key} has the wrong type")
    return value


def _opt(table: dict[str, Any], key: str, default: Any, where: str) -> Any:
    if key not in table:
        return default
    kind: type | tuple[type, ...] = (int, float) if isinstance(default, float) else type(default)
    return _get(table, key, kind, where)


def _path(base: pathlib.Path, value: str) -> pathlib.Path:
    path = pathlib.Path(value).expanduser()
    return path if path.is_absolute() else base / path


def load(path: str | pathlib.Path) -> AgentConfig:
    """Read and validate the config file at `path`."""
    path = pathlib.Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("unreadable", f"{path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("bad_toml", f"{path}: {exc}") from exc
    return from_dict(raw, path.resolve().parent)


def from_dict(raw: dict[str, Any], base: pathlib.Path) -> AgentConfig:
    device = _get(raw, "device", dict, "config")
    nodes = _get(raw, "nodes", dict, "config")
    upload = raw.get("upload", {})
    outbox = raw.get("outbox", {})
    record = raw.get("record", {})
    source = _get(raw, "source", dict, "config")
    kind = _get(source, "kind", str, "source")
    if kind not in SOURCE_KINDS:
        raise ConfigError("bad_value", f"source.kind must be one of {SOURCE_KINDS}")
    params = {k: v for k, v in source.items() if k != "kind"}
    sku = _get(device, "sku", str, "device")
    territory = _get(device, "territory", str, "device")
    if kind == "simulated":  # a simulated product may stand in for another SKU/territory
        sku = params.get("sku", sku)
        territory = params.get("territory", territory)
    passphrase_file = _opt(device, "passphrase_file", "", "device")
    seed = upload.get("jitter_seed")
    cfg = AgentConfig(
        chain_id=_get(device, "chain_id", str, "device"),
        sku=sku,
        territory=territory,
        key_file=_path(base, _get(device, "key_file", str, "device")),
        state_dir=_path(base, _get(device, "state_dir", str, "device")),
        passphrase_file=_path(base, passphrase_file) if passphrase_file else None,
        endpoints=tuple(_get(nodes, "endpoints", list, "nodes")),
        timeout_s=float(_opt(nodes, "timeout_s", 5.0, "nodes")),
        source=SourceConfig(kind, params),
        batch_size_max=_opt(upload, "batch_size_max", 100, "upload"),
        backoff_base_s=float(_opt(upload, "backoff_base_s", 0.5, "upload")),
        backoff_max_s=float(_opt(upload, "backoff_max_s", 300.0, "upload")),
        confirm_interval_s=float(_opt(upload, "confirm_interval_s", 1.0, "upload")),
        confirm_lookups_max=_opt(upload, "confirm_lookups_max", 5, "upload"),
        enrolment_check_s=float(_opt(upload, "enrolment_check_s", 60.0, "upload")),
        clock_skew_warn_s=float(_opt(upload, "clock_skew_warn_s", 120.0, "upload")),
        jitter_seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        records_max=_opt(outbox, "records_max", 10_000, "outbox"),
        record_interval_s=float(_opt(record, "interval_s", 10.0, "record")),
        tick_s=float(_opt(record, "tick_s", 0.5, "record")),
        log_level=_opt(raw.get("log", {}), "level", "info", "log"),
    )
    validate(cfg)
    return cfg


def validate(cfg: AgentConfig) -> None:
    checks = [
        (bool(CHAIN_ID_RE.match(cfg.chain_id)), "device.chain_id is not a valid chain id"),
        (bool(SKU_RE.match(cfg.sku)), "device.sku is not a valid SKU"),
        (bool(TERRITORY_RE.match(cfg.territory)), "device.territory must be ISO 3166 alpha-2"),
        (1 <= len(cfg.endpoints) <= 16, "nodes.endpoints needs 1..16 URLs"),
        (
            all(
                isinstance(e, str) and e.startswith(("http://", "https://")) for e in cfg.endpoints
            ),
            "nodes.endpoints must be http:// or https:// URLs",
        ),
        (0 < cfg.timeout_s <= 300, "nodes.timeout_s must be in (0, 300]"),
        (1 <= cfg.batch_size_max <= 1000, "upload.batch_size_max must be in 1..1000"),
        (0 < cfg.backoff_base_s <= cfg.backoff_max_s, "need 0 < backoff_base_s <= backoff_max_s"),
        (cfg.backoff_max_s <= 3600, "upload.backoff_max_s must be at most 3600"),
        (cfg.confirm_interval_s > 0 and cfg.confirm_lookups_max >= 1, "bad confirm settings"),
        (cfg.enrolment_check_s > 0, "upload.enrolment_check_s must be positive"),
        (2 <= cfg.records_max <= 10_000_000, "outbox.records_max must be in 2..10,000,000"),
        (cfg.record_interval_s >= 0, "record.interval_s must be >= 0"),
        (0 < cfg.tick_s <= 60, "record.tick_s must be in (0, 60]"),
        (cfg.log_level in ("debug", "info", "warning", "error"), "bad log.level"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError("bad_value", message)
