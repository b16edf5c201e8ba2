"""RFC 6962 Merkle trees: roots match the published test vectors and an independent
recursive definition; every inclusion proof verifies and tampered ones do not."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger import merkle
from node.ledger.errors import ProofError

# Leaves and roots from the certificate-transparency reference tests (RFC 6962).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written recursively as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_reference_vectors(size: int) -> None:
    assert merkle.root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_empty_tree() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_root_matches_recursive_definition(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == reference_root(leaves)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33])
def test_every_inclusion_proof_verifies(size: int) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(size)]
    root = merkle.root(leaves)
    for i, leaf in enumerate(leaves):
        proof = merkle.prove(leaves, i)
        merkle.verify_inclusion(leaf, proof, root, size)
        assert merkle.InclusionProof.decode(proof.encode()) == proof


@pytest.mark.parametrize("size", [2, 3, 6, 11])
def test_tampered_proofs_are_rejected(size: int) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(size)]
    root = merkle.root(leaves)
    for i, leaf in enumerate(leaves):
        proof = merkle.prove(leaves, i)
        other = (i + 1) % size
        attempts = [
            (leaves[other], proof),
            (leaf, dataclasses.replace(proof, index=other)),
            (leaf, dataclasses.replace(proof, tree_size=size + 1)),
            (leaf, dataclasses.replace(proof, path=proof.path[:-1])),
            (leaf, dataclasses.replace(proof, path=(*proof.path, b"\x00" * 32))),
            (leaf, dataclasses.replace(proof, path=(b"\x11" * 32, *proof.path[1:]))),
        ]
        for candidate_leaf, candidate in attempts:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(candidate_leaf, candidate, root, size)


def test_a_leaf_is_not_an_interior_node() -> None:
    """Second-preimage resistance: the 0x00/0x01 prefixes separate leaves from nodes."""
    leaves = [b"a", b"b"]
    interior = merkle.leaf_hash(b"a") + merkle.leaf_hash(b"b")
    assert merkle.root([interior]) != merkle.root(leaves)
