"""Usage sources: where the agent learns the product's cumulative registers.

Each source turns its input into `Update`s: an absolute cumulative value (`units=120`) or
a delta (`units+=3`). `apply_updates` folds them into the registers the agent signs;
it never lets a register go backwards (a lower absolute value is logged and ignored) and
rejects metric names the ledger would reject.

Input formats (counter file, command output, socket/stdin lines): one `metric=value` or
`metric+=delta` per line, or a JSON object `{"metric": value, ...}` (absolute values).
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import random
import socketserver
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any, Protocol

from device_agent.config import SourceConfig
from device_agent.errors import ConfigError
from device_agent.log import Logger
from node.ledger.usage import MAX_METRICS, MAX_REGISTER, METRIC_RE

LINE_BYTES_MAX = 4096
QUEUE_LINES_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Update:
    metric: str
    value: int
    absolute: bool


class Source(Protocol):
    def poll(self, now_s: float) -> list[Update]: ...

    def close(self) -> None: ...


class BadInput(ValueError):
    pass


def parse_text(text: str) -> list[Update]:
    """Parse counter-file / command / line input (raises BadInput)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"bad JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise BadInput("JSON input must be an object")
        return [_update(str(k), v, True) for k, v in doc.items()]
    updates = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "+=" in line:
            metric, _, value = line.partition("+=")
            updates.append(_update(metric.strip(), _int(value), False))
        elif "=" in line:
            metric, _, value = line.partition("=")
            updates.append(_update(metric.strip(), _int(value), True))
        else:
            raise BadInput(f"line {line[:80]!r} is neither metric=value nor metric+=delta")
    return updates


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError as exc:
        raise BadInput(f"{text.strip()[:40]!r} is not an integer") from exc


def _update(metric: str, value: Any, absolute: bool) -> Update:
    if not METRIC_RE.match(metric):
        raise BadInput(f"bad metric name {metric[:40]!r}")
    if type(value) is not int or not 0 <= value <= MAX_REGISTER:
        raise BadInput(f"{metric}: value must be an integer in 0..{MAX_REGISTER}")
    return Update(metric, value, absolute)


def apply_updates(registers: dict[str, int], updates: list[Update], log: Logger) -> dict[str, int]:
    """The registers after `updates` (a new dict; the input is not changed)."""
    out = dict(registers)
    for u in updates:
        current = out.get(u.metric, 0)
        if u.metric not in out and len(out) >= MAX_METRICS:
            log.warning("too_many_metrics", metric=u.metric, max=MAX_METRICS)
            continue
        if u.absolute:
            if u.value < current:
                log.warning("register_backwards", metric=u.metric, was=current, got=u.value)
                continue
            out[u.metric] = u.value
        else:
            out[u.metric] = min(MAX_REGISTER, current + u.value)
    return out


