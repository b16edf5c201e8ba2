"""One sequence number's log entry (§4.2): the accepted PRE-PREPARE and the votes for it.

Rule kept here: a slot holds at most one vote per sender per kind (the highest view
wins), so the log is bounded by window x validators; the prepared certificate of the
highest view survives a view change because VIEW-CHANGE must carry it (§4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.messages import Envelope, PreparedProof, PrePrepare, body_of
from node.ledger.certificate import CommitCertificate

VoteEntry = tuple[Envelope, int, bytes]  # (signed message, view, digest)


@dataclass(slots=True)
class Slot:
    seq: int
    view: int = -1
    digest: bytes | None = None
    payload: bytes | None = None
    pre_prepare: Envelope | None = None  # signed, payload stripped
    validated: bool = False
    prepares: dict[bytes, VoteEntry] = field(default_factory=dict)
    commits: dict[bytes, VoteEntry] = field(default_factory=dict)
    prepared: PreparedProof | None = None
    certificate: CommitCertificate | None = None
    committed_payload: bytes | None = None

    def accept(
        self,
        view: int,
        digest: bytes,
        payload: bytes | None,
        pre_prepare: Envelope,
        validated: bool,
    ) -> None:
        if payload is None and self.digest == digest:
            payload = self.payload
        self.view, self.digest, self.payload = view, digest, payload
        self.pre_prepare, self.validated = pre_prepare, validated
        if (
            self.certificate is not None
            and self.committed_payload is None
            and payload is not None
            and self.certificate.block_hash == digest
        ):
            self.committed_payload = payload

    def clear_proposal(self) -> None:
        """§4.4: a pre-prepare from an old view that NEW-VIEW did not carry is void."""
        self.digest, self.pre_prepare, self.validated = None, None, False

    def payload_for(self, digest: bytes) -> bytes:
        if self.digest == digest and self.payload:
            return self.payload
        if self.certificate is not None and self.certificate.block_hash == digest:
            return self.committed_payload or b""
        return b""

    def prepared_digest(self) -> bytes:
        assert self.prepared is not None
        pre_prepare = body_of(self.prepared.pre_prepare)
        assert isinstance(pre_prepare, PrePrepare)
        return pre_prepare.digest

    def prepared_view(self) -> int:
        if self.prepared is None:
            return -1
        pre_prepare = body_of(self.prepared.pre_prepare)
        assert isinstance(pre_prepare, PrePrepare)
        return pre_prepare.view

    @staticmethod
    def matching(votes: dict[bytes, VoteEntry], view: int, digest: bytes) -> list[Envelope]:
        """Votes for exactly (view, digest), in sender order (deterministic certificates)."""
        return [env for sender, (env, v, d) in sorted(votes.items()) if v == view and d == digest]
