"""Transactions, signatures with domain separation, blocks and commit certificates."""

from __future__ import annotations

import dataclasses

import pytest

from node.ledger import codec, crypto
from node.ledger.block import Block, encode_receipts
from node.ledger.certificate import CommitSignature, ValidatorSet, max_faulty, quorum_size
from node.ledger.errors import LedgerError, ProofError, SchemaError, SignatureError
from node.ledger.tx import Transaction, make_tx
from tests.factory import CHAIN_ID, USER, VALIDATOR_SIGNERS, VALIDATORS, build_chain, certify


def test_signed_transaction_round_trips_and_verifies() -> None:
    tx = make_tx(USER, CHAIN_ID, "usage.submit", {"units": 5, "sku": "cam-1"}, nonce=7)
    decoded = Transaction.decode_tx(tx.encode())
    assert decoded == tx
    assert decoded.tx_id == tx.tx_id
    assert decoded.signature_valid()


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": "other-chain"},
        {"tx_type": "usage.other"},
        {"body": {"units": 6, "sku": "cam-1"}},
        {"nonce": 8},
        {"signer": VALIDATOR_SIGNERS[0].public_key},
    ],
)
def test_signature_binds_every_signed_field(change: dict[str, object]) -> None:
    tx = make_tx(USER, CHAIN_ID, "usage.submit", {"units": 5, "sku": "cam-1"}, nonce=7)
    forged = dataclasses.replace(tx, **change)  # type: ignore[arg-type]
    assert not forged.signature_valid()
    with pytest.raises(SignatureError):
        forged.check_signature()
    assert forged.tx_id != tx.tx_id


def test_signature_for_another_purpose_is_not_a_transaction_signature() -> None:
    tx = make_tx(USER, CHAIN_ID, "usage.submit", {"units": 5}, nonce=1)
    other_purpose = USER.sign(crypto.DOMAIN_COMMIT, CHAIN_ID, tx.signed_value())
    assert not dataclasses.replace(tx, signature=other_purpose).signature_valid()


def test_malformed_transactions_are_typed_errors() -> None:
    tx = make_tx(USER, CHAIN_ID, "usage.submit", {"units": 5}, nonce=1)
    good = tx.to_value()
    bad_values = [
        {**good, "signer": b"short"},
        {**good, "nonce": -1},
        {**good, "tx_type": "Bad Type"},
        {**good, "chain_id": ""},
        {**good, "body": [1]},
        {**good, "signature": b"\x00" * 63},
    ]
    for value in bad_values:
        with pytest.raises(SchemaError):
            Transaction.from_value(value)
    with pytest.raises(LedgerError):
        Transaction.decode_tx(b"\x00" * 70_000)


def test_block_body_must_match_header() -> None:
    built = build_chain(3)[2]
    built.block.check_body()
    assert Block.decode(built.block.encode()) == built.block
    swapped = dataclasses.replace(built.block, txs=tuple(reversed(built.block.txs)))
    with pytest.raises(ProofError):
        swapped.check_body()


def test_quorum_arithmetic() -> None:
    assert [(n, max_faulty(n), quorum_size(n)) for n in (1, 4, 5, 7, 10)] == [
        (1, 0, 1),
        (4, 1, 3),
        (5, 1, 4),
        (7, 2, 5),
        (10, 3, 7),
    ]


def test_commit_certificate_verifies_with_a_quorum() -> None:
    header = build_chain(2)[1].block.header
    cert = certify(header)
    cert.verify(CHAIN_ID, VALIDATORS, header.hash())


def test_commit_certificate_rejections() -> None:
    header = build_chain(2)[1].block.header
    good = certify(header)
    outsider = crypto.Signer(b"\x99" * 32)
    cases = {
        "no_quorum": certify(header, VALIDATOR_SIGNERS[:2]),
        "unknown_validator": certify(header, [*VALIDATOR_SIGNERS[:2], outsider]),
        "duplicate_signer": dataclasses.replace(
            good, signatures=(*good.signatures[:2], good.signatures[0])
        ),
        "bad_signature": dataclasses.replace(
            good,
            signatures=(
                CommitSignature(good.signatures[0].validator, good.signatures[1].signature),
                *good.signatures[1:],
            ),
        ),
    }
    for code, cert in cases.items():
        with pytest.raises(ProofError) as info:
            cert.verify(CHAIN_ID, VALIDATORS, header.hash())
        assert info.value.code == code
    with pytest.raises(ProofError):
        good.verify("another-chain", VALIDATORS, header.hash())
    with pytest.raises(ProofError) as info:
        good.verify(CHAIN_ID, VALIDATORS, b"\x00" * 32)
    assert info.value.code == "wrong_block"
    other_set = ValidatorSet(tuple(s.public_key for s in VALIDATOR_SIGNERS[1:]))
    with pytest.raises(ProofError):
        good.verify(CHAIN_ID, other_set, header.hash())


def test_validator_set_rejects_duplicates() -> None:
    with pytest.raises(ValueError):
        ValidatorSet((VALIDATORS.validators[0], VALIDATORS.validators[0]))


def test_cached_bytes_and_ids_are_those_of_the_record() -> None:
    # Transaction and Receipt cache their encodings and ids; the caches must always equal
    # what the record itself encodes to, and a modified copy must not inherit them.
    tx = make_tx(USER, CHAIN_ID, "usage.submit", {"units": 5, "sku": "cam-1"}, nonce=7)
    wire, tx_id = tx.encode(), tx.tx_id  # warm the caches
    assert wire == codec.encode(tx.to_value())
    assert tx_id == crypto.sha256(
        crypto.signing_bytes(crypto.DOMAIN_TX, CHAIN_ID, tx.signed_value())
    )
    changed = dataclasses.replace(tx, nonce=8)
    assert changed.encode() == codec.encode(changed.to_value()) != wire
    assert changed.tx_id != tx_id
    assert Transaction.decode_tx(bytearray(wire)).encode() == wire
    for built in build_chain(6):
        block = built.block
        assert block.encode() == codec.encode(block.to_value())
        assert Block.decode(block.encode()) == block
        assert encode_receipts(built.receipts) == codec.encode(
            [r.to_value() for r in built.receipts]
        )
