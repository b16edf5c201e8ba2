"""Reconfiguration: a block's new validator set governs seqs from an agreed later point.

The set produced by block s takes effect at `activation_seq(s, K, L)` = the checkpoint a
full window after s, plus one; until the stable checkpoint reaches it, the window (§4.3)
is clipped so no sequence number is decided under two sets.
"""

from __future__ import annotations

from consensus import Propose, activation_seq
from node.ledger.certificate import ValidatorSet
from tests.consensus.harness import Net, signers


def test_new_set_takes_effect_after_the_agreed_checkpoint_and_quorums_follow() -> None:
    net = Net(n=4, k=4, window=8)
    newcomer = signers(5)[4]
    grown = ValidatorSet((*net.vset.validators, newcomer.public_key))
    net.reconfig[2] = grown
    start = activation_seq(2, 4, 8)
    assert start == 13
    for height in range(1, 13):
        net.step(net.replicas[0].view % 4, Propose(b"b%d" % height))
        net.run()
        replica = net.replicas[1]
        if height >= 2:
            assert replica.high_watermark <= start - 1 or replica.stable_seq >= start - 1
        if 2 <= height < 12:
            assert newcomer.public_key in replica.broadcast_peers
            assert replica.set_for(start - 1) == net.vset and replica.set_for(start) == grown
    replica = net.replicas[1]
    assert replica.stable_seq == 12
    assert replica.validators == grown and replica.validators.quorum == 4
    assert replica.epochs[0].validators == grown  # history below the stable point is pruned
    assert not replica.is_member or newcomer.public_key != replica.me
    # block 12 was certified by the old set (3 of 4); block 13 needs 4 of the grown set
    assert len(net.committed[1][11].certificate.signatures) >= 3
    net.step(
        replica.validators.validators.index(replica.validators.primary(replica.view)),
        Propose(b"b13"),
    )
    net.run()
    cert = net.committed[1][12].certificate
    assert cert.height == 13 and len(cert.signatures) == 4
    cert.verify("alps-test", grown, cert.block_hash)


def test_activation_is_a_pure_function_of_the_executed_seq() -> None:
    assert [activation_seq(s, 4, 8) for s in (1, 4, 5, 8, 9)] == [13, 13, 17, 17, 21]
    assert activation_seq(100, 100, 200) == 301
