"""Usage sources: input formats, registers that never go backwards, the seeded simulator,
counter file, command and line (stdin/socket) sources."""

from __future__ import annotations

import io
import pathlib
import socket
import sys
import time

import pytest

from device_agent.config import SourceConfig
from device_agent.errors import ConfigError
from device_agent.log import Logger
from device_agent.sources import (
    BadInput,
    CommandSource,
    CounterFileSource,
    LineSource,
    SimulatedSource,
    Update,
    apply_updates,
    build_source,
    parse_text,
)

QUIET = Logger(io.StringIO())


@pytest.mark.parametrize(
    ("text", "updates"),
    [
        ("units=5", [Update("units", 5, True)]),
        ("units+=2\nhours=1\n# note\n", [Update("units", 2, False), Update("hours", 1, True)]),
        ('{"units": 7}', [Update("units", 7, True)]),
        ("", []),
    ],
)
def test_parse(text: str, updates: list[Update]) -> None:
    assert parse_text(text) == updates


@pytest.mark.parametrize("text", ["units", "Units=1", "units=-1", "units=1.5", "[1]", '{"u": 1.0}'])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(BadInput):
        parse_text(text)


def test_registers_never_go_backwards() -> None:
    log = io.StringIO()
    regs = apply_updates({"units": 10}, [Update("units", 4, True)], Logger(log))
    assert regs == {"units": 10} and "register_backwards" in log.getvalue()
    regs = apply_updates(regs, [Update("units", 3, False), Update("hours", 2, True)], QUIET)
    assert regs == {"units": 13, "hours": 2}


def test_simulated_source_is_seeded() -> None:
    def run(seed: int) -> list[list[Update]]:
        src = SimulatedSource(100.0, 0.5, "units", seed)
        return [src.poll(i * 0.1) for i in range(20)]

    assert run(1) == run(1)
    total = sum(u.value for batch in run(1) for u in batch)
    assert 100 <= total <= 300  # 1.9 s at 100/s, jitter +-50%


def test_simulated_source_grows_per_unit_registers_with_each_unit() -> None:
    src = SimulatedSource(50.0, 0.3, "units", 7, {"net_sales": 8000, "hours": 2})
    batches = [src.poll(i * 0.2) for i in range(30)]
    regs = fold(batches)
    assert regs["units"] > 0
    assert regs["net_sales"] == 8000 * regs["units"] and regs["hours"] == 2 * regs["units"]


def fold(batches: list[list[Update]]) -> dict[str, int]:
    regs: dict[str, int] = {}
    for batch in batches:
        regs = apply_updates(regs, batch, QUIET)
    return regs


def test_simulated_source_refuses_bad_per_unit_registers() -> None:
    for bad in ({"Net Sales": 1}, {"net_sales": -1}, {"net_sales": "8000"}, [1]):
        with pytest.raises(ConfigError):
            build_source(SourceConfig("simulated", {"per_unit": bad}), pathlib.Path("."), QUIET)


def test_counter_file_source(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "counters"
    log = io.StringIO()
    src = CounterFileSource(path, Logger(log))
    assert src.poll(0) == [] and "counter_file_unreadable" in log.getvalue()
    path.write_text("units=12\nhours=3\n")
    assert src.poll(1) == [Update("units", 12, True), Update("hours", 3, True)]


def test_command_source_runs_on_its_interval() -> None:
    src = CommandSource([sys.executable, "-c", "print('units=42')"], 10.0, 10.0, QUIET)
    assert src.poll(0.0) == [Update("units", 42, True)]
    assert src.poll(5.0) == []  # not due yet
    bad = CommandSource([sys.executable, "-c", "raise SystemExit(3)"], 1.0, 10.0, QUIET)
    assert bad.poll(0.0) == []


def _drain(src: LineSource, want: int) -> list[Update]:
    got: list[Update] = []
    for _ in range(200):  # bounded: at most ~2 s
        got += src.poll(0)
        if len(got) >= want:
            break
        time.sleep(0.01)
    return got


def test_line_source_from_a_stream() -> None:
    log = io.StringIO()
    src = LineSource("-", Logger(log), stream=io.StringIO("units+=1\nbad line\nunits+=2\n"))
    assert _drain(src, 2) == [Update("units", 1, False), Update("units", 2, False)]
    assert "bad_input_line" in log.getvalue()


def test_line_source_from_a_unix_socket(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "agent.sock"
    src = LineSource(str(path), QUIET)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))
            client.sendall(b"units+=5\nhours=1\n")
        assert _drain(src, 2) == [Update("units", 5, False), Update("hours", 1, True)]
    finally:
        src.close()
