"""The pipeline benchmark's contract with the cluster benchmark (its numbers, not speed)."""

from __future__ import annotations

import pytest

from bench.pipeline import STAGES, measure_pipeline


def test_measure_pipeline_reports_every_stage_and_a_consistent_ceiling() -> None:
    result = measure_pipeline(blocks=1, txs_per_block=6, warmup=1)
    assert result["blocks"] == 1 and result["txs_per_block"] == 6
    stages = result["stages_us_per_tx"]
    assert list(stages) == list(STAGES)
    assert all(s["min"] <= s["median"] <= s["max"] for s in stages.values())
    total = result["total_us_per_tx"]["median"]
    assert total == pytest.approx(sum(s["median"] for s in stages.values()))
    rate = result["tx_per_s_one_core"]["median"]
    assert rate == pytest.approx(1e6 / total)
    assert result["cluster_ceiling_4_on_2_cores"]["median"] == pytest.approx(rate * 2 / 4)


def test_measure_pipeline_rejects_empty_runs() -> None:
    with pytest.raises(ValueError):
        measure_pipeline(blocks=0)
