"""Consensus wire messages: typed bodies inside one signed envelope.

Rule kept here: every message is an `Envelope` encoded with the canonical codec and signed
by its sender. COMMIT signs exactly
`signing_bytes(DOMAIN_COMMIT, chain_id, commit_vote_value(view, seq, digest))`, so 2f+1
collected COMMIT signatures *are* a `CommitCertificate`. Every other kind signs
`signing_bytes(DOMAIN_CONSENSUS, chain_id, [kind, body_bytes])`, the kind inside the
signed value; the body travels as its canonical bytes, so checking a signature never
re-encodes a nested value. A PRE-PREPARE signs only (view, seq, digest); the block
bytes ride in the unsigned `payload` field, bound by `digest(payload) == digest`, so
prepared certificates in VIEW-CHANGE messages (§4.4) carry no payloads.

Decoding is strict (codec + record schema); any failure is reported by the caller as
misbehaviour, never raised out of `Replica.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from node.ledger import codec, crypto
from node.ledger.certificate import CommitCertificate, commit_vote_value
from node.ledger.records import Record, require, require_bytes, require_uint

PRE_PREPARE = "pre-prepare"
PREPARE = "prepare"
COMMIT = "commit"
CHECKPOINT = "checkpoint"
VIEW_CHANGE = "view-change"
NEW_VIEW = "new-view"
FETCH = "fetch"
BLOCKS = "blocks"

# The digest of a null request (§4.4: NEW-VIEW fills gaps with null requests). Its payload is b"".
NULL_DIGEST = crypto.sha256(b"alps/consensus/null-request/v1")
# An envelope's body and its payload are each one msgpack bin: the codec caps each at 1 MiB.
BODY_BYTES_MAX = codec.MAX_STR_BYTES
PAYLOAD_BYTES_LIMIT = 896 * 1024  # one block; leaves room in a BLOCKS body for its certificate
DIGEST_BYTES = crypto.HASH_BYTES
MAX_STATE_DIGEST_BYTES = 64

Verifier = Callable[[bytes, bytes, bytes], bool]  # (public_key, message, signature) -> ok


@dataclass(frozen=True, slots=True)
class Envelope(Record):
    """A signed message: `body` is the value of the record named by `kind`."""

    kind: str
    body: bytes  # the canonical encoding of the body record (signed as bytes: cheap to check)
    sender: bytes
    signature: bytes
    payload: bytes

    def __post_init__(self) -> None:
        require(self.kind in BODY_TYPES, f"unknown message kind {self.kind!r}")
        require(isinstance(self.body, bytes), "body must be bytes")
        require_bytes(self.sender, crypto.PUBLIC_KEY_BYTES, "sender")
        require(isinstance(self.signature, bytes) and len(self.signature) <= 128, "signature")
        require(isinstance(self.payload, bytes), "payload")
        require(self.kind == PRE_PREPARE or self.payload == b"", "payload only on pre-prepare")

    def without_payload(self) -> Envelope:
        return Envelope(self.kind, self.body, self.sender, self.signature, b"")

    def with_payload(self, payload: bytes) -> Envelope:
        return Envelope(self.kind, self.body, self.sender, self.signature, payload)


def _digest(value: bytes, name: str) -> None:
    require_bytes(value, DIGEST_BYTES, name)


def _check_vote(view: int, seq: int, digest: bytes) -> None:
    """The shape every (view, seq, digest) vote shares: PRE-PREPARE, PREPARE, COMMIT."""
    require_uint(view, "view")
    require(type(seq) is int and seq >= 1, "seq must be >= 1")
    _digest(digest, "digest")


@dataclass(frozen=True, slots=True)
class PrePrepare(Record):
    view: int
    seq: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_vote(self.view, self.seq, self.digest)


@dataclass(frozen=True, slots=True)
class Prepare(Record):
    view: int
    seq: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_vote(self.view, self.seq, self.digest)


@dataclass(frozen=True, slots=True)
class Commit(Record):
    view: int
    seq: int
    digest: bytes

    def __post_init__(self) -> None:
        _check_vote(self.view, self.seq, self.digest)


@dataclass(frozen=True, slots=True)
class Checkpoint(Record):
    seq: int
    state_digest: bytes

    def __post_init__(self) -> None:
        require(type(self.seq) is int and self.seq >= 1, "seq must be >= 1")
        require(len(self.state_digest) <= MAX_STATE_DIGEST_BYTES, "state digest too long")


@dataclass(frozen=True, slots=True)
class PreparedProof(Record):
    """A prepared certificate (§4.2): the PRE-PREPARE and 2f matching PREPAREs."""

    pre_prepare: Envelope
    prepares: tuple[Envelope, ...]


@dataclass(frozen=True, slots=True)
class ViewChange(Record):
    """§4.4 VIEW-CHANGE: stable checkpoint with its proof and prepared certificates above it."""

    view: int
    stable_seq: int
    stable_digest: bytes
    checkpoint_proof: tuple[Envelope, ...]
    prepared: tuple[PreparedProof, ...]

    def __post_init__(self) -> None:
        require_uint(self.view, "view")
        require_uint(self.stable_seq, "stable_seq")
        require(len(self.stable_digest) <= MAX_STATE_DIGEST_BYTES, "stable digest too long")


@dataclass(frozen=True, slots=True)
class NewView(Record):
    """§4.4 NEW-VIEW: the view changes it was built from and the re-proposals (set O)."""

    view: int
    view_changes: tuple[Envelope, ...]
    pre_prepares: tuple[Envelope, ...]

    def __post_init__(self) -> None:
        require_uint(self.view, "view")


@dataclass(frozen=True, slots=True)
class Fetch(Record):
    """Catch-up: ask a peer for committed blocks `from_seq..to_seq` with certificates."""

    from_seq: int
    to_seq: int

    def __post_init__(self) -> None:
        require(type(self.from_seq) is int and self.from_seq >= 1, "from_seq must be >= 1")
        require(type(self.to_seq) is int and self.to_seq >= self.from_seq, "to_seq < from_seq")


@dataclass(frozen=True, slots=True)
class FetchedBlock(Record):
    """A committed block as served to a catching-up replica; the certificate proves it."""

    seq: int
    payload: bytes
    certificate: CommitCertificate

    def __post_init__(self) -> None:
        require(type(self.seq) is int and self.seq >= 1, "seq must be >= 1")
        require(self.certificate.height == self.seq, "certificate height != seq")


@dataclass(frozen=True, slots=True)
class Blocks(Record):
    blocks: tuple[FetchedBlock, ...]


BODY_TYPES: dict[str, type[Record]] = {
    PRE_PREPARE: PrePrepare,
    PREPARE: Prepare,
    COMMIT: Commit,
    CHECKPOINT: Checkpoint,
    VIEW_CHANGE: ViewChange,
    NEW_VIEW: NewView,
    FETCH: Fetch,
    BLOCKS: Blocks,
}
KIND_OF: dict[type[Record], str] = {tp: kind for kind, tp in BODY_TYPES.items()}


def commit_signing_bytes(chain_id: str, view: int, seq: int, digest: bytes) -> bytes:
    """Exactly what `CommitCertificate.verify` checks each signature against."""
    vote = commit_vote_value(view, seq, digest)
    return crypto.signing_bytes(crypto.DOMAIN_COMMIT, chain_id, vote)


def signed_bytes(chain_id: str, kind: str, body: Record, body_bytes: bytes) -> bytes:
    """The exact bytes a sender signs for a message of `kind` (body already decoded)."""
    if isinstance(body, Commit):
        return commit_signing_bytes(chain_id, body.view, body.seq, body.digest)
    return crypto.signing_bytes(crypto.DOMAIN_CONSENSUS, chain_id, [kind, body_bytes])


def seal(
    chain_id: str, sender: bytes, sign: Callable[[bytes], bytes], body: Record, payload: bytes = b""
) -> Envelope:
    """Sign `body` as `sender` and wrap it in an envelope."""
    kind = KIND_OF[type(body)]
    body_bytes = body.encode()
    signature = sign(signed_bytes(chain_id, kind, body, body_bytes))
    return Envelope(kind, body_bytes, sender, signature, payload)


def body_of(envelope: Envelope) -> Record:
    """The typed body; raises CodecError/SchemaError (LedgerErrors) on a malformed body."""
    return BODY_TYPES[envelope.kind].decode(envelope.body)


def signature_ok(chain_id: str, envelope: Envelope, body: Record, verifier: Verifier) -> bool:
    message = signed_bytes(chain_id, envelope.kind, body, envelope.body)
    return verifier(envelope.sender, message, envelope.signature)
