"""RFC 6962 / RFC 9162 Merkle trees over transactions and receipts, with inclusion proofs.

Leaf hash = SHA-256(0x00 || leaf bytes); interior node = SHA-256(0x01 || left || right);
the root of no leaves is SHA-256(""). The split point of n leaves is the largest power of
two below n, which is what building the tree level by level and carrying an odd last node
up unchanged produces. A proof is the audit path; `verify_inclusion` needs only the leaf,
its index, the tree size and the root, so a third party checks it with a block header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from node.ledger.errors import ProofError
from node.ledger.records import Record, require, require_uint

_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_PROOF_HASHES = 64


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels bottom-up; an odd last node is promoted unchanged (RFC 6962 shape)."""
    levels = [list(leaf_hashes)]
    sha = hashlib.sha256
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [sha(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        levels.append(up)
    return levels


def root_of_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    if not leaf_hashes:
        return EMPTY_ROOT
    return _levels(leaf_hashes)[-1][0]


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the leaf byte strings."""
    return root_of_hashes([leaf_hash(x) for x in leaves])


@dataclass(frozen=True, slots=True)
class InclusionProof(Record):
    index: int
    tree_size: int
    path: tuple[bytes, ...]

    def __post_init__(self) -> None:
        require_uint(self.index, "index")
        require_uint(self.tree_size, "tree_size")
        require(self.index < self.tree_size, "index outside the tree")
        require(len(self.path) <= MAX_PROOF_HASHES, "proof too long")
        require(all(len(h) == 32 for h in self.path), "proof hashes must be 32 bytes")


def prove(leaves: Sequence[bytes], index: int) -> InclusionProof:
    """The audit path for leaves[index]."""
    if not 0 <= index < len(leaves):
        raise ProofError("index", f"leaf {index} not in a tree of {len(leaves)}")
    levels = _levels([leaf_hash(x) for x in leaves])
    path = []
    i = index
    for level in levels[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        i //= 2
    return InclusionProof(index=index, tree_size=len(leaves), path=tuple(path))


def verify_inclusion(
    leaf: bytes, proof: InclusionProof, expected_root: bytes, tree_size: int
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `leaf` is at proof.index under the root.

    `tree_size` must come from the trusted header (tx_count), never from the proof: an
    audit path does not authenticate the size it claims (the path of leaf 0 in a tree of
    3 is also a well-formed path in a tree of 4).
    """
    if proof.tree_size != tree_size:
        raise ProofError("bad_proof", f"proof is for {proof.tree_size} leaves, not {tree_size}")
    fn, sn = proof.index, proof.tree_size - 1
    h = leaf_hash(leaf)
    for p in proof.path:
        if sn == 0:
            raise ProofError("bad_proof", "proof longer than the tree is deep")
        if fn & 1 or fn == sn:
            h = node_hash(p, h)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            h = node_hash(h, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or h != expected_root:
        raise ProofError("bad_proof", "inclusion proof does not match the root")
