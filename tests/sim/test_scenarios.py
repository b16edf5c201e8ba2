"""Scripted scenarios, each named after the section of Castro & Liskov it checks.

They run the real core over the simulated network with real Ed25519 signatures (so every
commit certificate is checked with `CommitCertificate.verify`), and every checker runs
after every event. Bounds are in simulated ticks; nothing reads the wall clock.
"""

from __future__ import annotations

from consensus import Receive
from consensus.messages import Prepare, seal
from node.ledger import codec
from tests.sim.byzantine import (
    DoubleVoter,
    EquivocatingPrimary,
    GapPrimary,
    LyingViewChange,
    Silent,
)
from tests.sim.cluster import CHAIN_ID, TICK_TIME, Cluster
from tests.sim.network import NetworkFaults

BOUND_TICKS = 600


def submit(cluster: Cluster, count: int, prefix: str) -> None:
    for i in range(count):
        cluster.submit(f"{prefix}-{i}")


def run_to_completion(cluster: Cluster, ticks: int = BOUND_TICKS) -> None:
    done = cluster.run_until(cluster.now + ticks * TICK_TIME, cluster.all_committed)
    assert done, f"not all requests committed within {ticks} ticks (seed {cluster.seed})"


def test_s4_2_normal_case_real_signatures_n4_n7() -> None:
    for n in (4, 7):
        cluster = Cluster(n, 1, real_crypto=True)
        submit(cluster, 10, "tx")
        run_to_completion(cluster)
        assert all(node.replica.view == 0 for node in cluster.nodes)


def test_s4_4_primary_crash_leads_to_view_change_and_progress() -> None:
    cluster = Cluster(4, 2, real_crypto=True)
    submit(cluster, 3, "before")
    run_to_completion(cluster)
    cluster.crash(cluster.nodes[0])  # the primary of view 0
    submit(cluster, 3, "after")
    run_to_completion(cluster)
    assert all(node.replica.view >= 1 for node in cluster.honest() if not node.crashed)


def test_s4_4_equivocating_primary_causes_no_disagreement_and_a_view_change() -> None:
    for n in (4, 7):
        cluster = Cluster(n, 3, real_crypto=True, byzantine={0: EquivocatingPrimary})
        submit(cluster, 6, "tx")
        run_to_completion(cluster)  # agreement is checked after every event
        assert all(node.replica.view >= 1 for node in cluster.honest())


def test_s4_4_partition_isolating_the_primary_then_heal() -> None:
    cluster = Cluster(4, 4, real_crypto=True, faults=NetworkFaults(delay_max=5))
    submit(cluster, 2, "a")
    run_to_completion(cluster)
    cluster.net.isolate(0, 4)
    submit(cluster, 3, "b")
    b_txs = {f"b-{i}" for i in range(3)}
    done = cluster.run_until(
        cluster.now + BOUND_TICKS * TICK_TIME,
        lambda: all(b_txs <= node.txs for node in cluster.nodes[1:]),
    )
    assert done and not b_txs & cluster.nodes[0].txs
    assert all(node.replica.view >= 1 for node in cluster.nodes[1:])
    cluster.net.heal()
    submit(cluster, 2, "c")
    run_to_completion(cluster)  # includes the healed old primary catching up


def test_restart_after_persisting_a_prepare_does_not_equivocate() -> None:
    """Crash right after the hard state with a PREPARE is persisted, before sending; the
    restarted replica faces an equivocating primary. The sim's equivocation checker
    (every honest signed vote, across restarts) must stay silent."""
    for seed in range(5, 10):
        cluster = Cluster(4, seed, real_crypto=seed == 5, byzantine={0: EquivocatingPrimary})
        victim = cluster.nodes[1]
        victim.crash_before_send = True
        submit(cluster, 4, "tx")
        cluster.run_until(cluster.now + 30 * TICK_TIME)
        assert victim.crashed and victim.durable_hard_state is not None
        cluster.restart(victim)
        run_to_completion(cluster)


def test_s4_3_catch_up_of_a_replica_that_missed_several_checkpoints() -> None:
    cluster = Cluster(4, 6, real_crypto=True, checkpoint_interval=4, watermark_window=8)
    cluster.txs_per_block = 1
    lagging = cluster.nodes[3]
    cluster.crash(lagging)
    submit(cluster, 40, "tx")
    done = cluster.run_until(
        cluster.now + 3000 * TICK_TIME,
        lambda: all(not {f"tx-{i}" for i in range(40)} - node.txs for node in cluster.nodes[:3]),
    )
    assert done
    stable = cluster.nodes[0].replica.stable_seq
    assert stable >= 12, "several checkpoints passed while the replica was down"
    cluster.restart(lagging)
    run_to_completion(cluster)
    assert len(lagging.ledger) == len(cluster.nodes[0].ledger)


