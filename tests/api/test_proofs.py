"""Inclusion proofs (node/api/proofs.py): what the node builds verifies offline with only
the chain id and the validator set, and every tampering with any part is rejected."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from node.api.proofs import (
    InclusionProofDoc,
    NotCertified,
    build_receipt_proof,
    build_tx_proof,
    verify_tx_proof,
)
from node.ledger import crypto
from node.ledger.certificate import CommitCertificate, CommitSignature, ValidatorSet
from node.ledger.errors import ProofError
from tests.api.chain import VALIDATOR_SIGNERS, VALIDATORS, Chain, certify
from tests.ledger.harness import CHAIN, signer_for


def usage_block(chain: Chain) -> tuple[int, list[bytes]]:
    height, _ = chain.store.tx_location(chain.usage_txs[0].tx_id) or (-1, 0)
    block = chain.store.block(height)
    assert block is not None and block.header.tx_count == 5  # not a power of two
    return height, [tx.tx_id for tx in block.txs]


def test_every_tx_and_receipt_of_a_block_verifies(chain: Chain) -> None:
    height, tx_ids = usage_block(chain)
    block = chain.store.block(height)
    receipts = chain.store.receipts(height)
    assert block is not None and receipts is not None
    for index, tx_id in enumerate(tx_ids):
        proof = build_tx_proof(chain.store, tx_id)
        assert proof is not None and (proof.height, proof.index) == (height, index)
        verified = verify_tx_proof(proof, CHAIN, VALIDATORS)
        assert verified.tx == block.txs[index]
        assert verified.header == block.header
        receipt_proof = build_receipt_proof(chain.store, tx_id)
        assert receipt_proof is not None
        assert verify_tx_proof(receipt_proof, CHAIN, VALIDATORS).receipt == receipts[index]


def test_unknown_and_uncertified(chain: Chain) -> None:
    assert build_tx_proof(chain.store, b"\x01" * 32) is None
    assert chain.uncertified_tx is not None
    with pytest.raises(NotCertified):
        build_tx_proof(chain.store, chain.uncertified_tx.tx_id)


def flip(data: bytes, at: int = -1) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _other_leaf(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    """A sibling transaction's leaf and id, at this proof's index and path."""
    other = build_tx_proof(chain.store, usage_block(chain)[1][(p.index + 1) % 5])
    assert other is not None
    return dataclasses.replace(p, leaf=other.leaf, tx_id=other.tx_id)


def _other_header(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    block = chain.store.block(p.height - 1)
    assert block is not None
    return dataclasses.replace(p, header=block.header.encode(), height=p.height - 1)


def _other_certificate(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    cert = chain.store.certificate(p.height - 1)
    assert cert is not None
    return dataclasses.replace(p, certificate=cert.encode())


def _two_signatures(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    cert = CommitCertificate.decode(p.certificate)
    short = dataclasses.replace(cert, signatures=cert.signatures[:2])
    return dataclasses.replace(p, certificate=short.encode())


def _forged_signature(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    cert = CommitCertificate.decode(p.certificate)
    first = cert.signatures[0]
    bad = CommitSignature(first.validator, flip(first.signature, 5))
    return dataclasses.replace(
        p, certificate=dataclasses.replace(cert, signatures=(bad, *cert.signatures[1:])).encode()
    )


def _outsiders_certificate(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    block = chain.store.block(p.height)
    assert block is not None
    outsiders = [signer_for(f"outsider-{i}") for i in range(3)]
    return dataclasses.replace(p, certificate=certify(block.header, outsiders).encode())


def _duplicated_signer(chain: Chain, p: InclusionProofDoc) -> InclusionProofDoc:
    cert = CommitCertificate.decode(p.certificate)
    sigs = (cert.signatures[0], cert.signatures[0], cert.signatures[1])
    return dataclasses.replace(p, certificate=dataclasses.replace(cert, signatures=sigs).encode())


TAMPERINGS: dict[str, Callable[[Chain, InclusionProofDoc], InclusionProofDoc]] = {
    "leaf_byte": lambda c, p: dataclasses.replace(p, leaf=flip(p.leaf)),
    "leaf_of_sibling": _other_leaf,
    "claimed_tx_id": lambda c, p: dataclasses.replace(p, tx_id=b"\x07" * 32),
    "path_hash": lambda c, p: dataclasses.replace(p, path=(flip(p.path[0]), *p.path[1:])),
    "path_truncated": lambda c, p: dataclasses.replace(p, path=p.path[:-1]),
    "path_extended": lambda c, p: dataclasses.replace(p, path=(*p.path, b"\x00" * 32)),
    "index": lambda c, p: dataclasses.replace(p, index=(p.index + 1) % p.tree_size),
    "tree_size": lambda c, p: dataclasses.replace(p, tree_size=p.tree_size + 1),
    "header_byte": lambda c, p: dataclasses.replace(p, header=flip(p.header)),
    "header_of_parent": _other_header,
    "height_claim": lambda c, p: dataclasses.replace(p, height=p.height + 1),
    "certificate_of_parent": _other_certificate,
    "certificate_below_quorum": _two_signatures,
    "certificate_forged_signature": _forged_signature,
    "certificate_by_outsiders": _outsiders_certificate,
    "certificate_duplicate_signer": _duplicated_signer,
    "certificate_garbage": lambda c, p: dataclasses.replace(p, certificate=b"\x93\x01"),
    "kind_swapped": lambda c, p: dataclasses.replace(p, kind="receipt"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampered_proofs_are_rejected(chain: Chain, name: str) -> None:
    _, tx_ids = usage_block(chain)
    proof = build_tx_proof(chain.store, tx_ids[2])
    assert proof is not None
    verify_tx_proof(proof, CHAIN, VALIDATORS)  # the untampered proof is fine
    tampered = TAMPERINGS[name](chain, proof)
    assert tampered != proof
    with pytest.raises(ProofError):
        verify_tx_proof(tampered, CHAIN, VALIDATORS)


def test_receipt_proof_tampering_is_rejected(chain: Chain) -> None:
    _, tx_ids = usage_block(chain)
    proof = build_receipt_proof(chain.store, tx_ids[4])
    assert proof is not None
    with pytest.raises(ProofError):
        verify_tx_proof(dataclasses.replace(proof, leaf=flip(proof.leaf)), CHAIN, VALIDATORS)
    with pytest.raises(ProofError):
        verify_tx_proof(dataclasses.replace(proof, kind="tx"), CHAIN, VALIDATORS)


def test_wrong_chain_or_validator_set_is_rejected(chain: Chain) -> None:
    _, tx_ids = usage_block(chain)
    proof = build_tx_proof(chain.store, tx_ids[0])
    assert proof is not None
    with pytest.raises(ProofError, match="wrong_chain"):
        verify_tx_proof(proof, "another-chain", VALIDATORS)
    others = ValidatorSet(
        (*(s.public_key for s in VALIDATOR_SIGNERS[1:]), signer_for("validator-9").public_key)
    )
    with pytest.raises(ProofError):  # validator-0 signed but is not in this set
        verify_tx_proof(proof, CHAIN, others)


@pytest.mark.parametrize(
    "doc",
    [None, [], {}, {"kind": "tx"}, "proof"],
)
def test_malformed_proof_documents(doc: object) -> None:
    with pytest.raises(ProofError):
        InclusionProofDoc.from_json(doc)


def test_json_round_trip_and_bad_fields(chain: Chain) -> None:
    _, tx_ids = usage_block(chain)
    proof = build_tx_proof(chain.store, tx_ids[1])
    assert proof is not None
    doc = proof.to_json()
    assert InclusionProofDoc.from_json(doc) == proof
    for key, value in [
        ("leaf", "zz"),
        ("index", -1),
        ("index", 5),
        ("path", ["ab"]),
        ("kind", "block"),
        ("tx_id", "ab"),
        ("height", "1"),
    ]:
        with pytest.raises(ProofError):
            InclusionProofDoc.from_json({**doc, key: value})


@pytest.mark.trio
async def test_proofs_over_http_verify(client: httpx.AsyncClient, chain: Chain) -> None:
    _, tx_ids = usage_block(chain)
    for path, kind in (("txs", "tx"), ("receipts", "receipt")):
        answer = await client.get(f"/v1/{path}/{tx_ids[3].hex()}/proof")
        assert answer.status_code == 200
        proof = InclusionProofDoc.from_json(answer.json())
        assert proof.kind == kind
        verified = verify_tx_proof(proof, CHAIN, VALIDATORS)
        assert (verified.tx or verified.receipt) is not None
    assert chain.uncertified_tx is not None
    answer = await client.get(f"/v1/txs/{chain.uncertified_tx.tx_id.hex()}/proof")
    assert answer.status_code == 404 and answer.json()["error"] == "not_certified"
    answer = await client.get(f"/v1/receipts/{'ab' * 32}/proof")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_signers_are_the_genesis_validators(chain: Chain) -> None:
    assert chain.h.genesis.validator_set == VALIDATORS
    assert all(len(s.public_key) == crypto.PUBLIC_KEY_BYTES for s in VALIDATOR_SIGNERS)


def test_verifier_imports_no_web_framework_or_storage_engine() -> None:
    """The CLI verifies proofs offline with only the ledger core installed."""
    code = (
        "import sys, node.api.proofs\n"
        "heavy = {'plyvel', 'fastapi', 'starlette', 'hypercorn', 'trio', 'pydantic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=pathlib.Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"
