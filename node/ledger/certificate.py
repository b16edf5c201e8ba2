"""Validator sets and commit certificates: provable finality.

Rule kept here: a block at `height` is final when 2f+1 distinct members of the validator
set in force signed COMMIT for (view, height, block_hash), where n = len(validators) and
f = (n - 1) // 3. Each COMMIT signature is over
`signing_bytes(DOMAIN_COMMIT, chain_id, [view, height, block_hash])`, the same bytes the
consensus core signs in its COMMIT messages, so the certificate is just those signatures
collected. A third party checks it with the validator keys alone.

Membership changes: a block whose execution changes the validator set (its header's
validator_set_hash differs from its parent's) makes the new set govern heights from
`consensus.activation_seq(height, CHECKPOINT_INTERVAL, WATERMARK_WINDOW)` on. The two
PBFT windows are therefore protocol constants, not node settings: every replica and every
offline verifier must derive the same activation height.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger import codec, crypto
from node.ledger.errors import ProofError
from node.ledger.records import Record, require, require_bytes, require_uint

MAX_VALIDATORS = 256
# PBFT checkpoint interval K and watermark window L (Castro & Liskov §4.3): protocol
# constants (node/runtime/driver.py and node/api/proofs.py use these, never a setting).
CHECKPOINT_INTERVAL = 16
WATERMARK_WINDOW = 32


def max_faulty(n: int) -> int:
    """f: the number of Byzantine validators n = 3f+1 (or more) tolerates."""
    return (n - 1) // 3


def quorum_size(n: int) -> int:
    """2f+1 for n = 3f+1; in general the smallest quorum where any two intersect in f+1."""
    return n - max_faulty(n)


@dataclass(frozen=True, slots=True)
class ValidatorSet(Record):
    """Ordered validator public keys; the primary of view v is validators[v % n]."""

    validators: tuple[bytes, ...]

    def __post_init__(self) -> None:
        require(1 <= len(self.validators) <= MAX_VALIDATORS, "validator set size out of range")
        for key in self.validators:
            require_bytes(key, crypto.PUBLIC_KEY_BYTES, "validator key")
        require(len(set(self.validators)) == len(self.validators), "duplicate validator key")

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return max_faulty(self.n)

    @property
    def quorum(self) -> int:
        return quorum_size(self.n)

    def primary(self, view: int) -> bytes:
        return self.validators[view % self.n]

    def hash(self) -> bytes:
        return crypto.sha256(codec.encode(self.to_value()))


def commit_vote_value(view: int, height: int, block_hash: bytes) -> list[object]:
    return [view, height, block_hash]


@dataclass(frozen=True, slots=True)
class CommitSignature(Record):
    validator: bytes
    signature: bytes

    def __post_init__(self) -> None:
        require_bytes(self.validator, crypto.PUBLIC_KEY_BYTES, "validator")
        require_bytes(self.signature, crypto.SIGNATURE_BYTES, "signature")


@dataclass(frozen=True, slots=True)
class CommitCertificate(Record):
    height: int
    view: int
    block_hash: bytes
    signatures: tuple[CommitSignature, ...]

    def __post_init__(self) -> None:
        require_uint(self.height, "height")
        require_uint(self.view, "view")
        require_bytes(self.block_hash, crypto.HASH_BYTES, "block_hash")
        require(len(self.signatures) <= MAX_VALIDATORS, "too many signatures")

    def verify(self, chain_id: str, validators: ValidatorSet, block_hash: bytes) -> None:
        """Raise ProofError unless this certifies `block_hash` under `validators`."""
        if self.block_hash != block_hash:
            raise ProofError("wrong_block", "certificate is for another block")
        members = frozenset(validators.validators)
        message = crypto.signing_bytes(
            crypto.DOMAIN_COMMIT, chain_id, commit_vote_value(self.view, self.height, block_hash)
        )
        signers: set[bytes] = set()
        for item in self.signatures:
            if item.validator not in members:
                raise ProofError("unknown_validator", item.validator.hex())
            if item.validator in signers:
                raise ProofError("duplicate_signer", item.validator.hex())
            if not crypto.verify_raw(item.validator, message, item.signature):
                raise ProofError("bad_signature", item.validator.hex())
            signers.add(item.validator)
        if len(signers) < validators.quorum:
            raise ProofError("no_quorum", f"{len(signers)} signatures, {validators.quorum} needed")
