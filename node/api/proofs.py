"""Proofs a third party checks offline, holding only the genesis file: a transaction, a
receipt, or a statement with its payments and the signed usage it billed is in a final
block of this chain.

Rules kept here:
- A proof carries only bytes the verifier re-derives everything from: canonical leaves
  (an encoded transaction, receipt, closed statement, usage leaf), RFC 6962 audit paths,
  encoded block headers and encoded commit certificates. The verifier trusts none of the
  proof's own claims: it recomputes leaf hashes, takes tree sizes from the header
  (tx_count for transactions, receipt_count for receipts) or the proven statement
  (usage_count), hashes headers itself and checks 2f+1 COMMIT signatures.
- Finality (a header is final; which validator set certifies which height, following
  membership changes from the genesis set) is node/api/finality.py; its API is
  re-exported here.
- A statement proof ties (a) the closed statement record to the end-of-block receipt
  event `statement_closed` carrying its SHA-256, (b) each payment to a
  `statement_payment` event carrying the same hash, in chain order, each one's
  cumulative totals continuing the previous one's (no payment left out in between), and
  (c) optionally one usage record: its leaf under the statement's usage_root and its
  device-signed `usage.report` transaction in its own final block.
Pure: no I/O, no clock; importing it needs only node.ledger and consensus (no web
framework, no storage engine), so an offline verifier can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from node.api.finality import (
    MAX_CHANGES,
    MAX_DESCENDANTS,
    FixedValidators,
    NotCertified,
    SetChangeDoc,
    ValidatorHistory,
    ValidatorSets,
    activation_height,
    as_proof_error,
    as_validator_sets,
    build_validator_history,
    certified_witness,
    history_from_json,
    json_dict,
    json_hex,
    json_hexes,
    json_list,
    json_str,
    parse_json,
    validator_set_at,
    verify_certified,
    verify_validator_history,
)
from node.ledger import crypto, merkle
from node.ledger.block import BlockHeader, Receipt, system_receipt_id
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.devices import UsageLeaf
from node.ledger.errors import LedgerError, ProofError
from node.ledger.model import ID_RE, Statement, k_accrual, k_statement_closed
from node.ledger.records import require, require_bytes, require_uint
from node.ledger.tx import Transaction
from node.ledger.usage import TX_USAGE_REPORT

if TYPE_CHECKING:  # the verifier (CLI, offline) needs no storage engine installed
    from node.store.chain import ChainStore

__all__ = [
    "MAX_CHANGES",
    "FixedValidators",
    "NotCertified",
    "SetChangeDoc",
    "ValidatorHistory",
    "ValidatorSets",
    "activation_height",
    "build_validator_history",
    "history_from_json",
    "validator_set_at",
    "verify_certified",
    "verify_validator_history",
]

ProofKind = Literal["tx", "receipt"]
KINDS: tuple[ProofKind, ...] = ("tx", "receipt")
MAX_PAYMENTS = 1000  # payment events in one statement proof

# -- transaction and receipt inclusion ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InclusionProofDoc:
    """Everything an offline verifier needs; `to_json`/`from_json` are the wire form."""

    kind: ProofKind
    chain_id: str
    tx_id: bytes  # the transaction's id, or the receipt's (an end-of-block receipt's own)
    height: int
    index: int
    tree_size: int
    path: tuple[bytes, ...]
    leaf: bytes  # encoded Transaction (kind "tx") or Receipt (kind "receipt")
    header: bytes  # encoded BlockHeader
    certificate: bytes  # encoded CommitCertificate of the last of header + descendants
    descendants: tuple[bytes, ...] = ()  # encoded headers height+1.. (past null blocks)

    def __post_init__(self) -> None:
        require(self.kind in KINDS, "kind must be tx or receipt")
        require_bytes(self.tx_id, crypto.HASH_BYTES, "tx_id")
        require_uint(self.height, "height")
        require_uint(self.index, "index")
        require_uint(self.tree_size, "tree_size")
        require(self.index < self.tree_size, "index outside the tree")
        require(len(self.path) <= merkle.MAX_PROOF_HASHES, "path too long")
        require(all(len(h) == crypto.HASH_BYTES for h in self.path), "path hashes are 32 bytes")
        require(len(self.descendants) <= MAX_DESCENDANTS, "too many descendant headers")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "chain_id": self.chain_id,
            "tx_id": self.tx_id.hex(),
            "height": self.height,
            "index": self.index,
            "tree_size": self.tree_size,
            "path": [h.hex() for h in self.path],
            "leaf": self.leaf.hex(),
            "header": self.header.hex(),
            "certificate": self.certificate.hex(),
            "descendants": [h.hex() for h in self.descendants],
        }

    @classmethod
    def from_json(cls, doc: Any) -> InclusionProofDoc:
        """Parse the wire form; raises ProofError on any deviation."""
        return parse_json("proof document", cls._from_json, doc)  # type: ignore[no-any-return]

    @classmethod
    def _from_json(cls, doc: Any) -> InclusionProofDoc:
        doc = json_dict(doc)
        return cls(
            kind=doc["kind"],
            chain_id=json_str(doc["chain_id"]),
            tx_id=json_hex(doc["tx_id"]),
            height=doc["height"],
            index=doc["index"],
            tree_size=doc["tree_size"],
            path=json_hexes(doc["path"], merkle.MAX_PROOF_HASHES),
            leaf=json_hex(doc["leaf"]),
            header=json_hex(doc["header"]),
            certificate=json_hex(doc["certificate"]),
            descendants=json_hexes(doc.get("descendants", []), MAX_DESCENDANTS),
        )


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified inclusion proof establishes."""

    header: BlockHeader
    certificate: CommitCertificate  # certifies `certified_height` (header or a descendant)
    tx: Transaction | None  # kind "tx"
    receipt: Receipt | None  # kind "receipt"
    certified_height: int
    signers: tuple[bytes, ...]

    @property
    def height(self) -> int:
        return self.header.height


