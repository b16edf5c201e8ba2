"""CI's fixed set of random seeds (210 seeds: n = 4, 7, 10, every fault class).

Each seed is a whole randomized run (see tests.sim.runner): Byzantine replicas of every
behaviour, crashes (also between persisting and sending), restarts, symmetric and
asymmetric partitions, loss, duplication, reordering, reconfiguration; the checkers run
after every event and liveness is required after heal. A failure names the seed and the
command that replays it: `python -m tests.sim --seed S`.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
        kinds = (
            "crash",
            "crash_mid_ready",
            "restart",
            "partition",
            "one_way",
            "reconfigure",
            "total_outage",
        )
        for kind in kinds:
            assert totals[kind] > 0, f"no seed exercised {kind}"


FINGERPRINT = """
import hashlib, sys
from tests.sim import runner
from tests.sim.cluster import Cluster
box = {}
original = Cluster.all_committed
def spy(self):
    box["cluster"] = self
    return original(self)
Cluster.all_committed = spy
outcome = runner.run_seed(int(sys.argv[1]))
digest = hashlib.sha256()
for node in box["cluster"].nodes:
    for payload, cert, state in node.ledger:
        digest.update(payload + state + cert.encode())
print(outcome.events, box["cluster"].net.sent, digest.hexdigest())
"""


def test_one_seed_is_one_run_whatever_the_hash_seed() -> None:
    """Determinism checklist: no set/dict-order or hash() dependence anywhere."""
    results = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": "."}
        out = subprocess.run(
            [sys.executable, "-c", FINGERPRINT, "9"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        results.add(out.stdout)
    assert len(results) == 1, results
