"""The state of one replica and the bookkeeping every protocol phase shares.

Rule kept here: all outputs of one `step` accumulate here and leave as one `Ready`; the
hard state is re-emitted whenever a vote, a prepared certificate, the view, the stable
checkpoint or membership changed, so the shell persists it before anything is sent.
The window of sequence numbers (§4.3) never spans two validator sets.
"""

from __future__ import annotations

from consensus.errors import InvariantError
from consensus.messages import (
    Blocks,
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
from consensus.slots import Slot
from consensus.types import (
    Committed,
    Config,
    Epoch,
    HardState,
    Misbehaviour,
    Outbound,
    Ready,
    ServeRequest,
    ToValidate,
    Vote,
)
from node.ledger import codec
from node.ledger.certificate import CommitCertificate, ValidatorSet

CHECKPOINTS_KEPT_PER_PEER = 4


def activation_seq(executed_seq: int, checkpoint_interval: int, watermark_window: int) -> int:
    """First seq governed by a validator set produced by block `executed_seq`: after the
    checkpoint one full window later, so no replica can have that seq in its window yet."""
    k = checkpoint_interval
    return -(-executed_seq // k) * k + watermark_window + 1


class ReplicaState:
    """Fields, read-only properties, Ready accumulation, hard state and invariants."""

    def __init__(self, config: Config, hard_state: bytes | None = None) -> None:
        self.cfg = config
        self.me = config.signer.public_key
        self.view = 0
        self.view_active = True
        self.stable_seq = 0
        self.stable_digest = config.genesis_state_digest
        self.stable_proof: tuple[Envelope, ...] = ()
        self.executed_seq = 0
        self.executed_digest = config.genesis_state_digest
        self.delivered_seq = 0
        self.epochs: list[Epoch] = [Epoch(1, config.validators)]
        self.votes: dict[tuple[str, int, int], bytes] = {}
        self.slots: dict[int, Slot] = {}
        self.own_vc: Envelope | None = None
        self.own_nv: Envelope | None = None
        self.view_changes: dict[bytes, tuple[Envelope, ViewChange]] = {}
        self.checkpoints: dict[bytes, dict[int, tuple[Envelope, bytes]]] = {}
        self.own_checkpoints: dict[int, bytes] = {}
        self.own_checkpoint_env: Envelope | None = None
        self._evidence_commit: tuple[tuple[str, int, int], Envelope] | None = None
        self.peer_high: dict[bytes, int] = {}
        self.pending_payload: bytes | None = None
        self.app_work = False
        self.timer_ticks = 0
        self.backoff = 0
        self.ticks = 0
        self.last_progress_tick = 0
        self.fetch_round = 0
        self.fetch_after_execution = False  # a fetch waited for executed_seq to move on
        self.last_reply_tick: dict[bytes, int] = {}
        self.last_serve: dict[bytes, tuple[int, int]] = {}  # peer -> (tick, last seq served)
        self._encode_cache: dict[object, bytes] = {}
        self._dirty = hard_state is None
        self._reset_ready()
        if hard_state is not None:
            self._restore(HardState.decode(hard_state))

    # ---- public read-only view for the shell ---------------------------------------------

    @property
    def validators(self) -> ValidatorSet:
        """The validator set governing the current window (§4.3) and its quorums."""
        return self.set_for(self.stable_seq + 1)

    @property
    def broadcast_peers(self) -> tuple[bytes, ...]:
        """Where a broadcast goes: members of the current and of every scheduled validator
        set (so a joining validator hears checkpoints and catches up), minus this replica."""
        current = self.stable_seq + 1
        keys = {
            key
            for epoch in self.epochs
            if epoch.start_seq >= current or epoch.validators == self.validators
            for key in epoch.validators.validators
        }
        return tuple(sorted(keys - {self.me}))

    @property
    def is_member(self) -> bool:
        return self.me in self.validators.validators

    @property
    def is_primary(self) -> bool:
        return self.validators.primary(self.view) == self.me

    @property
    def next_seq(self) -> int:
        assigned = [s.seq for s in self.slots.values() if s.view == self.view and s.digest]
        voted = [seq for (_, view, seq) in self.votes if view == self.view]  # survives restart
        return max([*assigned, *voted, self.stable_seq, self.delivered_seq]) + 1

    def accepted_digest(self, seq: int) -> bytes | None:
        """The digest this replica accepted for `seq` in the current view, if any (a
        primary pipelining proposals builds seq+1 on top of it)."""
        slot = self.slots.get(seq)
        if slot is None or slot.view != self.view or slot.digest is None:
            return None
        return slot.digest

    @property
    def high_watermark(self) -> int:
        """§4.3 H = h + L, clipped so the window never spans two validator sets."""
        high = min(self.stable_seq, self.executed_seq) + self.cfg.watermark_window
        for epoch in self.epochs:
            if epoch.start_seq > self.stable_seq + 1:
                high = min(high, epoch.start_seq - 1)
        return high

    @property
    def can_propose(self) -> bool:
        seq = self.next_seq
        return (
            self.is_primary
            and self.view_active
            and self.is_member
            and seq <= self.high_watermark
            and seq - 1 - self.delivered_seq < self.cfg.max_outstanding
        )

    def set_for(self, seq: int) -> ValidatorSet:
        current = self.epochs[0].validators
        for epoch in self.epochs:
            if epoch.start_seq <= seq:
                current = epoch.validators
        return current

    # ---- Ready accumulation --------------------------------------------------------------

    def _reset_ready(self) -> None:
        self._out: list[Outbound] = []
        self._validate: list[ToValidate] = []
        self._committed: list[Committed] = []
        self._bad: list[Misbehaviour] = []
        self._serve: list[ServeRequest] = []

    def _flush(self) -> Ready:
        ready = Ready(
            self.hard_state_bytes() if self._dirty else None,
            tuple(self._out),
            tuple(self._validate),
            tuple(self._committed),
            tuple(self._bad),
            tuple(self._serve),
        )
        self._dirty = False
        self._reset_ready()
        return ready

    def _report(self, peer: bytes, code: str, detail: str = "") -> None:
        self._bad.append(Misbehaviour(peer, code, detail))

    def _send(self, env: Envelope, destination: bytes | None = None) -> None:
        self._out.append(Outbound(destination, codec.encode(env.to_value())))

    def _seal(
        self,
        body: PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | Fetch | Blocks,
        payload: bytes = b"",
    ) -> Envelope:
        return seal(self.cfg.chain_id, self.me, self.cfg.signer.sign_raw, body, payload)

    def _vote(self, kind: str, view: int, seq: int, digest: bytes) -> bool:
        """Record a vote before signing; False if it would be a second digest (never sign)."""
        known = self.votes.get((kind, view, seq))
        if known is not None:
            return known == digest
        self.votes[(kind, view, seq)] = digest
        self._dirty = True
        return True

    # ---- hard state ----------------------------------------------------------------------

    def _encoded(self, record: Envelope | PreparedProof, cache: dict[object, bytes]) -> bytes:
        """Canonical bytes of a certificate, encoded once while it stays in the hard state."""
        data = self._encode_cache.get(record)
        if data is None:
            data = record.encode()
        cache[record] = data
        return data

    def hard_state(self) -> HardState:
        cache: dict[object, bytes] = {}
        prepared = tuple(
            self._encoded(s.prepared, cache)
            for _, s in sorted(self.slots.items())
            if s.prepared is not None
        )
        # Payloads of prepared, undelivered blocks: if every replica holding one crashed,
        # a NEW-VIEW could re-propose a digest nobody can execute (§4.4 needs the request).
        payloads = tuple(
            s.payload_for(s.prepared_digest())
            for _, s in sorted(self.slots.items())
            if s.prepared is not None and s.seq > self.delivered_seq
        )
        votes = tuple(
            Vote(kind, view, seq, digest)
            for (kind, view, seq), digest in sorted(self.votes.items())
        )
        state = HardState(
            self.view,
            self.view_active,
            self.stable_seq,
            self.stable_digest,
            tuple(self._encoded(env, cache) for env in self.stable_proof),
            self.executed_seq,
            self.executed_digest,
            tuple(self.epochs),
            votes,
            prepared,
            None if self.own_vc is None else self._encoded(self.own_vc, cache),
            None if self.own_nv is None else self._encoded(self.own_nv, cache),
            tuple(p for p in payloads if p),
        )
        self._encode_cache = cache  # bounded: only what this hard state holds
        return state

    def hard_state_bytes(self) -> bytes:
        return self.hard_state().encode()

    def _restore(self, hs: HardState) -> None:
        self.view, self.view_active = hs.view, hs.view_active
        self.stable_seq, self.stable_digest = hs.stable_seq, hs.stable_digest
        self.stable_proof = tuple(Envelope.decode(data) for data in hs.stable_proof)
        self.executed_seq, self.executed_digest = hs.executed_seq, hs.executed_digest
        self.delivered_seq = hs.executed_seq
        self.epochs = list(hs.epochs)
        self.votes = {(v.kind, v.view, v.seq): v.digest for v in hs.votes}
        self.own_vc = None if hs.view_change is None else Envelope.decode(hs.view_change)
        self.own_nv = None if hs.new_view is None else Envelope.decode(hs.new_view)
        payloads = {self.cfg.digest(p): p for p in hs.prepared_payloads}
        for data in hs.prepared:
            proof = PreparedProof.decode(data)
            pre_prepare = body_of(proof.pre_prepare)
            assert isinstance(pre_prepare, PrePrepare)
            slot = self._slot(pre_prepare.seq)
            slot.prepared = proof
            payload = payloads.get(pre_prepare.digest)
            if payload is not None:  # the pre-prepare we accepted before the crash
                pp_env = proof.pre_prepare
                slot.accept(pre_prepare.view, pre_prepare.digest, payload, pp_env, validated=True)
        if self.own_vc is not None and not self.view_active:
            vc = body_of(self.own_vc)
            assert isinstance(vc, ViewChange)
            self.view_changes[self.me] = (self.own_vc, vc)

    # ---- invariants ----------------------------------------------------------------------

    def check_invariants(self) -> None:
        if not self.stable_seq % self.cfg.checkpoint_interval == 0:
            raise InvariantError("stable_not_on_interval", str(self.stable_seq))
        if self.executed_seq > self.delivered_seq:
            raise InvariantError("executed_beyond_delivered")
        for seq in self.slots:
            if seq <= self.stable_seq:
                raise InvariantError("slot_below_low_watermark", str(seq))
        if len(self.slots) > self.cfg.watermark_window + self.cfg.fetch_batch_max:
            raise InvariantError("log_unbounded", str(len(self.slots)))

    def _slot(self, seq: int) -> Slot:
        slot = self.slots.get(seq)
        if slot is None:
            slot = self.slots[seq] = Slot(seq)
        return slot

    def _in_window(self, seq: int) -> bool:
        return self.stable_seq < seq <= self.high_watermark

    def _known_sender(self, sender: bytes) -> bool:
        return any(sender in e.validators.validators for e in self.epochs)

    def _deliver(self) -> None:
        while True:
            slot = self.slots.get(self.delivered_seq + 1)
            if slot is None or slot.certificate is None or slot.committed_payload is None:
                break
            self.delivered_seq += 1
            self._emit_committed(slot.seq, slot.committed_payload, slot.certificate)

    def _emit_committed(self, seq: int, payload: bytes, certificate: CommitCertificate) -> None:
        self._committed.append(Committed(seq, payload, certificate))
        self.app_work = False
        self.timer_ticks = 0
        self.backoff = 0
        self.last_progress_tick = self.ticks