# -- building (node side) ------------------------------------------------------------------


def build_tx_proof(store: ChainStore, tx_id: bytes) -> InclusionProofDoc | None:
    """The proof that `tx_id` is in a final block; None if the node never committed it.
    Raises NotCertified if no certificate for its block (or a descendant) is stored."""
    location = store.tx_location(tx_id)
    return None if location is None else _inclusion(store, "tx", *location)


def build_receipt_proof(store: ChainStore, receipt_id: bytes) -> InclusionProofDoc | None:
    """The proof of a transaction's receipt (its outcome: accepted, code, events) or of an
    end-of-block receipt (by its id, `block.system_receipt_id`)."""
    location = store.receipt_location(receipt_id)
    return None if location is None else _inclusion(store, "receipt", *location)


def _inclusion(store: ChainStore, kind: ProofKind, height: int, index: int) -> InclusionProofDoc:
    block, descendants, certificate = certified_witness(store, height)
    if kind == "tx":
        leaves = block.tx_leaves()
        leaf_id = block.txs[index].tx_id
    else:
        receipts = store.receipts(height)
        if receipts is None:
            raise LedgerError("store_inconsistent", f"receipts of block {height} are missing")
        leaves = [r.encode() for r in receipts]
        leaf_id = receipts[index].tx_id
    audit = merkle.prove(leaves, index)
    return InclusionProofDoc(
        kind=kind,
        chain_id=block.header.chain_id,
        tx_id=leaf_id,
        height=height,
        index=index,
        tree_size=audit.tree_size,
        path=audit.path,
        leaf=leaves[index],
        header=block.header.encode(),
        certificate=certificate.encode(),
        descendants=descendants,
    )


# -- verifying (anyone, offline) -----------------------------------------------------------


def verify_tx_proof(
    proof: InclusionProofDoc, chain_id: str, validators: ValidatorSet | ValidatorSets
) -> Verified:
    """Check a tx or receipt proof end to end; raises ProofError on any failure."""
    return as_proof_error(lambda: _verify(proof, chain_id, as_validator_sets(validators)))  # type: ignore[no-any-return]


