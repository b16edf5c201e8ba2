"""The PBFT replica: `Replica.step(input) -> Ready`, pure and deterministic.

Rules kept here (Castro & Liskov, OSDI'99 / TOCS'02, signatures instead of MACs):
- §4.2 normal case: the primary of view v pre-prepares; a backup asks the application to
  validate, then PREPAREs; 2f PREPAREs + PRE-PREPARE = prepared, then COMMIT; 2f+1 COMMITs
  = committed, and those signatures are the block's `CommitCertificate`.
- §4.3 checkpoints every K; 2f+1 matching = stable; the log lives in the watermark window
  (stable, stable + L] and everything at or below the stable checkpoint is dropped.
- §4.4 view change on timeout; §4.5.2 timeouts double and f+1 view changes pull a replica in.
- A replica never signs two digests for one (kind, view, seq): every vote is recorded in
  the hard state before the message carrying it can be sent.
- Catch-up: behind replicas FETCH committed blocks with certificates and verify them.
- Remote bad input becomes `Misbehaviour`; only broken local invariants raise. Messages
  for stale views and exact duplicates are dropped silently: delays and retransmission
  make them routine for honest peers. Conflicting ones (equivocation) are reported.

Layout: `state.py` holds fields, `Ready` accumulation, hard state and invariants;
`catchup.py` retransmission and block fetching; `viewchange.py` the pure §4.4 checks and
NEW-VIEW computation; `slots.py` one log entry; this module the dispatch and protocol.
"""

from __future__ import annotations

from consensus import viewchange
from consensus.catchup import CatchUp
from consensus.errors import InvariantError, UsageError
from consensus.messages import (
    BODY_BYTES_MAX,
    COMMIT,
    NEW_VIEW,
    NULL_DIGEST,
    PRE_PREPARE,
    PREPARE,
    VIEW_CHANGE,
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
    signature_ok,
)
from consensus.slots import Slot, VoteEntry
from consensus.state import CHECKPOINTS_KEPT_PER_PEER, activation_seq
from consensus.types import (
    Epoch,
    Executed,
    Input,
    ProposalVerdict,
    Propose,
    Ready,
    Receive,
    ServeBlocks,
    Tick,
    ToValidate,
)
from node.ledger import codec
from node.ledger.certificate import CommitCertificate, CommitSignature, ValidatorSet
from node.ledger.errors import LedgerError

__all__ = ["Replica", "activation_seq"]

# A NEW-VIEW travels as one envelope whose body (view changes + re-proposals with their
# payloads) is a single msgpack bin, which the codec caps at 1 MiB: payloads beyond this
# budget are left out (replicas lacking one fetch the block once it commits).
NEW_VIEW_PAYLOAD_BYTES_MAX = 512 * 1024


