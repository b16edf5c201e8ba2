"""Configuration, inputs, outputs (`Ready`) and durable hard state of a replica.

Rule kept here: everything crossing the core's boundary is a frozen, slotted dataclass
validated on construction, and the hard state round-trips through the canonical codec so
a restarted replica resumes exactly what it had signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from consensus.errors import UsageError
from consensus.messages import PAYLOAD_BYTES_LIMIT, FetchedBlock, Verifier
from node.ledger import crypto
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.records import Record, require, require_uint


class Signer(Protocol):
    """What the core needs from a key: `node.ledger.crypto.Signer` satisfies it."""

    @property
    def public_key(self) -> bytes: ...

    def sign_raw(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Config:
    """Static configuration. `watermark_window` (L) is a multiple of `checkpoint_interval` (K)."""

    chain_id: str
    signer: Signer
    validators: ValidatorSet  # the genesis validator set
    checkpoint_interval: int = 16
    watermark_window: int = 32
    view_change_timeout_ticks: int = 20
    retransmit_ticks: int = 8
    fetch_batch_max: int = 64
    max_outstanding: int = 1  # proposals in flight; the node uses 1 (header commits to state)
    max_backoff_exponent: int = 6
    payload_bytes_max: int = PAYLOAD_BYTES_LIMIT  # one block: one msgpack bin (<= 1 MiB)
    verifier: Verifier = crypto.verify_raw
    digest: Callable[[bytes], bytes] = crypto.sha256
    genesis_state_digest: bytes = b""

    def __post_init__(self) -> None:
        k, window = self.checkpoint_interval, self.watermark_window
        if not (k >= 1 and window >= k and window % k == 0):
            raise UsageError("config", "watermark_window must be a positive multiple of K")
        if self.view_change_timeout_ticks < 2 or self.retransmit_ticks < 1:
            raise UsageError("config", "timeouts must be positive")
        if not 1 <= self.max_outstanding <= window:
            raise UsageError("config", "max_outstanding must be in 1..watermark_window")
        if not 1 <= self.payload_bytes_max <= PAYLOAD_BYTES_LIMIT:
            raise UsageError("config", f"payload_bytes_max must be in 1..{PAYLOAD_BYTES_LIMIT}")
        if self.fetch_batch_max < 1:
            raise UsageError("config", "fetch_batch_max must be >= 1")


# ---- inputs -------------------------------------------------------------------------------


def _shell_check(condition: bool, what: str) -> None:
    if not condition:
        raise UsageError("bad_input", what)


@dataclass(frozen=True, slots=True)
class Receive:
    """Bytes from a peer; `sender` is the transport-authenticated public key."""

    sender: bytes
    data: bytes

    def __post_init__(self) -> None:
        _shell_check(isinstance(self.sender, bytes) and isinstance(self.data, bytes), "Receive")


@dataclass(frozen=True, slots=True)
class Tick:
    """One unit of logical time; all timeouts count ticks."""


@dataclass(frozen=True, slots=True)
class Propose:
    """The application has a block. On the primary it is pre-prepared (§4.2) when the window
    allows; on a backup it only arms the view-change timer (a backup holding a request
    starts its timer, §4.4) and is discarded."""

    payload: bytes

    def __post_init__(self) -> None:
        _shell_check(isinstance(self.payload, bytes) and self.payload != b"", "Propose")


@dataclass(frozen=True, slots=True)
class ProposalVerdict:
    """The application's judgement of a `ToValidate`."""

    view: int
    seq: int
    digest: bytes
    valid: bool

    def __post_init__(self) -> None:
        ok = type(self.view) is int and type(self.seq) is int and type(self.valid) is bool
        _shell_check(ok and isinstance(self.digest, bytes), "ProposalVerdict")


@dataclass(frozen=True, slots=True)
class Executed:
    """The application executed `seq`; `state_digest` feeds checkpoints (§4.3). A block that
    changes membership passes the new set; it governs sequence numbers from
    `activation_seq(seq)` on."""

    seq: int
    state_digest: bytes
    validators: ValidatorSet | None = None

    def __post_init__(self) -> None:
        ok = type(self.seq) is int and self.seq >= 1 and isinstance(self.state_digest, bytes)
        _shell_check(ok and len(self.state_digest) <= 64, "Executed")


@dataclass(frozen=True, slots=True)
class ServeBlocks:
    """The shell's answer to a `ServeRequest`: committed blocks read from its store."""

    requester: bytes
    blocks: tuple[FetchedBlock, ...]


Input = Receive | Tick | Propose | ProposalVerdict | Executed | ServeBlocks


# ---- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outbound:
    """Send `data` to `destination`, or to every other validator when it is None."""

    destination: bytes | None
    data: bytes


@dataclass(frozen=True, slots=True)
class ToValidate:
    view: int
    seq: int
    digest: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """Execute in order. An empty payload is a null request (§4.4): execute as a no-op."""

    seq: int
    payload: bytes
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    peer: bytes
    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """A peer asks for committed blocks; answer with `ServeBlocks` (blocks you have)."""

    requester: bytes
    from_seq: int
    to_seq: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Apply in field order: persist `hard_state` (fsync) BEFORE sending `outbound`."""

    hard_state: bytes | None = None
    outbound: tuple[Outbound, ...] = ()
    to_validate: tuple[ToValidate, ...] = ()
    committed: tuple[Committed, ...] = ()
    misbehaviour: tuple[Misbehaviour, ...] = ()
    to_serve: tuple[ServeRequest, ...] = ()


# ---- hard state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vote(Record):
    """Something this replica signed for (view, seq): a pre-prepare, prepare or commit."""

    kind: str
    view: int
    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Epoch(Record):
    """`validators` governs sequence numbers >= `start_seq` (until the next epoch)."""

    start_seq: int
    validators: ValidatorSet

    def __post_init__(self) -> None:
        require(type(self.start_seq) is int and self.start_seq >= 1, "start_seq must be >= 1")


@dataclass(frozen=True, slots=True)
class HardState(Record):
    """What must survive a crash: every vote signed above the stable checkpoint, prepared
    certificates (a lost one could let a NEW-VIEW drop a committed block, §4.4), the view,
    the view change / new view signed, the stable checkpoint and membership epochs.

    Certificates are stored as their canonical bytes (each encoded once and cached by the
    replica), so writing the hard state after every vote stays cheap. `executed_seq` is a
    lower bound: after a restart the shell re-reports what its store executed."""

    view: int
    view_active: bool
    stable_seq: int
    stable_digest: bytes
    stable_proof: tuple[bytes, ...]  # encoded CHECKPOINT envelopes
    executed_seq: int
    executed_digest: bytes
    epochs: tuple[Epoch, ...]
    votes: tuple[Vote, ...]
    prepared: tuple[bytes, ...]  # encoded PreparedProofs
    view_change: bytes | None  # encoded envelope
    new_view: bytes | None  # encoded envelope
    prepared_payloads: tuple[bytes, ...]  # blocks prepared here and not yet delivered

    def __post_init__(self) -> None:
        require_uint(self.view, "view")
        require_uint(self.stable_seq, "stable_seq")
        require_uint(self.executed_seq, "executed_seq")
        require(len(self.epochs) >= 1, "at least the genesis epoch")
