"""One random run per seed: faults, then heal, then liveness (like tigerbeetle's VOPR).

The seed chooses everything: n in {4, 7, 10}, real or fake signatures, network fault
rates, which replicas are Byzantine and how (at most f, all classes across seeds), and a
schedule of crashes, restarts, symmetric and asymmetric partitions. At most f replicas
are faulty at any moment (Byzantine + crashed + cut off). After the fault phase every
crashed replica restarts and the network heals; then every submitted request must commit
on every honest replica within `LIVENESS_BOUND_TICKS` (liveness). Some seeds without
Byzantine replicas also crash every replica at once and restart them from disk; every
fifth seed adds a validator and later removes one (reconfiguration under faults).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.sim.byzantine import BEHAVIOURS
from tests.sim.cluster import TICK_TIME, Cluster
from tests.sim.network import NetworkFaults

FAULT_PHASE_TICKS = 300
LIVENESS_BOUND_TICKS = 2500
REQUESTS = 12


@dataclass
class Outcome:
    seed: int
    n: int
    byzantine: list[str]
    real_crypto: bool
    committed: int
    events: int
    view: int
    faults: dict[str, int]


def plan(seed: int) -> tuple[int, bool, NetworkFaults, dict[int, str]]:
    rng = random.Random(seed * 7919 + 1)
    n = (4, 7, 10)[seed % 3]
    f = (n - 1) // 3
    real_crypto = seed % 10 == 9
    faults = NetworkFaults(
        loss=rng.choice((0.0, 0.02, 0.08)),
        duplicate=rng.choice((0.0, 0.05)),
        delay_min=1,
        delay_max=rng.choice((3, 10, 30)),
    )
    names = sorted(BEHAVIOURS)
    count = rng.randint(0, f)
    chosen = rng.sample(range(n), count)
    byz = {i: names[(seed // 3 + k) % len(names)] for k, i in enumerate(chosen)}
    return n, real_crypto, faults, byz


def run_seed(seed: int) -> Outcome:
    n, real_crypto, faults, byz = plan(seed)
    f = (n - 1) // 3
    reconfigure = seed % 5 == 2
    cluster = Cluster(
        n,
        seed,
        real_crypto=real_crypto,
        faults=faults,
        byzantine={i: BEHAVIOURS[name] for i, name in byz.items()},
        spare_nodes=1 if reconfigure else 0,
        max_outstanding=3 if seed % 4 == 1 else 1,  # pipelined proposals on a quarter
    )
    cluster.replay_hint = f"python -m tests.sim --seed {seed}"
    requests = REQUESTS
    if reconfigure:  # one request per block, enough blocks to pass both activation points
        cluster.txs_per_block = 1
        requests = 2 * REQUESTS + 6
    rng = random.Random(seed * 104729 + 3)
    budget = f - len(byz)
    honest = [i for i in range(n) if i not in byz]
    crashed: list[int] = []
    cut_off: list[int] = []
    submitted = 0
    counts = {"crash": 0, "crash_mid_ready": 0, "restart": 0, "partition": 0, "one_way": 0}
    counts["reconfigure"] = int(reconfigure)
    total_outage = not byz and seed % 7 == 0  # crash-recovery model: all may crash
    counts["total_outage"] = 0
    for round_ in range(FAULT_PHASE_TICKS // 10):
        if reconfigure and round_ == 3:
            cluster.pending_reconfig = [*range(n + 1)]  # add the spare validator
        if reconfigure and round_ == 18 and cluster.pending_reconfig is None:
            leaver = max(i for i in honest if i not in crashed and i not in cut_off)
            cluster.pending_reconfig = [i for i in cluster.members if i != leaver]
        if submitted < requests and rng.random() < 0.6:
            cluster.submit(f"tx-{seed}-{submitted}")
            submitted += 1
        if total_outage and round_ == 20:  # power failure: everyone restarts from disk
            for node in cluster.nodes:
                if not node.crashed:
                    cluster.crash(node)
            cluster.run_until(cluster.now + 20 * TICK_TIME)
            for node in cluster.nodes:
                cluster.restart(node)
            crashed = []
            counts["total_outage"] += 1
            continue
        roll = rng.random()
        faulty = len(crashed) + len(cut_off)
        if roll < 0.12 and faulty < budget:
            victim = rng.choice([i for i in honest if i not in crashed and i not in cut_off])
            node = cluster.nodes[victim]
            if rng.random() < 0.5:
                node.crash_before_send = True  # crash after persisting, before sending
                counts["crash_mid_ready"] += 1
            else:
                cluster.crash(node)
                counts["crash"] += 1
            crashed.append(victim)
        elif roll < 0.22 and crashed:
            cluster.restart(cluster.nodes[crashed.pop(0)])
            counts["restart"] += 1
        elif roll < 0.30 and faulty < budget:
            victim = rng.choice([i for i in honest if i not in crashed and i not in cut_off])
            if rng.random() < 0.5:
                cluster.net.isolate(victim, n)
                counts["partition"] += 1
            else:
                counts["one_way"] += 1
                for other in rng.sample(range(n), n // 2):
                    if other != victim:
                        cluster.net.cut_one_way(victim, other)
            cut_off = [victim]
        elif roll < 0.38 and cut_off:
            cluster.net.heal()
            cut_off = []
        crashed = [i for i in crashed if cluster.nodes[i].crashed or not _mark(cluster, i)]
        cluster.run_until(cluster.now + 10 * TICK_TIME)
    # heal: restart everyone, reconnect, stop losing packets
    for i in crashed:
        cluster.restart(cluster.nodes[i])
    for node in cluster.honest():
        if node.crashed:
            cluster.restart(node)
    cluster.net.heal()
    cluster.net.faults.loss = 0.0
    while submitted < requests:
        cluster.submit(f"tx-{seed}-{submitted}")
        submitted += 1
    deadline = cluster.now + LIVENESS_BOUND_TICKS * TICK_TIME
    if not cluster.run_until(deadline, cluster.all_committed):
        lens = [len(node.ledger) for node in cluster.nodes]
        views = [(node.replica.view, node.replica.view_active) for node in cluster.nodes]
        cluster.fail(
            f"LIVENESS: requests not committed {LIVENESS_BOUND_TICKS} ticks after heal "
            f"(n={n}, byzantine={byz}, ledgers={lens}, views={views})"
        )
    honest_nodes = [node for node in cluster.honest() if node.index in cluster.members]
    return Outcome(
        seed,
        n,
        sorted(byz.values()),
        real_crypto,
        min(len(node.ledger) for node in honest_nodes),
        cluster.events,
        max(node.replica.view for node in honest_nodes),
        counts,
    )


def _mark(cluster: Cluster, index: int) -> bool:
    """A node marked crash_before_send crashes on its next Ready; keep it listed till then."""
    return not cluster.nodes[index].crash_before_send
