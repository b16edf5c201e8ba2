"""Catch-up (state transfer by certified blocks): a replica 10,000 blocks behind rejoins.

The peers here are scripted: they sign CHECKPOINTs at 10,000 and answer FETCH with blocks
whose commit certificates they sign, so the test exercises only the catching-up replica
(fake keyed-hash signatures keep it fast; the certificate format is the real one).
"""

from __future__ import annotations

import hashlib

from consensus import Config, Executed, Receive, Replica, Tick
from consensus.messages import (
    FETCH,
    Blocks,
    Checkpoint,
    Envelope,
    Fetch,
    FetchedBlock,
    body_of,
    commit_signing_bytes,
    seal,
)
from node.ledger import codec, crypto
from node.ledger.certificate import CommitCertificate, CommitSignature, ValidatorSet
from tests.sim.fake_crypto import FakeSigner, fake_verify

CHAIN = "alps-catch-up"
HEIGHT = 10_000


def state_after(seq: int) -> bytes:
    return hashlib.sha256(b"state-%d" % seq).digest()


def certified(signers: list[FakeSigner], seq: int) -> FetchedBlock:
    payload = b"block-%d" % seq
    digest = crypto.sha256(payload)
    message = commit_signing_bytes(CHAIN, 0, seq, digest)
    signatures = tuple(CommitSignature(s.public_key, s.sign_raw(message)) for s in signers[:3])
    return FetchedBlock(seq, payload, CommitCertificate(seq, 0, digest, signatures))


def test_a_replica_offline_for_10000_blocks_rejoins_by_fetching_certified_blocks() -> None:
    signers = [FakeSigner(bytes([i]) * 32) for i in range(4)]
    vset = ValidatorSet(tuple(s.public_key for s in signers))
    config = Config(
        CHAIN,
        signers[3],
        vset,
        checkpoint_interval=100,
        watermark_window=200,
        fetch_batch_max=64,
        retransmit_ticks=4,
        verifier=fake_verify,
    )
    replica = Replica(config)
    for peer in signers[:3]:  # evidence that f+1 peers are at 10,000
        env = seal(CHAIN, peer.public_key, peer.sign_raw, Checkpoint(HEIGHT, state_after(HEIGHT)))
        replica.step(Receive(peer.public_key, codec.encode(env.to_value())))
    executed = 0
    fetches = 0
    pending = list(replica.step(Tick()).outbound)
    for _ in range(4):
        pending += replica.step(Tick()).outbound
    while pending and fetches < 1000:
        out = pending.pop(0)
        env = Envelope.from_value(codec.decode(out.data))
        if env.kind != FETCH:
            continue
        fetches += 1
        fetch = body_of(env)
        assert isinstance(fetch, Fetch) and out.destination is not None
        server = next(s for s in signers if s.public_key == out.destination)
        blocks = tuple(certified(signers, seq) for seq in range(fetch.from_seq, fetch.to_seq + 1))
        reply = seal(CHAIN, server.public_key, server.sign_raw, Blocks(blocks))
        ready = replica.step(Receive(server.public_key, codec.encode(reply.to_value())))
        assert not ready.misbehaviour
        for committed in ready.committed:
            assert committed.seq == executed + 1
            executed += 1
            pending += replica.step(Executed(executed, state_after(executed))).outbound
        pending += ready.outbound
    assert executed == HEIGHT
    assert replica.stable_seq == HEIGHT  # its own checkpoint matches the peers' proof
    assert fetches <= HEIGHT // 64 + 10, "one round trip per batch, no re-fetching"
