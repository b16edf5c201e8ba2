"""Byzantine behaviours: a real replica whose traffic is rewritten by a hostile shell.

Each behaviour holds the node's own signing key (never anyone else's) and rewrites what
its replica sends: silence, equivocation as primary, double votes, stale replays, lying
view changes (withheld or forged certificates), out-of-watermark floods, garbage bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consensus.messages import (
    COMMIT,
    NEW_VIEW,
    PRE_PREPARE,
    PREPARE,
    VIEW_CHANGE,
    Checkpoint,
    Commit,
    Envelope,
    Fetch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
    body_of,
    seal,
)
from node.ledger import codec, crypto

if TYPE_CHECKING:
    from tests.sim.cluster import Cluster


class Behaviour:
    name = "honest"
    proposes = True

    def __init__(self, cluster: Cluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.node = cluster.nodes[index]
        self.rng = cluster.rng

    def seal(self, body: object, payload: bytes = b"") -> bytes:
        env = seal("alps-sim", self.node.key, self.node.signer.sign_raw, body, payload)  # type: ignore[arg-type, attr-defined]
        return codec.encode(env.to_value())

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        return [data]

    def inbound(self, source: int, data: bytes) -> None:
        pass

    def tick(self) -> None:
        pass


def _decode(data: bytes) -> tuple[Envelope, object] | None:
    try:
        env = Envelope.from_value(codec.decode(data))
        return env, body_of(env)
    except Exception:
        return None


class Silent(Behaviour):
    name = "silent"
    proposes = False

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        return []


class EquivocatingPrimary(Behaviour):
    """Sends a different (valid-looking) block to each half of the backups."""

    name = "equivocating-primary"

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        decoded = _decode(data)
        if decoded is None or decoded[0].kind != PRE_PREPARE or target % 2 == 0:
            return [data]
        _, pp = decoded
        assert isinstance(pp, PrePrepare)
        txs = self.cluster.submitted[-1:] or ["ghost"]
        payload = codec.encode({"txs": txs, "by": self.index, "nonce": -pp.seq - 1000 * target})
        self.cluster.proposed.add(crypto.sha256(payload))
        return [self.seal(PrePrepare(pp.view, pp.seq, crypto.sha256(payload)), payload)]


class GapPrimary(Behaviour):
    """As primary, assigns sequence numbers with holes (seq + 2), so only a view change with
    null requests (§4.4) can fill them."""

    name = "gap-primary"

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        decoded = _decode(data)
        if decoded is None or decoded[0].kind != PRE_PREPARE:
            return [data]
        env, pp = decoded
        assert isinstance(pp, PrePrepare)
        return [self.seal(PrePrepare(pp.view, pp.seq + 2, pp.digest), env.payload)]


class DoubleVoter(Behaviour):
    """Sends a conflicting PREPARE/COMMIT alongside each real one, and votes PREPARE and
    COMMIT for every pre-prepared digest it sees (colluding with an equivocating primary)."""

    name = "double-voter"

    def inbound(self, source: int, data: bytes) -> None:
        decoded = _decode(data)
        if decoded is None or decoded[0].kind != PRE_PREPARE:
            return
        _, pp = decoded
        assert isinstance(pp, PrePrepare)
        for vote in (Prepare(pp.view, pp.seq, pp.digest), Commit(pp.view, pp.seq, pp.digest)):
            sealed = self.seal(vote)
            for target in range(len(self.cluster.nodes)):
                if target != self.index:
                    self.cluster.net.send(self.cluster.now, self.index, target, sealed)

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        decoded = _decode(data)
        if decoded is None or decoded[0].kind not in (PREPARE, COMMIT):
            return [data]
        _, vote = decoded
        assert isinstance(vote, Prepare | Commit)
        fake = crypto.sha256(b"double" + bytes([target]) + vote.digest)
        other = type(vote)(vote.view, vote.seq, fake)
        return [self.seal(other), data] if self.rng.random() < 0.5 else [data, self.seal(other)]


class StaleReplayer(Behaviour):
    """Re-sends old messages it received or sent, long after they mattered."""

    name = "stale-replayer"

    def __init__(self, cluster: Cluster, index: int) -> None:
        super().__init__(cluster, index)
        self.seen: list[bytes] = []

    def remember(self, data: bytes) -> None:
        if len(self.seen) < 400:
            self.seen.append(data)
        else:
            self.seen[self.rng.randrange(400)] = data

    def inbound(self, source: int, data: bytes) -> None:
        self.remember(data)

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        self.remember(data)
        out = [data]
        if self.seen and self.rng.random() < 0.3:
            out.append(self.seen[self.rng.randrange(len(self.seen))])
        return out


class LyingViewChange(Behaviour):
    """VIEW-CHANGE with withheld prepared certificates, or forged ones; as new primary, a
    NEW-VIEW whose re-proposals (set O) do not follow from its view changes."""

    name = "lying-view-change"

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        decoded = _decode(data)
        # Every copy is forged: a valid copy sent to some replicas would be relayed by them
        # to the rest (NEW-VIEW is self-certifying), and the view would simply succeed.
        if decoded is not None and decoded[0].kind == NEW_VIEW:
            _, nv = decoded
            assert isinstance(nv, NewView)
            forged_nv = NewView(nv.view, nv.view_changes, nv.pre_prepares[:-1])
            return [self.seal(forged_nv)]  # O without its last re-proposal: must be refused
        if decoded is None or decoded[0].kind != VIEW_CHANGE:
            return [data]
        _, vc = decoded
        assert isinstance(vc, ViewChange)
        if target % 2:
            withheld = ViewChange(vc.view, vc.stable_seq, vc.stable_digest, vc.checkpoint_proof, ())
            return [self.seal(withheld)]
        seq = vc.stable_seq + 1
        digest = crypto.sha256(b"forged")
        forged_pp = Envelope.from_value(
            codec.decode(self.seal(PrePrepare(max(vc.view - 1, 0), seq, digest), b"x"))
        )
        forged_pp = forged_pp.without_payload()
        prepares = tuple(
            Envelope(
                PREPARE,
                Prepare(max(vc.view - 1, 0), seq, digest).encode(),
                key,
                b"\x01" * 64,
                b"",
            )
            for key in self.cluster.keys[: self.cluster.genesis.n]
            if key != self.node.key
        )
        forged = ViewChange(
            vc.view,
            vc.stable_seq,
            vc.stable_digest,
            vc.checkpoint_proof,
            (PreparedProof(forged_pp, prepares),),
        )
        lying_checkpoint = ViewChange(vc.view, vc.stable_seq + 4 * 1000, b"lie", (), ())
        return [self.seal(forged), self.seal(lying_checkpoint)]


class Flooder(Behaviour):
    """Floods messages far outside the watermarks and fetch requests."""

    name = "flooder"

    def tick(self) -> None:
        if self.rng.random() < 0.5:
            return
        target = self.rng.randrange(len(self.cluster.nodes))
        if target != self.index:
            seq = self.node.replica.stable_seq + 1000 + self.rng.randrange(1000)
            digest = crypto.sha256(b"flood" + bytes(seq % 256))
            for body in (
                Prepare(0, seq, digest),
                Commit(0, seq, digest),
                Checkpoint(seq - seq % 4, b"x"),
                Fetch(1, 10_000),
            ):
                self.cluster.net.send(self.cluster.now, self.index, target, self.seal(body))


class Garbage(Behaviour):
    """Sends random bytes and truncated / bit-flipped copies of real messages."""

    name = "garbage"

    def outbound(self, target: int, data: bytes) -> list[bytes]:
        r = self.rng.random()
        if r < 0.3:
            return [bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 60)))]
        if r < 0.6:
            flip = bytearray(data)
            i = self.rng.randrange(len(flip))
            flip[i] ^= 1 << self.rng.randrange(8)
            return [bytes(flip)]
        if r < 0.7:
            return [data[: len(data) // 2]]
        return [data]


BEHAVIOURS: dict[str, type[Behaviour]] = {
    b.name: b
    for b in (
        Silent,
        EquivocatingPrimary,
        GapPrimary,
        DoubleVoter,
        StaleReplayer,
        LyingViewChange,
        Flooder,
        Garbage,
    )
}
