"""The fault plan: a pure function of the seed, one episode at a time, covering the
kinds asked for and the run's duration."""

from __future__ import annotations

import pytest

from tests.chaos.plan import KINDS, TARGET_PRIMARY, plan


@pytest.mark.parametrize("seed", range(20))
def test_plan_is_seeded_sequential_and_fills_the_duration(seed: int) -> None:
    faults = plan(seed, 180)
    assert faults == plan(seed, 180)
    assert [f.index for f in faults] == list(range(len(faults)))
    total = sum(f.gap_s + f.duration_s for f in faults)
    assert total >= 180 and total - faults[-1].gap_s - faults[-1].duration_s < 180
    for f in faults:
        assert f.target == TARGET_PRIMARY or 0 <= f.target < 4
        if f.kind == "byzantine" and f.mode == "equivocate":
            assert f.target == TARGET_PRIMARY  # only a primary can equivocate a proposal


def test_plans_differ_by_seed_and_honour_kind_filters() -> None:
    assert plan(1, 120) != plan(2, 120)
    kinds = {f.kind for seed in range(10) for f in plan(seed, 300)}
    assert kinds == set(KINDS)
    assert {f.kind for f in plan(3, 300, byzantine=False)} <= set(KINDS) - {"byzantine"}
    assert {f.kind for f in plan(3, 300, kinds=("pause",))} == {"pause"}
    with pytest.raises(ValueError):
        plan(3, 300, byzantine=False, kinds=("byzantine",))
