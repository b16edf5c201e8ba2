"""Hypothesis stateful testing over the simulated cluster: a failure shrinks to a minimal
script of faults (crash, restart, isolate, heal, loss, turn Byzantine, submit, advance).

The cluster's checkers (agreement, validity, equal state digests, certificates, no honest
equivocation, replica invariants) run after every event; teardown heals everything and
requires liveness: every submitted request commits on every honest replica in a bound.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from tests.sim.byzantine import BEHAVIOURS
from tests.sim.cluster import TICK_TIME, Cluster
from tests.sim.network import NetworkFaults

N = 4
F = 1
LIVENESS_BOUND_TICKS = 2500


class ClusterMachine(RuleBasedStateMachine):
    cluster: Cluster

    @initialize(seed=st.integers(0, 2**16))
    def start(self, seed: int) -> None:
        self.cluster = Cluster(N, seed, faults=NetworkFaults(delay_max=8))
        self.cluster.replay_hint = (
            "the minimal Hypothesis script printed below (saved in its database)"
        )
        self.crashed: set[int] = set()
        self.isolated: int | None = None
        self.requests = 0

    def faulty(self) -> int:
        return len(self.cluster.byzantine) + len(self.crashed) + (self.isolated is not None)

    @rule()
    def submit(self) -> None:
        self.cluster.submit(f"tx-{self.requests}")
        self.requests += 1

    @rule(ticks=st.integers(1, 60))
    def advance(self, ticks: int) -> None:
        self.cluster.run_until(self.cluster.now + ticks * TICK_TIME)

    @precondition(lambda self: self.faulty() < F)
    @rule(i=st.integers(0, N - 1), mid_ready=st.booleans())
    def crash(self, i: int, mid_ready: bool) -> None:
        if i in self.cluster.byzantine or i == self.isolated:
            return
        node = self.cluster.nodes[i]
        if mid_ready:
            node.crash_before_send = True
        else:
            self.cluster.crash(node)
        self.crashed.add(i)

    @precondition(lambda self: bool(self.crashed))
    @rule()
    def restart(self) -> None:
        i = min(self.crashed)
        self.crashed.discard(i)
        self.cluster.restart(self.cluster.nodes[i])

    @precondition(lambda self: self.faulty() < F)
    @rule(i=st.integers(0, N - 1))
    def isolate(self, i: int) -> None:
        if i in self.cluster.byzantine or i in self.crashed:
            return
        self.cluster.net.isolate(i, N)
        self.isolated = i

    @rule()
    def heal(self) -> None:
        self.cluster.net.heal()
        self.isolated = None

    @rule(loss=st.sampled_from([0.0, 0.1, 0.3]), duplicate=st.sampled_from([0.0, 0.2]))
    def network_quality(self, loss: float, duplicate: float) -> None:
        self.cluster.net.faults.loss = loss
        self.cluster.net.faults.duplicate = duplicate

    @precondition(lambda self: self.faulty() < F)
    @rule(i=st.integers(0, N - 1), behaviour=st.sampled_from(sorted(BEHAVIOURS)))
    def turn_byzantine(self, i: int, behaviour: str) -> None:
        if i in self.crashed or i == self.isolated:
            return
        self.cluster.byzantine[i] = BEHAVIOURS[behaviour](self.cluster, i)

    def teardown(self) -> None:
        if not hasattr(self, "cluster"):
            return
        cluster = self.cluster
        for i in sorted(self.crashed):
            cluster.restart(cluster.nodes[i])
        cluster.net.heal()
        cluster.net.faults.loss = 0.0
        cluster.submit("final")
        deadline = cluster.now + LIVENESS_BOUND_TICKS * TICK_TIME
        if not cluster.run_until(deadline, cluster.all_committed):
            cluster.fail(
                f"LIVENESS: not all requests committed {LIVENESS_BOUND_TICKS} ticks after heal"
            )


ClusterMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCluster = ClusterMachine.TestCase
