"""The cluster benchmark in its smallest form: real node processes, the licensed usage
load, catch-up and disk figures; checks the result's structure and consistency, never
its speed."""

from __future__ import annotations

import math

import pytest

from bench.cluster import Plan, run_all, table

pytestmark = pytest.mark.slow

TINY = Plan(
    validators=(4,),
    runs=1,
    seconds=2.0,
    batch=10,
    devices=40,
    catch_up_blocks=5,
    pipeline_blocks=1,
    pipeline_txs=20,
)


def test_cluster_bench_smallest_run_reports_every_figure() -> None:
    result = run_all(TINY)
    assert result["machine"]["cores"] >= 1
    (c,) = result["clusters"]
    one_core = result["pipeline"]["tx_per_s_one_core"]["median"]
    assert c["limit_tx_s"] == pytest.approx(one_core * result["machine"]["cores"] / 4)
    for mode in ("steady", "saturation"):
        m = c[mode]
        assert len(m["runs"]) == 1
        assert m["rejected"] == 0 and m["uncommitted"] == 0  # every report accepted
        # every report committed (after the drain); the rate window of a 2 s run may
        # hold no block on a loaded machine, so only its sign is checked
        assert m["committed_tx_s"]["median"] >= 0
        run = m["runs"][0]
        assert run["submitted"] > 0 and run["blocks"] > 0
        assert 0 <= run["p50_s"] <= run["p99_s"] and math.isfinite(run["p99_s"])
    assert c["catch_up"]["missed_blocks"] >= TINY.catch_up_blocks
    assert c["catch_up"]["seconds"] >= c["catch_up"]["api_up_s"] > 0
    disk = c["disk"]
    # every usage report sent in the runs and the catch-up is on the chain
    sent = sum(m["runs"][0]["submitted"] for m in (c["steady"], c["saturation"]))
    assert disk["usage_records"] >= sent and disk["per_record"] > 0
    lines = table(result)
    assert any(line.startswith("| 4 | steady |") for line in lines)
    assert any(line.startswith("Catch-up") for line in lines)
