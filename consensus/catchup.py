"""Recovering from loss and lag: retransmission and catch-up by fetching certified blocks.

Rules kept here: lost messages are re-sent periodically (receivers drop exact duplicates
silently). A replica that at least f+1 peers have left behind (so one honest one) FETCHes
committed blocks with their `CommitCertificate`s and checks each against the validator
set in force at that height before delivering it; it does not replay consensus. Serving
is rate-limited per peer and size-bounded, so a node offline for 10,000 blocks rejoins in
batches of `fetch_batch_max` while a flooder gains nothing.
"""

from __future__ import annotations

from consensus.messages import (
    COMMIT,
    NULL_DIGEST,
    Blocks,
    Checkpoint,
    Commit,
    Envelope,
    Fetch,
    FetchedBlock,
    commit_signing_bytes,
)
from consensus.state import ReplicaState
from consensus.types import (
    ServeRequest,
)

BLOCKS_BYTES_MAX = 960 * 1024  # a BLOCKS body is one msgpack bin (the codec caps it at 1 MiB)
EVIDENCE_BROADCAST_PERIODS = 4


class CatchUp(ReplicaState):
    """Retransmission and block fetching, mixed into `Replica`."""

    def _retransmit(self) -> None:
        """Messages can be lost: periodically re-send what this replica signed and still
        matters (exact duplicates are dropped silently by receivers)."""
        if not self.is_member:
            return
        if not self.view_active and self.own_vc is not None:
            self._send(self.own_vc)
        self._send_progress_evidence()
        for _, slot in sorted(self.slots.items()):
            mine = slot.commits.get(self.me)
            if slot.certificate is not None:
                continue
            if slot.view == self.view and slot.pre_prepare is not None:
                if slot.pre_prepare.sender == self.me and slot.payload:
                    self._send(slot.pre_prepare.with_payload(slot.payload))
                prepare = slot.prepares.get(self.me)
                if prepare is not None:
                    self._send(prepare[0])
            if mine is not None:
                self._send(mine[0])

    def _send_progress_evidence(self) -> None:
        """Tell peers how far this replica got: its latest CHECKPOINT and its highest
        COMMIT vote. Both are rebuilt from the hard state after a restart (re-signing a
        recorded vote signs the same digest again), so an idle cluster still shows a
        lagging replica what to fetch. Broadcast every `EVIDENCE_BROADCAST_PERIODS`
        retransmit periods; in between only to peers known to be behind."""
        if self.own_checkpoint_env is None and 0 < self.stable_seq <= self.executed_seq:
            self.own_checkpoint_env = self._seal(Checkpoint(self.stable_seq, self.stable_digest))
        evidence = [self.own_checkpoint_env] if self.own_checkpoint_env is not None else []
        commits = [key for key in self.votes if key[0] == COMMIT and key[2] <= self.delivered_seq]
        if commits:
            key = max(commits, key=lambda k: (k[2], k[1]))
            if self._evidence_commit is None or self._evidence_commit[0] != key:
                body = Commit(key[1], key[2], self.votes[key])
                self._evidence_commit = (key, self._seal(body))
            evidence.append(self._evidence_commit[1])
        period = self.ticks // self.cfg.retransmit_ticks
        if period % EVIDENCE_BROADCAST_PERIODS == 0:
            targets: list[bytes | None] = [None]
        else:
            targets = [
                peer
                for peer in self.validators.validators
                if peer != self.me and self.peer_high.get(peer, 0) < self.delivered_seq
            ]
        for target in targets:
            for env in evidence:
                self._send(env, target)

    @property
    def catch_up_target(self) -> int:
        """The seq that at least f+1 peers (so one honest) have reached (read-only; the
        shell reports "syncing" while its executed seq is below it)."""
        highs = sorted(self.peer_high.values(), reverse=True)
        f = self.validators.f
        target = highs[f] if len(highs) > f else 0
        return max(target, self.stable_seq)

    def _maybe_fetch(self, peer: bytes | None = None) -> None:
        target = self.catch_up_target
        if target <= self.delivered_seq:
            return
        nxt = self.slots.get(self.delivered_seq + 1)
        stalled = self.ticks - self.last_progress_tick >= self.cfg.retransmit_ticks
        if peer is None:
            if nxt is not None and nxt.certificate is None and not stalled:
                return
            peers = sorted(
                p for p, h in self.peer_high.items() if h > self.delivered_seq and p != self.me
            )
            if not peers:
                return
            peer = peers[self.fetch_round % len(peers)]
            self.fetch_round += 1
        room = self.executed_seq + self.cfg.watermark_window
        last = min(target, self.delivered_seq + self.cfg.fetch_batch_max, room)
        if last > self.delivered_seq:
            self._send(self._seal(Fetch(self.delivered_seq + 1, last)), peer)
        else:  # fetched blocks fill the window: fetch again once they are executed
            self.fetch_after_execution = room <= self.delivered_seq

    def _on_fetch(self, env: Envelope, fetch: Fetch) -> None:
        # One answer per peer per retransmit period, except for a peer moving forward
        # through the chain (the next batch): a flooder gains at most one pass over it.
        served_tick, served_to = self.last_serve.get(env.sender, (-1, 0))
        recent = served_tick >= 0 and self.ticks - served_tick < self.cfg.retransmit_ticks
        if recent and fetch.from_seq <= served_to:
            return
        last = min(fetch.to_seq, fetch.from_seq + self.cfg.fetch_batch_max - 1)
        if fetch.from_seq <= self.delivered_seq:
            last = min(last, self.delivered_seq)
            self.last_serve[env.sender] = (self.ticks, last)
            self._serve.append(ServeRequest(env.sender, fetch.from_seq, last))

    def _on_serve(self, requester: bytes, blocks: tuple[FetchedBlock, ...]) -> None:
        chosen: list[FetchedBlock] = []
        size = 0
        for block in blocks[: self.cfg.fetch_batch_max]:
            size += len(block.payload) + 200 * len(block.certificate.signatures)
            if chosen and size > BLOCKS_BYTES_MAX:
                break
            chosen.append(block)
        if chosen:
            self._send(self._seal(Blocks(tuple(chosen))), requester)

    def _on_blocks(self, env: Envelope, blocks: Blocks) -> None:
        for block in blocks.blocks:
            if block.seq != self.delivered_seq + 1:
                continue
            if block.seq > self.executed_seq + self.cfg.watermark_window:
                return  # the validator set for it may not be known yet; fetch again later
            problem = self._check_certificate(block)
            if problem is not None:
                self._report(env.sender, "bad_fetched_block", problem)
                return
            self.peer_high[env.sender] = max(self.peer_high.get(env.sender, 0), block.seq)
            self.delivered_seq += 1
            slot = self.slots.get(block.seq)
            if slot is not None:
                slot.certificate = block.certificate
                slot.committed_payload = block.payload
            self._emit_committed(block.seq, block.payload, block.certificate)
        before = self.delivered_seq
        self._deliver()
        if blocks.blocks and blocks.blocks[-1].seq == before:
            self._maybe_fetch(env.sender)  # the whole batch was good: ask for the next one

    def _check_certificate(self, block: FetchedBlock) -> str | None:
        """Like `CommitCertificate.verify`, with the injected verifier."""
        cert = block.certificate
        expected = NULL_DIGEST if block.payload == b"" else self.cfg.digest(block.payload)
        if cert.block_hash != expected:
            return "wrong_block"
        vset = self.set_for(block.seq)
        message = commit_signing_bytes(self.cfg.chain_id, cert.view, cert.height, cert.block_hash)
        signers: set[bytes] = set()
        for item in cert.signatures:
            if item.validator not in vset.validators or item.validator in signers:
                return "bad_signer"
            if not self.cfg.verifier(item.validator, message, item.signature):
                return "bad_signature"
            signers.add(item.validator)
        return None if len(signers) >= vset.quorum else "no_quorum"
