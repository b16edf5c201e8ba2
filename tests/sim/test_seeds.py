"""CI's fixed set of random seeds (210 seeds: n = 4, 7, 10, every fault class).

Each seed is a whole randomized run (see tests.sim.runner): Byzantine replicas of every
behaviour, crashes (also between persisting and sending), restarts, symmetric and
asymmetric partitions, loss, duplication, reordering, reconfiguration; the checkers run
after every event and liveness is required after heal. A failure names the seed and the
command that replays it: `python -m tests.sim --seed S`.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.sim.byzantine import BEHAVIOURS
from tests.sim.runner import Outcome, plan, run_seed

CI_SEEDS = range(0, 210)
CHUNK = 15
CHUNKS = [CI_SEEDS[i : i + CHUNK] for i in range(0, len(CI_SEEDS), CHUNK)]
outcomes: dict[int, Outcome] = {}


@pytest.mark.parametrize("seeds", CHUNKS, ids=lambda r: f"seeds-{r.start}-{r.stop - 1}")
def test_random_seeds_pass_every_checker(seeds: range) -> None:
    for seed in seeds:
        outcomes[seed] = run_seed(seed)  # raises SimFailure with the replay command


def test_the_fixed_seed_set_covers_every_fault_class() -> None:
    plans = [plan(seed) for seed in CI_SEEDS]
    assert {n for n, _, _, _ in plans} == {4, 7, 10}
    used = Counter(name for _, _, _, byz in plans for name in byz.values())
    assert set(used) == set(BEHAVIOURS), (
        f"behaviours never exercised: {set(BEHAVIOURS) - set(used)}"
    )
    assert sum(real for _, real, _, _ in plans) >= 20, "some seeds use real Ed25519"
    assert any(faults.loss > 0 for _, _, faults, _ in plans)
    assert any(faults.duplicate > 0 for _, _, faults, _ in plans)
    if len(outcomes) == len(CI_SEEDS):  # the seeds ran in this session: check what happened
        totals: Counter[str] = Counter()
        for outcome in outcomes.values():
            totals.update(outcome.faults)
        for kind in ("crash", "crash_mid_ready", "restart", "partition", "one_way", "reconfigure"):
            assert totals[kind] > 0, f"no seed exercised {kind}"
