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


def _catch_up(window: int, batch: int, height: int) -> tuple[int, int, int]:
    """A replica (validator 3) learns f+1 peers reached `height` and fetches its way there;
    every FETCH is answered at once and every committed block executed at once. Returns
    (executed, fetches, ticks): ticks are only sent while no message is in flight."""
    signers = [FakeSigner(bytes([i]) * 32) for i in range(4)]
    vset = ValidatorSet(tuple(s.public_key for s in signers))
    config = Config(
        CHAIN,
        signers[3],
        vset,
        checkpoint_interval=min(100, window // 2),
        watermark_window=window,
        fetch_batch_max=batch,
        retransmit_ticks=4,
        verifier=fake_verify,
    )
    replica = Replica(config)
    for peer in signers[:3]:  # evidence that f+1 peers are at `height`
        env = seal(CHAIN, peer.public_key, peer.sign_raw, Checkpoint(height, state_after(height)))
        replica.step(Receive(peer.public_key, codec.encode(env.to_value())))
    executed = fetches = ticks = 0
    pending: list = []
    while executed < height and fetches < 2 * height and ticks < 10 * height:
        if not pending:
            ticks += 1
            pending += replica.step(Tick()).outbound
            continue
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
    assert replica.stable_seq == height  # its own checkpoint matches the peers' proof
    return executed, fetches, ticks


def test_a_replica_offline_for_10000_blocks_rejoins_by_fetching_certified_blocks() -> None:
    executed, fetches, _ = _catch_up(window=200, batch=64, height=HEIGHT)
    assert executed == HEIGHT
    assert fetches <= HEIGHT // 64 + 10, "one round trip per batch, no re-fetching"


def test_catch_up_capped_by_the_watermark_window_fetches_again_once_executed() -> None:
    """With a window smaller than a fetch batch (the node's 32 vs 64), each batch fills the
    window; the next FETCH goes out as soon as those blocks are executed, not at the next
    retransmit period (which made a real node catch up at ~25 blocks/s)."""
    executed, fetches, ticks = _catch_up(window=32, batch=64, height=2_000)
    assert executed == 2_000
    assert fetches <= 2_000 // 32 + 5, "one round trip per window, no re-fetching"
    assert ticks <= 8, "only the start waits for a retransmit period"
