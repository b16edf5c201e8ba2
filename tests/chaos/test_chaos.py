"""The short chaos run CI does (`make chaos` runs the long one): a 4-node real-process
cluster under load through a Byzantine equivocating primary, a kill -9, a stalled
partition and a SIGSTOP, then every end-of-run check must pass.

Slow (about a minute): run alone with `pytest -m slow tests/chaos`.
"""

from __future__ import annotations

import pathlib

import pytest
import trio

from tests.chaos.run import Options, run

pytestmark = pytest.mark.slow

SEED = 7  # plan(7, 30): byzantine [equivocate] primary, kill, partition [stall], pause


def test_short_chaos_run_passes_every_check(tmp_path: pathlib.Path) -> None:
    options = Options(seed=SEED, duration_s=30, devices=4)
    report = trio.run(run, options, tmp_path / "net", print)
    assert report.ok, report.render()
    kinds = [e.fault.kind for e in report.episodes]
    assert kinds == ["byzantine", "kill", "partition", "pause"], report.render()
    assert report.misbehaviour.get("double_vote", 0) > 0  # the Byzantine node did lie
    assert report.load_stats["acked"] > 100 and report.load_stats["unresolved"] == 0
    assert {c.name for c in report.checks} >= {
        "identical chains and state digests",
        "acknowledged transactions committed exactly once",
        "money conserved",
        "no node crashed",
    }
