"""Finality a third party checks offline: a block header is final, and which validator
set's certificate makes a height final, from the genesis set and the chain's history of
validator set changes.

Rules kept here:
- A block is final when a commit certificate signs its header hash, or when it is an
  ancestor (by parent_hash links through `descendants`) of a block so certified: a null
  block (no transactions, certified on consensus' NULL_DIGEST) is proven by the next one.
- Certificates are checked against the validator set that governs the certified height:
  a block that changes the set makes it govern heights from
  `consensus.activation_seq(h, CHECKPOINT_INTERVAL, WATERMARK_WINDOW)` on (the replica's
  own rule, with the protocol constants of node.ledger.certificate). Each change is
  proven by its block, certified by the sets before it and below its own activation
  height, so a set never certifies its own appointment.
- Every header a proof shows must carry the validator_set_hash the history says was in
  force after it, so a node cannot hide a change from the verifier (short of a change
  and its exact reversal, which leaves the set it hid in force only between them).
Pure: no I/O, no clock; node.ledger and consensus only (node/api/proofs.py builds on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from consensus import activation_seq
from node.ledger.block import Block, BlockHeader
from node.ledger.certificate import (
    CHECKPOINT_INTERVAL,
    WATERMARK_WINDOW,
    CommitCertificate,
    ValidatorSet,
)
from node.ledger.errors import LedgerError, ProofError
from node.ledger.genesis import Genesis
from node.ledger.records import require, require_uint

if TYPE_CHECKING:  # the verifier (CLI, offline) needs no storage engine installed
    from node.store.chain import ChainStore

MAX_DESCENDANTS = 1024  # headers walked past null blocks to a certified one

MAX_CHANGES = 4096  # validator set changes in a history


class NotCertified(ProofError):
    """The block is stored but no certificate for it (or a descendant) is known here."""


def activation_height(change_height: int) -> int:
    """First height governed by the validator set that block `change_height` produced."""
    return activation_seq(change_height, CHECKPOINT_INTERVAL, WATERMARK_WINDOW)


# -- validator sets over time ------------------------------------------------------------


class ValidatorSets(Protocol):
    def set_for(self, height: int) -> ValidatorSet:
        """The set whose 2f+1 COMMIT signatures make block `height` final."""
        ...

    def latest_at(self, height: int) -> ValidatorSet:
        """The set in state after executing block `height` (its header's claim)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedValidators:
    """One set for every height (a chain whose membership never changed)."""

    validators: ValidatorSet

    def set_for(self, height: int) -> ValidatorSet:
        return self.validators

    def latest_at(self, height: int) -> ValidatorSet:
        return self.validators


@dataclass(frozen=True, slots=True)
class ValidatorHistory:
    """The genesis set and the (verified) changes after it, by height."""

    genesis: ValidatorSet
    changes: tuple[tuple[int, ValidatorSet], ...] = ()

    def latest_at(self, height: int) -> ValidatorSet:
        found = self.genesis
        for changed_at, validators in self.changes:
            if changed_at <= height:
                found = validators
        return found

    def set_for(self, height: int) -> ValidatorSet:
        # Mirrors the replica's epochs (consensus/replica.py): a later change activating
        # no later than an earlier one replaces it.
        epochs: list[tuple[int, ValidatorSet]] = [(1, self.genesis)]
        for changed_at, validators in self.changes:
            start = activation_height(changed_at)
            epochs = [e for e in epochs if e[0] < start] + [(start, validators)]
        found = self.genesis
        for start, validators in epochs:
            if start <= height:
                found = validators
        return found


def as_validator_sets(validators: ValidatorSet | ValidatorSets) -> ValidatorSets:
    return FixedValidators(validators) if isinstance(validators, ValidatorSet) else validators


# -- wire helpers ------------------------------------------------------------------------


def json_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def json_int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("expected an integer")
    return value


def json_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def json_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object")
    return value


def json_hex(value: Any) -> bytes:
    return bytes.fromhex(json_str(value))


def json_hexes(value: Any, most: int) -> tuple[bytes, ...]:
    items = json_list(value)
    if len(items) > most:
        raise ValueError(f"more than {most} items")
    return tuple(json_hex(h) for h in items)


def parse_json(what: str, parse: Any, doc: Any) -> Any:
    """Run `parse(doc)`, turning any deviation into ProofError("bad_proof")."""
    try:
        return parse(doc)
    except ProofError:
        raise
    except (KeyError, TypeError, ValueError, LedgerError) as exc:
        raise ProofError("bad_proof", f"malformed {what}: {exc!r}") from exc


def certified_witness(
    store: ChainStore, height: int, below: int | None = None
) -> tuple[Block, tuple[bytes, ...], CommitCertificate]:
    """Block `height`, the headers after it up to the first block whose certificate signs
    its own header hash (none if block `height` is so certified), and that certificate.
    With `below`, the certified block must be lower than that height."""
    block = store.block(height)
    if block is None:
        raise LedgerError("store_inconsistent", f"block {height} is indexed but missing")
    header, descendants = block.header, list[bytes]()
    for _ in range(MAX_DESCENDANTS + 1):
        cert = store.certificate(header.height)
        if below is not None and header.height >= below:
            break
        if cert is not None and cert.block_hash == header.hash():
            return block, tuple(descendants), cert
        following = store.block(header.height + 1)
        if following is None or len(descendants) == MAX_DESCENDANTS:
            break
        header = following.header
        descendants.append(header.encode())
    raise NotCertified("not_certified", f"block {height} has no commit certificate here (yet)")


def verify_certified(
    header_bytes: bytes,
    descendants: Sequence[bytes],
    certificate_bytes: bytes,
    chain_id: str,
    sets: ValidatorSets,
) -> tuple[BlockHeader, CommitCertificate, int]:
    """The header, once proven final: linked by parent hashes to the last of
    `descendants` (or itself), which the certificate signs under the set governing its
    height. Returns (header, certificate, certified height); raises ProofError."""
    header = BlockHeader.decode(header_bytes)
    if header.chain_id != chain_id:
        raise ProofError("wrong_chain", f"header is for chain {header.chain_id}")
    chain = [header]
    for raw in descendants:
        child, parent = BlockHeader.decode(raw), chain[-1]
        if child.height != parent.height + 1 or child.parent_hash != parent.hash():
            raise ProofError("bad_proof", "descendant headers do not extend the block")
        chain.append(child)
    for h in chain:
        if h.chain_id != chain_id:
            raise ProofError("wrong_chain", f"header is for chain {h.chain_id}")
        if h.validator_set_hash != sets.latest_at(h.height).hash():
            raise ProofError(
                "validator_history",
                f"block {h.height} names a validator set the history does not have there",
            )
    last = chain[-1]
    certificate = CommitCertificate.decode(certificate_bytes)
    if certificate.height != last.height:
        raise ProofError("wrong_block", "certificate is for another height")
    certificate.verify(chain_id, sets.set_for(last.height), last.hash())
    return header, certificate, last.height


def as_proof_error(check: Any) -> Any:
    try:
        return check()
    except ProofError:
        raise
    except LedgerError as exc:  # undecodable leaf, header or certificate
        raise ProofError("bad_proof", f"{exc.code}: {exc.detail}") from exc
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # a value out of shape
        raise ProofError("bad_proof", repr(exc)) from exc


# -- validator history ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetChangeDoc:
    """Block `height` changed the validator set to `validators`; the header (with
    descendants past null blocks) and a certificate by the sets before it prove it."""

    height: int
    validators: tuple[bytes, ...]
    header: bytes
    certificate: bytes
    descendants: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        require_uint(self.height, "height")
        require(len(self.descendants) <= MAX_DESCENDANTS, "too many descendant headers")

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "validators": [v.hex() for v in self.validators],
            "header": self.header.hex(),
            "certificate": self.certificate.hex(),
            "descendants": [h.hex() for h in self.descendants],
        }

    @classmethod
    def from_json(cls, doc: Any) -> SetChangeDoc:
        return parse_json("validator set change", cls._from_json, doc)  # type: ignore[no-any-return]

    @classmethod
    def _from_json(cls, doc: Any) -> SetChangeDoc:
        doc = json_dict(doc)
        return cls(
            height=json_int(doc["height"]),
            validators=json_hexes(doc["validators"], 256),
            header=json_hex(doc["header"]),
            certificate=json_hex(doc["certificate"]),
            descendants=json_hexes(doc.get("descendants", []), MAX_DESCENDANTS),
        )