def _verify(proof: InclusionProofDoc, chain_id: str, sets: ValidatorSets) -> Verified:
    header, certificate, certified = verify_certified(
        proof.header, proof.descendants, proof.certificate, chain_id, sets
    )
    if header.height != proof.height:
        raise ProofError("bad_proof", "header height differs from the proof's height")
    tx, receipt = None, None
    if proof.kind == "tx":
        tx = Transaction.decode_tx(proof.leaf)
        if tx.tx_id != proof.tx_id or tx.chain_id != chain_id:
            raise ProofError("bad_proof", "leaf is not the named transaction of this chain")
        root, size = header.tx_root, header.tx_count
    else:
        receipt = Receipt.decode(proof.leaf)
        if receipt.tx_id != proof.tx_id:
            raise ProofError("bad_proof", "leaf is not the named receipt")
        system = proof.index - header.tx_count
        if system >= 0 and receipt.tx_id != system_receipt_id(header.height, system):
            raise ProofError("bad_proof", "an end-of-block receipt with a wrong id")
        root, size = header.receipt_root, header.receipt_count
    audit = merkle.InclusionProof(proof.index, proof.tree_size, proof.path)
    merkle.verify_inclusion(proof.leaf, audit, root, size)
    signers = tuple(s.validator for s in certificate.signatures)
    return Verified(header, certificate, tx, receipt, certified, signers)


# -- statements, payments and usage ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventProofDoc:
    """Event `event_index` of a receipt, with the receipt's inclusion proof."""

    receipt: InclusionProofDoc
    event_index: int

    def __post_init__(self) -> None:
        require(self.receipt.kind == "receipt", "an event proof proves a receipt")
        require_uint(self.event_index, "event_index", 2**16)

    def to_json(self) -> dict[str, Any]:
        return {"event_index": self.event_index, "receipt": self.receipt.to_json()}

    @classmethod
    def from_json(cls, doc: Any) -> EventProofDoc:
        doc = parse_json("event proof", json_dict, doc)
        receipt = InclusionProofDoc.from_json(doc.get("receipt"))
        return parse_json("event proof", lambda d: cls(receipt, d["event_index"]), doc)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class UsageProofDoc:
    """A usage leaf under the statement's usage_root, and its usage.report transaction."""

    leaf: bytes
    index: int
    path: tuple[bytes, ...]
    tx: InclusionProofDoc

    def __post_init__(self) -> None:
        require_uint(self.index, "index")
        require(len(self.path) <= merkle.MAX_PROOF_HASHES, "path too long")
        require(self.tx.kind == "tx", "the usage record's transaction proof")

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf": self.leaf.hex(),
            "index": self.index,
            "path": [h.hex() for h in self.path],
            "tx": self.tx.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> UsageProofDoc:
        doc = parse_json("usage proof", json_dict, doc)
        tx = InclusionProofDoc.from_json(doc.get("tx"))
        return parse_json(  # type: ignore[no-any-return]
            "usage proof",
            lambda d: cls(
                json_hex(d["leaf"]), d["index"], json_hexes(d["path"], merkle.MAX_PROOF_HASHES), tx
            ),
            doc,
        )


@dataclass(frozen=True, slots=True)
class StatementProofDoc:
    chain_id: str
    statement_id: str  # <licence_id>@<period_id>
    statement: bytes  # the Statement record as its period close fixed it
    close: EventProofDoc
    payments: tuple[EventProofDoc, ...]
    usage: UsageProofDoc | None = None

    def __post_init__(self) -> None:
        require(len(self.payments) <= MAX_PAYMENTS, "too many payments")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "statement",
            "chain_id": self.chain_id,
            "statement_id": self.statement_id,
            "statement": self.statement.hex(),
            "close": self.close.to_json(),
            "payments": [p.to_json() for p in self.payments],
            "usage": None if self.usage is None else self.usage.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> StatementProofDoc:
        doc = parse_json("statement proof", json_dict, doc)
        payments = parse_json("statement proof", lambda d: json_list(d["payments"]), doc)
        if len(payments) > MAX_PAYMENTS:
            raise ProofError("bad_proof", f"more than {MAX_PAYMENTS} payments")
        usage = doc.get("usage")
        return parse_json(  # type: ignore[no-any-return]
            "statement proof",
            lambda d: cls(
                chain_id=json_str(d["chain_id"]),
                statement_id=json_str(d["statement_id"]),
                statement=json_hex(d["statement"]),
                close=EventProofDoc.from_json(d["close"]),
                payments=tuple(EventProofDoc.from_json(p) for p in payments),
                usage=None if usage is None else UsageProofDoc.from_json(usage),
            ),
            doc,
        )


def parse_statement_id(statement_id: str) -> tuple[str, str]:
    licence_id, sep, period_id = statement_id.partition("@")
    if not sep or not ID_RE.match(licence_id) or not ID_RE.match(period_id):
        raise ProofError("bad_id", "a statement id is <licence_id>@<period_id>")
    return licence_id, period_id