def test_f_plus_one_faulty_means_no_progress_but_never_disagreement() -> None:
    for n, seed in ((4, 7), (7, 8)):
        f = (n - 1) // 3
        cluster = Cluster(n, seed, real_crypto=n == 4, byzantine={i: Silent for i in range(f)})
        submit(cluster, 2, "a")
        run_to_completion(cluster)
        before = [len(node.ledger) for node in cluster.nodes]
        cluster.crash(cluster.nodes[n - 1])  # f + 1 faulty now
        submit(cluster, 3, "b")
        cluster.run_until(cluster.now + 800 * TICK_TIME)
        assert [len(node.ledger) for node in cluster.nodes[:-1]] == before[:-1]


def test_reconfiguration_adds_then_removes_a_validator_under_faults() -> None:
    cluster = Cluster(
        4,
        11,
        spare_nodes=1,
        checkpoint_interval=4,
        watermark_window=8,
        faults=NetworkFaults(loss=0.03, duplicate=0.03, delay_max=8),
    )
    cluster.txs_per_block = 1
    newcomer, leaver = cluster.nodes[4], cluster.nodes[2]
    submit(cluster, 3, "a")
    run_to_completion(cluster)
    cluster.pending_reconfig = [0, 1, 2, 3, 4]
    submit(cluster, 30, "b")
    run_to_completion(cluster, 3000)
    assert newcomer.key in cluster.nodes[0].replica.validators.validators
    assert newcomer.replica.is_member
    joined = [
        c
        for _, c, _ in cluster.nodes[0].ledger
        if any(s.validator == newcomer.key for s in c.signatures)
    ]
    assert joined, "the new validator signs commit certificates after activation"
    cluster.pending_reconfig = [0, 1, 3, 4]
    submit(cluster, 30, "c")
    run_to_completion(cluster, 3000)
    assert not leaver.replica.is_member
    member = cluster.nodes[0].replica
    stale_vote = leaver_vote(cluster, leaver.index, member.stable_seq + 1)
    ready = member.step(Receive(leaver.key, stale_vote))
    assert [m.code for m in ready.misbehaviour] in (["not_a_member"], ["unknown_sender"])
    assert ready.outbound == () and ready.hard_state is None
    last = cluster.nodes[0].ledger[-1][1]
    assert leaver.key not in {s.validator for s in last.signatures}
    assert len(last.signatures) >= cluster.nodes[0].replica.validators.quorum


def leaver_vote(cluster: Cluster, index: int, seq: int) -> bytes:
    node = cluster.nodes[index]
    env = seal(CHAIN_ID, node.key, node.signer.sign_raw, Prepare(0, seq, b"\x07" * 32))  # type: ignore[attr-defined]
    return codec.encode(env.to_value())


def test_catch_up_after_hundreds_of_blocks_offline() -> None:
    """The design target is 10,000 blocks: fetching is batched (fetch_batch_max) and each
    block is checked by its certificate, so the cost is linear; 300 keeps CI fast."""
    cluster = Cluster(4, 12, checkpoint_interval=8, watermark_window=16)
    cluster.txs_per_block = 1
    lagging = cluster.nodes[2]
    cluster.crash(lagging)
    submit(cluster, 300, "tx")
    done = cluster.run_until(
        cluster.now + 20_000 * TICK_TIME,
        lambda: all(len(node.ledger) >= 300 for node in cluster.nodes if node is not lagging),
    )
    assert done
    cluster.restart(lagging)
    run_to_completion(cluster, 2000)
    assert len(lagging.ledger) == len(cluster.nodes[0].ledger) >= 300


def test_s4_2_equivocating_primary_with_a_colluding_double_voter_never_forks() -> None:
    for seed in (13, 14):
        cluster = Cluster(
            7,
            seed,
            real_crypto=seed == 13,
            byzantine={0: EquivocatingPrimary, 3: DoubleVoter},
            faults=NetworkFaults(delay_max=12),
        )
        submit(cluster, 8, "tx")
        run_to_completion(cluster)  # agreement checked after every event


def test_s4_4_new_primary_with_a_forged_new_view_is_replaced() -> None:
    cluster = Cluster(7, 15, real_crypto=True, byzantine={1: LyingViewChange})  # f = 2
    submit(cluster, 2, "a")
    run_to_completion(cluster)
    cluster.crash(cluster.nodes[0])  # view 1's primary (node 1) lies in its NEW-VIEW
    submit(cluster, 3, "b")
    run_to_completion(cluster)
    assert all(node.replica.view >= 2 for node in cluster.nodes[2:])
    assert sum(node.misbehaviour_codes["bad_new_view"] for node in cluster.nodes[2:]) > 0


def test_s4_4_primary_leaving_gaps_is_replaced_and_gaps_become_null_requests() -> None:
    cluster = Cluster(4, 16, real_crypto=True, byzantine={0: GapPrimary})
    submit(cluster, 4, "tx")
    run_to_completion(cluster)
    ledger = cluster.nodes[1].ledger
    assert any(payload == b"" for payload, _, _ in ledger), "a null request filled a gap"
    assert all(node.replica.view >= 1 for node in cluster.honest())
