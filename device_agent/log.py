"""Structured logs: one JSON object per line on stderr (or any text stream).

Every line has `ts` (UTC, ISO 8601 with milliseconds), `level` and `event`; the other
fields are the event's data. Byte strings are written as hex. journald and `jq` read it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class Logger:
    """Writes JSON lines; drops events below `level`."""

    __slots__ = ("_min", "_stream")

    def __init__(self, stream: TextIO | None = None, level: str = "info") -> None:
        self._stream = stream
        self._min = LEVELS[level]

    def event(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS[level] < self._min:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        line = {"ts": f"{stamp}.{int(now * 1000) % 1000:03d}Z", "level": level, "event": event}
        line.update({k: _plain(v) for k, v in fields.items()})
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(json.dumps(line, separators=(",", ":")) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed log stream must never stop the meter

    def debug(self, event: str, **fields: Any) -> None:
        self.event("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self.event("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.event("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.event("error", event, **fields)