def build_statement_proof(
    store: ChainStore, statement_id: str, usage_tx: bytes | None = None
) -> StatementProofDoc | None:
    """The proof of a closed statement, its payments this node holds certificates for
    (in chain order), and optionally of one usage record it billed. None if this node
    has no such statement; NotCertified if its close is not yet certified; ProofError
    ("usage_not_billed") if `usage_tx` is not among the statement's usage records."""
    licence_id, period_id = parse_statement_id(statement_id)
    closed = store.get_state(k_statement_closed(licence_id, period_id))
    if closed is None:
        return None
    events = store.statement_events(crypto.sha256(closed), MAX_PAYMENTS + 1)
    if not events:
        raise LedgerError("store_inconsistent", f"no close event for {statement_id}")
    close, payments = _event_proof(store, events[0]), []
    for location in events[1:]:
        try:
            payments.append(_event_proof(store, location))
        except NotCertified:
            break  # later payments are not final here yet
    usage = None
    if usage_tx is not None:
        usage = _usage_proof(store, Statement.decode(closed), usage_tx)
    chain_id = BlockHeader.decode(close.receipt.header).chain_id
    return StatementProofDoc(chain_id, statement_id, closed, close, tuple(payments), usage)


def _event_proof(store: ChainStore, location: Any) -> EventProofDoc:
    receipt = _inclusion(store, "receipt", location.height, location.receipt_index)
    return EventProofDoc(receipt, location.event_index)


def _usage_proof(store: ChainStore, statement: Statement, usage_tx: bytes) -> UsageProofDoc:
    prefix = k_accrual(statement.licence_id, statement.period_id) + b"/"
    leaves = [value for _, value in store.scan_state(prefix)][: statement.usage_count + 1]
    if len(leaves) != statement.usage_count or merkle.root(leaves) != statement.usage_root:
        raise LedgerError("store_inconsistent", "usage leaves do not match the statement")
    wanted = UsageLeaf(usage_tx).encode()
    if wanted not in leaves:
        raise ProofError("usage_not_billed", "the statement did not bill that usage record")
    index = leaves.index(wanted)
    location = store.tx_location(usage_tx)
    if location is None:
        raise LedgerError("store_inconsistent", "a billed usage record has no transaction")
    audit = merkle.prove(leaves, index)
    return UsageProofDoc(wanted, index, audit.path, _inclusion(store, "tx", *location))


@dataclass(frozen=True, slots=True)
class ProvenEvent:
    """An event in a receipt of a final block."""

    height: int
    receipt_id: bytes
    kind: str
    attrs: dict[str, Any]
    certified_height: int
    signers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ProvenUsage:
    height: int
    tx: Transaction
    leaf_index: int
    certified_height: int
    signers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    statement: Statement  # as closed
    statement_hash: bytes
    closed: ProvenEvent
    payments: tuple[ProvenEvent, ...]
    usage: ProvenUsage | None

    @property
    def paid_total(self) -> int:
        return int(self.payments[-1].attrs["paid_total"]) if self.payments else 0

    @property
    def interest_paid_total(self) -> int:
        return int(self.payments[-1].attrs["interest_paid_total"]) if self.payments else 0


def verify_statement_proof(
    doc: StatementProofDoc, chain_id: str, validator_sets: ValidatorSet | ValidatorSets
) -> VerifiedStatement:
    """Check a statement proof end to end; raises ProofError on any failure."""
    sets = as_validator_sets(validator_sets)
    return as_proof_error(lambda: _verify_statement(doc, chain_id, sets))  # type: ignore[no-any-return]


def _verify_statement(
    doc: StatementProofDoc, chain_id: str, sets: ValidatorSets
) -> VerifiedStatement:
    if doc.chain_id != chain_id:
        raise ProofError("wrong_chain", f"proof is for chain {doc.chain_id}")
    statement = Statement.decode(doc.statement)
    if doc.statement_id != f"{statement.licence_id}@{statement.period_id}":
        raise ProofError("bad_proof", "the statement record is not the named statement")
    digest = crypto.sha256(doc.statement)
    closed = _proven_event(doc.close, chain_id, sets, "statement_closed", digest)
    if closed.receipt_id != system_receipt_id(closed.height, _system_index(doc.close)):
        raise ProofError("bad_proof", "a statement closes in an end-of-block receipt")
    payments = _verify_payments(doc, chain_id, sets, statement, digest)
    usage = None if doc.usage is None else _verify_usage(doc.usage, chain_id, sets, statement)
    if usage is not None and usage.height > closed.height:
        raise ProofError("bad_proof", "usage recorded after the statement closed")
    return VerifiedStatement(statement, digest, closed, payments, usage)


