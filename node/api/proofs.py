"""Inclusion proofs a third party checks offline: a transaction (or its receipt) is in
block h, and block h is final.

Rule kept here: a proof carries only bytes the verifier re-derives everything from: the
canonical leaf (the encoded transaction or receipt), its index and RFC 6962 audit path,
the encoded block header and the encoded commit certificate. The verifier trusts none
of the proof's own claims: it recomputes the leaf hash, checks inclusion against the
header's tx_root/receipt_root with the tree size taken from header.tx_count, hashes the
header itself and checks the certificate's 2f+1 COMMIT signatures over that hash against
a validator set it already holds (e.g. from the genesis file). Pure: no I/O, no clock;
importing it needs only node.ledger (no web framework, no storage engine), so an
offline verifier can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from node.ledger import crypto, merkle
from node.ledger.block import BlockHeader, Receipt
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.errors import LedgerError, ProofError
from node.ledger.records import require, require_bytes, require_uint
from node.ledger.tx import Transaction

if TYPE_CHECKING:  # the verifier (CLI, offline) needs no storage engine installed
    from node.store.chain import ChainStore

ProofKind = Literal["tx", "receipt"]
KINDS: tuple[ProofKind, ...] = ("tx", "receipt")


class NotCertified(ProofError):
    """The block is stored but its commit certificate is not (yet) known to this node."""


@dataclass(frozen=True, slots=True)
class InclusionProofDoc:
    """Everything an offline verifier needs; `to_json`/`from_json` are the wire form."""

    kind: ProofKind
    chain_id: str
    tx_id: bytes
    height: int
    index: int
    tree_size: int
    path: tuple[bytes, ...]
    leaf: bytes  # encoded Transaction (kind "tx") or Receipt (kind "receipt")
    header: bytes  # encoded BlockHeader
    certificate: bytes  # encoded CommitCertificate

    def __post_init__(self) -> None:
        require(self.kind in KINDS, "kind must be tx or receipt")
        require_bytes(self.tx_id, crypto.HASH_BYTES, "tx_id")
        require_uint(self.height, "height")
        require_uint(self.index, "index")
        require_uint(self.tree_size, "tree_size")
        require(self.index < self.tree_size, "index outside the tree")
        require(len(self.path) <= merkle.MAX_PROOF_HASHES, "path too long")
        require(all(len(h) == crypto.HASH_BYTES for h in self.path), "path hashes are 32 bytes")

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
        }

    @classmethod
    def from_json(cls, doc: Any) -> InclusionProofDoc:
        """Parse the wire form; raises ProofError on any deviation."""
        try:
            if not isinstance(doc, dict):
                raise ValueError("a proof is a JSON object")
            return cls(
                kind=doc["kind"],
                chain_id=_str(doc["chain_id"]),
                tx_id=_hex(doc["tx_id"]),
                height=doc["height"],
                index=doc["index"],
                tree_size=doc["tree_size"],
                path=tuple(_hex(h) for h in _list(doc["path"])),
                leaf=_hex(doc["leaf"]),
                header=_hex(doc["header"]),
                certificate=_hex(doc["certificate"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError("bad_proof", f"malformed proof document: {exc!r}") from exc


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _hex(value: Any) -> bytes:
    return bytes.fromhex(_str(value))


# -- building (node side) ------------------------------------------------------------------


def build_tx_proof(store: ChainStore, tx_id: bytes) -> InclusionProofDoc | None:
    """The proof that `tx_id` is in a final block; None if the node never committed it.
    Raises NotCertified if the block's certificate is not stored."""
    return _build(store, tx_id, "tx")


def build_receipt_proof(store: ChainStore, tx_id: bytes) -> InclusionProofDoc | None:
    """The proof of `tx_id`'s receipt (its outcome: accepted, code, events)."""
    return _build(store, tx_id, "receipt")


def _build(store: ChainStore, tx_id: bytes, kind: ProofKind) -> InclusionProofDoc | None:
    location = store.tx_location(tx_id)
    if location is None:
        return None
    height, index = location
    block = store.block(height)
    receipts = store.receipts(height)
    if block is None or receipts is None:
        raise LedgerError("store_inconsistent", f"tx index points at missing block {height}")
    certificate = store.certificate(height)
    if certificate is None:
        raise NotCertified("not_certified", f"block {height} has no commit certificate here")
    leaves = block.tx_leaves() if kind == "tx" else [r.encode() for r in receipts]
    audit = merkle.prove(leaves, index)
    return InclusionProofDoc(
        kind=kind,
        chain_id=block.header.chain_id,
        tx_id=tx_id,
        height=height,
        index=index,
        tree_size=audit.tree_size,
        path=audit.path,
        leaf=leaves[index],
        header=block.header.encode(),
        certificate=certificate.encode(),
    )


# -- verifying (anyone, offline) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified proof establishes."""

    header: BlockHeader
    certificate: CommitCertificate
    tx: Transaction | None  # kind "tx"
    receipt: Receipt | None  # kind "receipt"


def verify_tx_proof(
    proof: InclusionProofDoc, chain_id: str, validator_set: ValidatorSet
) -> Verified:
    """Check a tx or receipt proof end to end; raises ProofError on any failure."""
    try:
        return _verify(proof, chain_id, validator_set)
    except ProofError:
        raise
    except LedgerError as exc:  # undecodable leaf, header or certificate
        raise ProofError("bad_proof", f"{exc.code}: {exc.detail}") from exc


def _verify(proof: InclusionProofDoc, chain_id: str, validator_set: ValidatorSet) -> Verified:
    header = BlockHeader.decode(proof.header)
    if header.chain_id != chain_id:
        raise ProofError("wrong_chain", f"header is for chain {header.chain_id}")
    if header.height != proof.height:
        raise ProofError("bad_proof", "header height differs from the proof's height")
    tx, receipt = None, None
    if proof.kind == "tx":
        tx = Transaction.decode_tx(proof.leaf)
        if tx.tx_id != proof.tx_id or tx.chain_id != chain_id:
            raise ProofError("bad_proof", "leaf is not the named transaction of this chain")
        root = header.tx_root
    else:
        receipt = Receipt.decode(proof.leaf)
        if receipt.tx_id != proof.tx_id:
            raise ProofError("bad_proof", "leaf is not the named transaction's receipt")
        root = header.receipt_root
    audit = merkle.InclusionProof(proof.index, proof.tree_size, proof.path)
    merkle.verify_inclusion(proof.leaf, audit, root, header.tx_count)
    certificate = CommitCertificate.decode(proof.certificate)
    if certificate.height != header.height:
        raise ProofError("wrong_block", "certificate is for another height")
    certificate.verify(chain_id, validator_set, header.hash())
    return Verified(header, certificate, tx, receipt)