class SimulatedSource:
    """`rate_per_s` units per second on average, +-`jitter` (fraction), seeded.

    `per_unit` adds registers that grow with each unit, e.g. {"net_sales": 8000}: every
    unit also adds 8000 to `net_sales` (a product sold at 80.00)."""

    def __init__(
        self,
        rate_per_s: float,
        jitter: float,
        metric: str,
        seed: int,
        per_unit: dict[str, int] | None = None,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.jitter = jitter
        self.metric = metric
        self.per_unit = dict(per_unit or {})
        self._rng = random.Random(seed)
        self._last_s: float | None = None
        self._carry = 0.0

    def poll(self, now_s: float) -> list[Update]:
        if self._last_s is None:
            self._last_s = now_s
            return []
        elapsed, self._last_s = max(0.0, now_s - self._last_s), now_s
        factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        self._carry += self.rate_per_s * elapsed * factor
        whole = int(self._carry)
        self._carry -= whole
        if whole <= 0:
            return []
        extra = [Update(m, whole * v, False) for m, v in sorted(self.per_unit.items())]
        return [Update(self.metric, whole, False), *extra]

    def close(self) -> None:
        pass


class CounterFileSource:
    """A file the product firmware rewrites with its cumulative counters."""

    def __init__(self, path: pathlib.Path, log: Logger) -> None:
        self.path = path
        self.log = log
        self._last_error = ""

    def poll(self, now_s: float) -> list[Update]:
        try:
            with self.path.open("r", encoding="utf-8") as f:
                text = f.read(LINE_BYTES_MAX * 4)
            updates = parse_text(text)
        except (OSError, UnicodeDecodeError, BadInput) as exc:
            if str(exc) != self._last_error:  # log a changed problem once, not every tick
                self.log.warning("counter_file_unreadable", path=str(self.path), error=str(exc))
                self._last_error = str(exc)
            return []
        self._last_error = ""
        return [u for u in updates if u.absolute]

    def close(self) -> None:
        pass


class CommandSource:
    """Runs `argv` every `interval_s` and parses its standard output."""

    def __init__(self, argv: list[str], interval_s: float, timeout_s: float, log: Logger) -> None:
        self.argv = argv
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.log = log
        self._next_s: float | None = None

    def poll(self, now_s: float) -> list[Update]:
        if self._next_s is not None and now_s < self._next_s:
            return []
        self._next_s = now_s + self.interval_s
        try:
            done = subprocess.run(
                self.argv, capture_output=True, timeout=self.timeout_s, check=True, text=True
            )
            return parse_text(done.stdout[: LINE_BYTES_MAX * 4])
        except (OSError, subprocess.SubprocessError, BadInput) as exc:
            self.log.warning("command_failed", argv=self.argv, error=str(exc)[:300])
            return []

    def close(self) -> None:
        pass


class LineSource:
    """Lines from stdin (`path = "-"`) or clients of a local Unix socket."""

    def __init__(self, path: str, log: Logger, stream: IO[str] | None = None) -> None:
        self.log = log
        self._queue: queue.Queue[str] = queue.Queue(QUEUE_LINES_MAX)
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        if path == "-":
            reader = threading.Thread(
                target=self._read, args=(stream or sys.stdin,), daemon=True, name="stdin"
            )
            reader.start()
        else:
            self._server = self._serve(pathlib.Path(path))

    def _read(self, stream: IO[str]) -> None:
        for line in iter(lambda: stream.readline(LINE_BYTES_MAX), ""):
            self._queue.put(line)  # blocks when full: back-pressure, nothing dropped

    def _serve(self, path: pathlib.Path) -> socketserver.ThreadingUnixStreamServer:
        if path.is_socket():
            path.unlink()
        source = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in iter(lambda: self.rfile.readline(LINE_BYTES_MAX), b""):
                    source._queue.put(raw.decode("utf-8", "replace"))

        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        server.daemon_threads = True
        os.chmod(path, 0o660)
        threading.Thread(target=server.serve_forever, daemon=True, name="socket").start()
        return server

    def poll(self, now_s: float) -> list[Update]:
        updates: list[Update] = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return updates
            try:
                updates.extend(parse_text(line))
            except BadInput as exc:
                self.log.warning("bad_input_line", line=line[:120], error=str(exc))

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _per_unit(value: Any) -> dict[str, int]:
    ok = (
        isinstance(value, dict)
        and len(value) < MAX_METRICS
        and all(
            isinstance(m, str)
            and METRIC_RE.match(m)
            and isinstance(v, int)
            and not isinstance(v, bool)
            and 0 <= v <= MAX_REGISTER
            for m, v in value.items()
        )
    )
    if not ok:
        raise ConfigError("bad_value", "source.per_unit must map metric names to integers >= 0")
    return dict(value)


def build_source(cfg: SourceConfig, base_dir: pathlib.Path, log: Logger) -> Source:
    p = cfg.params
    try:
        if cfg.kind == "simulated":
            return SimulatedSource(
                float(p.get("rate_per_s", 1.0)),
                float(p.get("jitter", 0.0)),
                str(p.get("metric", "units")),
                int(p.get("seed", 0)),
                _per_unit(p.get("per_unit", {})),
            )
        if cfg.kind == "counter_file":
            return CounterFileSource(base_dir / str(p["path"]), log)
        if cfg.kind == "command":
            argv = p["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise ConfigError("bad_value", "source.argv must be a list of strings")
            return CommandSource(
                argv, float(p.get("interval_s", 60.0)), float(p.get("timeout_s", 10.0)), log
            )
        if cfg.kind == "lines":
            path = str(p.get("path", "-"))
            return LineSource(path if path == "-" else str(base_dir / path), log)
    except KeyError as exc:
        raise ConfigError("missing", f"source.{exc.args[0]} is required for {cfg.kind}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError("bad_value", f"source: {exc}") from exc
    raise ConfigError("bad_value", f"unknown source kind {cfg.kind!r}")