def _system_index(proof: EventProofDoc) -> int:
    index = proof.receipt.index - BlockHeader.decode(proof.receipt.header).tx_count
    if index < 0:
        raise ProofError("bad_proof", "a statement closes in an end-of-block receipt")
    return index


def _proven_event(
    proof: EventProofDoc, chain_id: str, sets: ValidatorSets, kind: str, digest: bytes
) -> ProvenEvent:
    verified = _verify(proof.receipt, chain_id, sets)
    receipt = verified.receipt
    assert receipt is not None
    if not receipt.accepted or proof.event_index >= len(receipt.events):
        raise ProofError("bad_proof", "no such event in the receipt")
    event = receipt.events[proof.event_index]
    if event.kind != kind or event.attrs.get("statement_hash") != digest:
        raise ProofError("bad_proof", f"the event is not a {kind} of this statement")
    return ProvenEvent(
        verified.height,
        receipt.tx_id,
        event.kind,
        event.attrs,
        verified.certified_height,
        verified.signers,
    )


def _position(proof: EventProofDoc) -> tuple[int, int, int]:
    return proof.receipt.height, proof.receipt.index, proof.event_index


def _verify_payments(
    doc: StatementProofDoc,
    chain_id: str,
    sets: ValidatorSets,
    statement: Statement,
    digest: bytes,
) -> tuple[ProvenEvent, ...]:
    out: list[ProvenEvent] = []
    previous, paid, interest = _position(doc.close), 0, 0
    for proof in doc.payments:
        if _position(proof) <= previous:
            raise ProofError("bad_proof", "payments out of chain order")
        previous = _position(proof)
        event = _proven_event(proof, chain_id, sets, "statement_payment", digest)
        paid, interest = _check_payment(event.attrs, statement, paid, interest)
        out.append(event)
    return tuple(out)


def _check_payment(
    attrs: dict[str, Any], statement: Statement, paid: int, interest: int
) -> tuple[int, int]:
    """The payment continues the previous one's totals and moved what it says."""
    names = ("principal", "interest", "paid_total", "interest_paid_total")
    numbers = [n for n in (attrs.get(name) for name in names) if type(n) is int]
    transfers = attrs.get("transfers")
    if len(numbers) != len(names) or not isinstance(transfers, list):
        raise ProofError("bad_proof", "a payment event without its figures")
    principal, interest_now, paid_total, interest_total = numbers
    if paid_total != paid + principal or interest_total != interest + interest_now:
        raise ProofError("payment_gap", "a payment is missing before this one")
    if not all(
        isinstance(t, list) and len(t) == 2 and isinstance(t[0], bytes) and type(t[1]) is int
        for t in transfers
    ):
        raise ProofError("bad_proof", "a payment event with malformed transfers")
    if sum(t[1] for t in transfers) != principal + interest_now:
        raise ProofError("bad_proof", "the transfers do not add up to the payment")
    if attrs.get("payer") != statement.licensee or attrs.get("currency") != statement.currency:
        raise ProofError("bad_proof", "a payment by another payer or in another currency")
    return paid_total, interest_total


def _verify_usage(
    proof: UsageProofDoc, chain_id: str, sets: ValidatorSets, statement: Statement
) -> ProvenUsage:
    leaf = UsageLeaf.decode(proof.leaf)
    audit = merkle.InclusionProof(proof.index, statement.usage_count, proof.path)
    merkle.verify_inclusion(proof.leaf, audit, statement.usage_root, statement.usage_count)
    verified = _verify(proof.tx, chain_id, sets)
    tx = verified.tx
    assert tx is not None
    if tx.tx_id != leaf.tx_id or tx.tx_type != TX_USAGE_REPORT:
        raise ProofError("bad_proof", "the transaction is not the billed usage report")
    if not tx.signature_valid():
        raise ProofError("bad_signature", "the usage report's device signature")
    return ProvenUsage(
        verified.height, tx, proof.index, verified.certified_height, verified.signers
    )