class Replica(CatchUp):
    """One PBFT replica. Drive it only through `step`; read-only properties help the shell."""

    # ---- the one entry point -------------------------------------------------------------

    def step(self, event: Input) -> Ready:
        match event:
            case Receive(sender, data):
                self._on_receive(sender, data)
            case Tick():
                self._on_tick()
            case Propose(payload):
                self._on_propose(payload)
            case ProposalVerdict(view, seq, digest, valid):
                self._on_verdict(view, seq, digest, valid)
            case Executed(seq, state_digest, validators):
                self._on_executed(seq, state_digest, validators)
            case ServeBlocks(requester, blocks):
                self._on_serve(requester, blocks)
            case _:
                raise UsageError("unknown_input", type(event).__name__)
        self.check_invariants()
        return self._flush()

    # ---- receive dispatch ----------------------------------------------------------------

    def _on_receive(self, sender: bytes, data: bytes) -> None:
        try:
            env = Envelope.from_value(codec.decode(data))
            body = body_of(env)
        except LedgerError as exc:
            self._report(sender, "malformed", exc.code)
            return
        # A NEW-VIEW is self-certifying (signed by the new primary, carrying 2f+1 signed
        # VIEW-CHANGEs), so a replica may relay it to a lagging peer (§4.4); every other
        # message must come from its signer.
        if env.sender != sender and env.kind != NEW_VIEW:
            self._report(sender, "sender_mismatch")
            return
        if not self._known_sender(sender):
            self._report(sender, "unknown_sender")
            return
        if not signature_ok(self.cfg.chain_id, env, body, self.cfg.verifier):
            self._report(sender, "bad_signature", env.kind)
            return
        match body:
            case PrePrepare():
                self._on_pre_prepare(env, body)
            case Prepare():
                self._on_prepare(env, body)
            case Commit():
                self._on_commit(env, body)
            case Checkpoint():
                self._on_checkpoint(env, body)
            case ViewChange():
                self._on_view_change(env, body)
            case NewView():
                self._on_new_view(env, body)
            case Fetch():
                self._on_fetch(env, body)
            case Blocks():
                self._on_blocks(env, body)

    def _normal_case_ok(self, env: Envelope, view: int, seq: int) -> bool:
        """Common §4.2 acceptance: member of the window's set, current view, in watermarks."""
        if env.sender not in self.validators.validators:
            self._report(env.sender, "not_a_member", env.kind)
            return False
        if seq > self.high_watermark:
            self.peer_high[env.sender] = max(self.peer_high.get(env.sender, 0), seq - 1)
            if seq > self.stable_seq + 4 * self.cfg.watermark_window:
                self._report(env.sender, "out_of_watermark", f"{env.kind} seq {seq}")
            return False
        if seq <= self.stable_seq:
            return False  # old news (retransmission); already stable here
        if view > self.view or (view == self.view and not self.view_active):
            return env.kind == COMMIT  # commits of a later view still prove commitment
        return True

    # ---- §4.2 normal case ----------------------------------------------------------------

    def _on_propose(self, payload: bytes) -> None:
        if len(payload) > self.cfg.payload_bytes_max:
            raise UsageError("payload_too_large", f"{len(payload)} > {self.cfg.payload_bytes_max}")
        self.app_work = True
        if not (self.is_primary and self.is_member):
            return  # §4.4: a backup that holds work runs its timer; the primary builds blocks
        self.pending_payload = payload
        self._propose_pending()

    def _propose_pending(self) -> None:
        if self.pending_payload is None or not self.can_propose:
            return
        payload, self.pending_payload = self.pending_payload, None
        seq, digest = self.next_seq, self.cfg.digest(payload)
        if not self._vote(PRE_PREPARE, self.view, seq, digest):
            raise InvariantError("pre_prepare_equivocation", f"view {self.view} seq {seq}")
        env = self._seal(PrePrepare(self.view, seq, digest), payload)
        slot = self._slot(seq)
        slot.accept(self.view, digest, payload, env.without_payload(), validated=True)
        self._send(env)
        self._check_prepared(slot)

    def _on_pre_prepare(self, env: Envelope, pp: PrePrepare) -> None:
        if not self._normal_case_ok(env, pp.view, pp.seq) or pp.view < self.view:
            return
        if env.sender != self.validators.primary(pp.view):
            self._report(env.sender, "not_primary", f"view {pp.view}")
            return
        slot = self._slot(pp.seq)
        if slot.view == pp.view and slot.digest is not None:
            if slot.digest != pp.digest:
                self._report(env.sender, "equivocation", f"pre-prepare seq {pp.seq}")
            elif slot.payload is None and env.payload:
                slot.payload = env.payload if self.cfg.digest(env.payload) == pp.digest else None
            return
        if pp.digest == NULL_DIGEST or not env.payload or self.cfg.digest(env.payload) != pp.digest:
            self._report(env.sender, "bad_payload", f"seq {pp.seq}")
            return
        slot.accept(pp.view, pp.digest, env.payload, env.without_payload(), validated=False)
        self._validate.append(ToValidate(pp.view, pp.seq, pp.digest, env.payload))

    def _on_verdict(self, view: int, seq: int, digest: bytes, valid: bool) -> None:
        slot = self.slots.get(seq)
        if slot is None or (slot.view, slot.digest) != (view, digest) or view != self.view:
            return  # superseded by a view change or garbage-collected
        if not valid:
            self._report(self.validators.primary(view), "invalid_proposal", f"seq {seq}")
            if self.view_active:
                self._start_view_change(self.view + 1)
            return
        slot.validated = True
        self._send_prepare(slot)

    def _send_prepare(self, slot: Slot) -> None:
        assert slot.digest is not None
        if not self.is_member or self.validators.primary(slot.view) == self.me:
            return
        if not self._vote(PREPARE, slot.view, slot.seq, slot.digest):
            return  # we prepared another digest in this view before a restart; stay silent
        env = self._seal(Prepare(slot.view, slot.seq, slot.digest))
        slot.prepares[self.me] = (env, slot.view, slot.digest)
        self._send(env)
        self._check_prepared(slot)

    def _on_prepare(self, env: Envelope, p: Prepare) -> None:
        if not self._normal_case_ok(env, p.view, p.seq) or p.view < self.view:
            return
        if env.sender == self.validators.primary(p.view):
            self._report(env.sender, "primary_prepared", f"seq {p.seq}")
            return
        slot = self._slot(p.seq)
        if self._store_vote(slot.prepares, env, p.view, p.digest, PREPARE):
            self._check_prepared(slot)

    def _store_vote(
        self, votes: dict[bytes, VoteEntry], env: Envelope, view: int, digest: bytes, kind: str
    ) -> bool:
        old = votes.get(env.sender)
        if old is not None:
            old_env, old_view, old_digest = old
            if old_view > view or old_env == env:
                return False
            if old_view == view and old_digest != digest:
                self._report(env.sender, "double_vote", f"{kind} view {view}")
                return False
        votes[env.sender] = (env, view, digest)
        return True

    def _check_prepared(self, slot: Slot) -> None:
        if slot.digest is None or not slot.validated:
            return
        matching = slot.matching(slot.prepares, slot.view, slot.digest)
        if len(matching) < 2 * self.validators.f:
            return
        if slot.prepared_view() != slot.view:
            assert slot.pre_prepare is not None
            slot.prepared = PreparedProof(slot.pre_prepare, tuple(matching))
            self._dirty = True
        self._send_commit(slot)

    def _send_commit(self, slot: Slot) -> None:
        assert slot.digest is not None
        mine = slot.commits.get(self.me)
        if not self.is_member or (mine is not None and mine[1] >= slot.view):
            return
        if not self._vote(COMMIT, slot.view, slot.seq, slot.digest):
            return
        env = self._seal(Commit(slot.view, slot.seq, slot.digest))
        slot.commits[self.me] = (env, slot.view, slot.digest)
        self._send(env)
        self._check_committed(slot, slot.view, slot.digest)

    def _on_commit(self, env: Envelope, c: Commit) -> None:
        self.peer_high[env.sender] = max(self.peer_high.get(env.sender, 0), c.seq)
        if not self._normal_case_ok(env, c.view, c.seq):
            return
        slot = self._slot(c.seq)
        if self._store_vote(slot.commits, env, c.view, c.digest, COMMIT):
            self._check_committed(slot, c.view, c.digest)

    def _check_committed(self, slot: Slot, view: int, digest: bytes) -> None:
        """§4.2 committed: 2f+1 COMMITs for (view, seq, digest); they form the certificate."""
        if slot.certificate is not None:
            return
        matching = slot.matching(slot.commits, view, digest)
        if len(matching) < self.validators.quorum:
            return
        signatures = tuple(CommitSignature(e.sender, e.signature) for e in matching)
        slot.certificate = CommitCertificate(slot.seq, view, digest, signatures)
        if digest == NULL_DIGEST:
            slot.committed_payload = b""
        elif slot.digest == digest and slot.payload is not None:
            slot.committed_payload = slot.payload
        self._deliver()

    # ---- §4.3 checkpoints and garbage collection -----------------------------------------

    def _on_executed(self, seq: int, state_digest: bytes, validators: ValidatorSet | None) -> None:
        if seq <= self.executed_seq:
            return  # the shell re-reported an already executed block (restart)
        if seq != self.executed_seq + 1:
            raise UsageError("executed_out_of_order", f"{seq} after {self.executed_seq}")
        # After a restart the shell re-reports blocks its store holds beyond the hard state.
        self.delivered_seq = max(self.delivered_seq, seq)
        # Not a reason to persist: after a restart the shell re-reports what its store holds.
        self.executed_seq, self.executed_digest = seq, state_digest
        if validators is not None and validators != self.epochs[-1].validators:
            start = activation_seq(seq, self.cfg.checkpoint_interval, self.cfg.watermark_window)
            self.epochs = [e for e in self.epochs if e.start_seq < start]
            self.epochs.append(Epoch(start, validators))
            self._dirty = True
        if seq % self.cfg.checkpoint_interval == 0:
            if seq == self.stable_seq and state_digest != self.stable_digest:
                raise InvariantError("state_divergence", f"executed checkpoint {seq}")
            self.own_checkpoints[seq] = state_digest
            if self.me in self.set_for(seq + 1).validators:
                env = self._seal(Checkpoint(seq, state_digest))
                self.own_checkpoint_env = env
                self._store_checkpoint(env, seq, state_digest)
                self._send(env)
            self._check_stable()
        if self.fetch_after_execution and seq == self.delivered_seq:
            # catching up, the last fetch was held back by the watermark window: every
            # fetched block is executed now, so fetch the next batch at once rather than
            # at the next retransmit period (that paced catch-up at window/period)
            self.fetch_after_execution = False
            self._maybe_fetch()
        self._propose_pending()

    def _on_checkpoint(self, env: Envelope, cp: Checkpoint) -> None:
        self.peer_high[env.sender] = max(self.peer_high.get(env.sender, 0), cp.seq)
        if cp.seq <= self.stable_seq or cp.seq % self.cfg.checkpoint_interval:
            return
        self._store_checkpoint(env, cp.seq, cp.state_digest)
        self._check_stable()

    def _store_checkpoint(self, env: Envelope, seq: int, state_digest: bytes) -> None:
        mine = self.checkpoints.setdefault(env.sender, {})
        mine[seq] = (env, state_digest)
        for old in sorted(mine)[:-CHECKPOINTS_KEPT_PER_PEER]:
            del mine[old]

    def _check_stable(self) -> None:
        """§4.3: the highest checkpoint with 2f+1 matching signatures becomes stable."""
        tally: dict[tuple[int, bytes], list[Envelope]] = {}
        for sender in sorted(self.checkpoints):
            for seq, (env, state_digest) in self.checkpoints[sender].items():
                known_set = seq + 1 <= self.executed_seq + self.cfg.watermark_window
                if seq > self.stable_seq and known_set:
                    if sender in self.set_for(seq + 1).validators:
                        tally.setdefault((seq, state_digest), []).append(env)
        for (seq, digest), envs in sorted(tally.items(), reverse=True):
            if len(envs) >= self.set_for(seq + 1).quorum:
                self._make_stable(seq, digest, tuple(envs))
                return

    def _make_stable(self, seq: int, digest: bytes, proof: tuple[Envelope, ...]) -> None:
        own = self.own_checkpoints.get(seq)
        if own is not None and own != digest:
            raise InvariantError("state_divergence", f"checkpoint {seq}")
        self.stable_seq, self.stable_digest, self.stable_proof = seq, digest, proof
        self._dirty = True
        floor = min(seq, self.executed_seq) + 1  # epochs wholly below it are history
        while len(self.epochs) > 1 and self.epochs[1].start_seq <= floor:
            self.epochs.pop(0)
        for s in [s for s in self.slots if s <= seq]:
            del self.slots[s]
        self.votes = {k: d for k, d in self.votes.items() if k[2] > seq}
        self.own_checkpoints = {s: d for s, d in self.own_checkpoints.items() if s >= seq}
        for mine in self.checkpoints.values():
            for s in [s for s in mine if s <= seq]:
                del mine[s]
        self._propose_pending()

    # ---- §4.4 view change ----------------------------------------------------------------

    def _vc_context(self) -> viewchange.Context:
        return viewchange.Context(
            self.cfg.chain_id,
            self.cfg.verifier,
            self.validators,
            self.set_for,
            self.cfg.checkpoint_interval,
            self.cfg.watermark_window,
            self.cfg.genesis_state_digest,
        )

    def _start_view_change(self, view: int) -> None:
        if view <= self.view and not self.view_active:
            return
        self.view, self.view_active = view, False
        self.timer_ticks = 0
        self.backoff = min(self.backoff + 1, self.cfg.max_backoff_exponent)
        self.own_nv = None
        self._dirty = True
        if not self.is_member:
            return
        prepared = tuple(
            s.prepared
            for _, s in sorted(self.slots.items())
            if s.prepared is not None and self._in_window(s.seq)
        )
        body = ViewChange(view, self.stable_seq, self.stable_digest, self.stable_proof, prepared)
        self.own_vc = self._seal(body)
        self.view_changes[self.me] = (self.own_vc, body)
        self._send(self.own_vc)
        self._try_new_view()

    def _on_view_change(self, env: Envelope, vc: ViewChange) -> None:
        if env.sender not in self.validators.validators:
            self._report(env.sender, "not_a_member", "view-change")
            return
        if vc.view < self.view or (vc.view == self.view and self.view_active):
            self._help_lagging(env.sender)
            return
        known = self.view_changes.get(env.sender)
        if known is not None and known[1].view >= vc.view:
            return
        if vc.stable_seq > self.high_watermark:
            self.peer_high[env.sender] = max(self.peer_high.get(env.sender, 0), vc.stable_seq)
            return  # we are behind: catch up first (fetch), then judge
        try:
            viewchange.check_view_change(self._vc_context(), vc)
        except viewchange.Invalid as exc:
            self._report(env.sender, "bad_view_change", exc.code)
            return
        self.view_changes[env.sender] = (env, vc)
        # §4.5.2: f+1 view changes for higher views pull us into the smallest of them.
        higher = sorted(v.view for s, (_, v) in self.view_changes.items() if v.view > self.view)
        if len(higher) >= self.validators.f + 1:
            self._start_view_change(higher[0])
        self._try_new_view()

    def _help_lagging(self, peer: bytes) -> None:
        if self.own_nv is None or self.last_reply_tick.get(peer, -1) + 2 > self.ticks:
            return
        self.last_reply_tick[peer] = self.ticks
        self._send(self.own_nv, peer)

    def _try_new_view(self) -> None:
        """§4.4: the primary of v, holding 2f+1 valid VIEW-CHANGEs for v, sends NEW-VIEW."""
        if self.view_active or not self.is_primary or not self.is_member:
            return
        chosen = [
            (env, vc) for _, (env, vc) in sorted(self.view_changes.items()) if vc.view == self.view
        ][: self.validators.quorum]
        if len(chosen) < self.validators.quorum:
            return
        plan = viewchange.compute_new_view([vc for _, vc in chosen])
        for seq, digest in plan.proposals:
            if not self._vote(PRE_PREPARE, self.view, seq, digest):
                raise InvariantError("new_view_equivocation", f"seq {seq}")
        body = self._new_view_body(chosen, plan, NEW_VIEW_PAYLOAD_BYTES_MAX)
        if len(body.encode()) > BODY_BYTES_MAX:
            body = self._new_view_body(chosen, plan, 0)  # the view changes alone must fit
        env = self._seal(body)
        self._send(env)
        self._install_new_view(env, body, plan, [vc for _, vc in chosen])

    def _new_view_body(
        self,
        chosen: list[tuple[Envelope, ViewChange]],
        plan: viewchange.NewViewPlan,
        payload_budget: int,
    ) -> NewView:
        pre_prepares = []
        for seq, digest in plan.proposals:
            payload = self._payload_for(seq, digest)
            payload_budget -= len(payload)
            if payload_budget < 0:
                payload = b""  # too big to carry: replicas lacking it fetch it once committed
            pre_prepares.append(self._seal(PrePrepare(self.view, seq, digest), payload))
        return NewView(self.view, tuple(env for env, _ in chosen), tuple(pre_prepares))

    def _payload_for(self, seq: int, digest: bytes) -> bytes:
        if digest == NULL_DIGEST:
            return b""
        slot = self.slots.get(seq)
        return slot.payload_for(digest) if slot is not None else b""

    def _on_new_view(self, env: Envelope, nv: NewView) -> None:
        if nv.view < self.view or (nv.view == self.view and self.view_active):
            return
        if env.sender != self.validators.primary(nv.view):
            self._report(env.sender, "not_primary", f"new-view {nv.view}")
            return
        try:
            plan, vcs = self._verify_new_view(nv)
        except viewchange.Invalid as exc:
            self._report(env.sender, "bad_new_view", exc.code)
            return
        self._install_new_view(env, nv, plan, vcs)

    def _verify_new_view(self, nv: NewView) -> tuple[viewchange.NewViewPlan, list[ViewChange]]:
        ctx = self._vc_context()
        vcs: list[ViewChange] = []
        senders: set[bytes] = set()
        for vc_env in nv.view_changes:
            vc = viewchange.checked_body(ctx, vc_env, VIEW_CHANGE)
            assert isinstance(vc, ViewChange)
            if vc.view != nv.view or vc_env.sender in senders:
                raise viewchange.Invalid("view_change_mismatch")
            viewchange.check_view_change(ctx, vc)
            senders.add(vc_env.sender)
            vcs.append(vc)
        if len(senders) < ctx.validators.quorum:
            raise viewchange.Invalid("new_view_no_quorum")
        plan = viewchange.compute_new_view(vcs)
        if len(plan.proposals) != len(nv.pre_prepares):
            raise viewchange.Invalid("new_view_wrong_proposals")
        for (seq, digest), pp_env in zip(plan.proposals, nv.pre_prepares, strict=True):
            pp = viewchange.checked_body(ctx, pp_env, PRE_PREPARE)
            assert isinstance(pp, PrePrepare)
            if (pp.view, pp.seq, pp.digest) != (nv.view, seq, digest):
                raise viewchange.Invalid("new_view_wrong_proposals")
            if pp_env.sender != ctx.validators.primary(nv.view):
                raise viewchange.Invalid("pre_prepare_not_from_primary")
            if pp_env.payload and self.cfg.digest(pp_env.payload) != digest:
                raise viewchange.Invalid("bad_payload")
        return plan, vcs

    def _install_new_view(
        self, env: Envelope, nv: NewView, plan: viewchange.NewViewPlan, vcs: list[ViewChange]
    ) -> None:
        self.view, self.view_active, self.own_nv = nv.view, True, env
        self.timer_ticks = 0
        self._dirty = True
        self.view_changes = {s: e for s, e in self.view_changes.items() if e[1].view > nv.view}
        if plan.min_s > self.stable_seq:
            source = vcs[plan.proof_source]
            self._make_stable(plan.min_s, plan.stable_digest, source.checkpoint_proof)
        max_s = plan.min_s + len(plan.proposals)
        for seq in [s for s, slot in self.slots.items() if s > max_s and slot.certificate is None]:
            self.slots[seq].clear_proposal()
        for (seq, digest), pp_env in zip(plan.proposals, nv.pre_prepares, strict=True):
            if not self._in_window(seq):
                continue  # below: already stable; above: we are behind and will fetch
            slot = self._slot(seq)
            payload = pp_env.payload or (b"" if digest == NULL_DIGEST else slot.payload_for(digest))
            slot.accept(nv.view, digest, payload or None, pp_env.without_payload(), validated=True)
            if digest == NULL_DIGEST:
                slot.payload = b""
            self._send_prepare(slot)
            self._check_prepared(slot)
        self._propose_pending()

    # ---- ticks: timers (§4.4, §4.5.2) --------------------------------------------------
    def _work_waiting(self) -> bool:
        if self.app_work or self.pending_payload is not None:
            return True
        return any(s.digest is not None and s.certificate is None for s in self.slots.values())

    def _on_tick(self) -> None:
        self.ticks += 1
        timeout = self.cfg.view_change_timeout_ticks
        if not self.is_member:
            self.timer_ticks = 0  # spares and removed validators follow; they never vote
        elif self.view_active:
            self.timer_ticks = self.timer_ticks + 1 if self._work_waiting() else 0
            if self.timer_ticks >= timeout:
                self._start_view_change(self.view + 1)
        elif self._view_change_quorum():
            # §4.5.2: the new-view timer runs only once 2f+1 replicas want this view, so a
            # lone replica does not race ahead through views nobody else is in.
            self.timer_ticks += 1
            if self.timer_ticks >= timeout << self.backoff:
                self._start_view_change(self.view + 1)
        if self.ticks % self.cfg.retransmit_ticks == 0:
            self._retransmit()
            self._maybe_fetch()

    def _view_change_quorum(self) -> bool:
        wanting = [s for s, (_, vc) in self.view_changes.items() if vc.view >= self.view]
        return len(wanting) >= self.validators.quorum