def history_from_json(doc: Any) -> list[SetChangeDoc]:
    """The `changes` of a GET /v1/validator-history answer."""
    changes = parse_json("validator history", lambda d: json_list(json_dict(d)["changes"]), doc)
    if len(changes) > MAX_CHANGES:
        raise ProofError("bad_proof", f"more than {MAX_CHANGES} validator set changes")
    return [SetChangeDoc.from_json(c) for c in changes]


def build_validator_history(store: ChainStore) -> list[SetChangeDoc]:
    """Every validator set change this node holds proof of, in height order (stops at
    the first change not yet certified)."""
    out = []
    for height, validators in store.validator_changes()[:MAX_CHANGES]:
        try:
            found = certified_witness(store, height, below=activation_height(height))
            block, descendants, cert = found
        except NotCertified:
            break
        out.append(
            SetChangeDoc(
                height, validators.validators, block.header.encode(), cert.encode(), descendants
            )
        )
    return out


def verify_validator_history(changes: Sequence[SetChangeDoc], genesis: Genesis) -> ValidatorHistory:
    """Check each change in order against the sets in force before it; raises
    ProofError. The result answers `set_for(height)` for any height."""
    if len(changes) > MAX_CHANGES:
        raise ProofError("bad_proof", f"more than {MAX_CHANGES} validator set changes")
    history = ValidatorHistory(genesis.validator_set)
    for change in changes:
        history = as_proof_error(partial(_verify_change, change, history, genesis.chain_id))
    return history


def _verify_change(
    change: SetChangeDoc, history: ValidatorHistory, chain_id: str
) -> ValidatorHistory:
    last = history.changes[-1][0] if history.changes else 0
    if change.height <= last:
        raise ProofError("bad_history", "changes out of height order")
    validators = ValidatorSet(change.validators)
    if validators == history.latest_at(change.height - 1):
        raise ProofError("bad_history", f"block {change.height} did not change the set")
    if change.height + len(change.descendants) >= activation_height(change.height):
        raise ProofError("bad_history", "a change must be certified before it activates")
    candidate = ValidatorHistory(history.genesis, (*history.changes, (change.height, validators)))
    header, _, _ = verify_certified(
        change.header, change.descendants, change.certificate, chain_id, candidate
    )
    if header.height != change.height:
        raise ProofError("bad_history", "header height differs from the change's height")
    return candidate


def validator_set_at(
    history: Sequence[SetChangeDoc], genesis: Genesis, height: int
) -> ValidatorSet:
    """The set whose certificate makes block `height` final, from the genesis file and a
    history of changes (each verified); raises ProofError."""
    return verify_validator_history(history, genesis).set_for(height)
