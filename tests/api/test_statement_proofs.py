"""Statement proofs (node/api/proofs.py): a closed statement, every payment of it and the
signed usage it billed are proven final with only the chain id and the validator set,
and tampering with any part of the proof is rejected."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable, Iterator
from fractions import Fraction

import httpx
import pytest

from consensus import NULL_DIGEST
from node.api.app import make_app
from node.api.proofs import (
    EventProofDoc,
    StatementProofDoc,
    build_statement_proof,
    verify_statement_proof,
)
from node.ledger import crypto
from node.ledger.block import BlockHeader, Receipt, system_receipt_id
from node.ledger.calendar import ms_of_date
from node.ledger.certificate import CommitCertificate
from node.ledger.errors import ProofError
from node.ledger.model import Statement
from node.store.chain import CERT, height_key
from tests.api.chain import VALIDATORS, certify
from tests.api.fakecontrol import FakeControl
from tests.api.proof_chains import (
    FIRST_DEPOSIT,
    RADIO_Q1,
    PaymentsChain,
    build_payments_chain,
    certify_digest,
)
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import CHAIN, signer_for


@pytest.fixture(scope="module")
def pchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaymentsChain]:
    built = build_payments_chain(tmp_path_factory.mktemp("payments") / "db")
    yield built
    built.store.close()


def radio_proof(chain: PaymentsChain, usage: int | None = 3) -> StatementProofDoc:
    usage_tx = None if usage is None else chain.usage_txs[usage].tx_id
    doc = build_statement_proof(chain.store, RADIO_Q1, usage_tx)
    assert doc is not None
    return doc


def test_a_partly_paid_statement_traces_to_its_payments_and_usage(pchain: PaymentsChain) -> None:
    doc = radio_proof(pchain)
    v = verify_statement_proof(doc, CHAIN, VALIDATORS)
    s = v.statement
    assert (s.licence_id, s.period_id, s.paid) == ("RADIO", "2026-Q1", 0)  # as closed
    assert v.statement_hash == crypto.sha256(doc.statement)
    # closed in the null-certified block: proven through the next block's certificate
    assert v.closed.height == pchain.close_height
    assert v.closed.certified_height == pchain.close_height + 1
    assert v.closed.receipt_id == system_receipt_id(pchain.close_height, 0)
    first, second = v.payments
    assert first.height == pchain.settle_height
    assert first.receipt_id == system_receipt_id(pchain.settle_height, 0)
    assert pchain.ack_tx is not None and second.receipt_id == pchain.ack_tx.tx_id
    paid_first = [build_statement_proof(pchain.store, f"{lid}@2026-Q1") for lid in ("CODEC", "OS")]
    codec_and_os = sum(Statement.decode(d.statement).total for d in paid_first if d)
    assert first.attrs["principal"] == FIRST_DEPOSIT - codec_and_os > 0  # due order: C, O, R
    outstanding = s.total - first.attrs["principal"]
    days = (ms_of_date(2026, 6, 4) + 1000 - s.due_ms) // 86_400_000
    assert second.attrs["principal"] == outstanding
    assert second.attrs["interest"] == round(Fraction(outstanding * 800 * days, 365 * 10_000))
    assert v.paid_total == s.total and second.attrs["outstanding"] == 0
    for p in v.payments:
        want = web.largest_remainder(p.attrs["principal"] + p.attrs["interest"], [10, 7, 3])
        assert [a for _, a in p.attrs["transfers"]] == want  # the pool's shares
    assert v.usage is not None and v.usage.tx == pchain.usage_txs[3]
    assert v.usage.height < v.closed.height and v.usage.tx.signature_valid()
    assert len(set(v.closed.signers)) == 3


def test_every_statement_proves_and_round_trips(pchain: PaymentsChain) -> None:
    for sid in ("CODEC@2026-Q1", "OS@2026-Q1", "RADIO@2026-Q1", "GFX-OS@2026-Q1"):
        doc = build_statement_proof(pchain.store, sid)
        assert doc is not None
        wire = json.loads(json.dumps(doc.to_json()))
        assert StatementProofDoc.from_json(wire) == doc
        v = verify_statement_proof(doc, CHAIN, VALIDATORS)
        assert v.paid_total == v.statement.total  # all paid by the end of the chain
        assert len(v.payments) == (0 if v.statement.total == 0 else 1 + (sid == RADIO_Q1))


def test_unknown_unbilled_and_malformed(pchain: PaymentsChain) -> None:
    assert build_statement_proof(pchain.store, "RADIO@2026-Q2") is None
    with pytest.raises(ProofError, match="bad_id"):
        build_statement_proof(pchain.store, "RADIO")
    hub_usage = pchain.usage_txs[4].tx_id  # a hub-1 gateway: not under the codec licence
    with pytest.raises(ProofError, match="usage_not_billed"):
        build_statement_proof(pchain.store, "CODEC@2026-Q1", hub_usage)
    for bad in (None, [], {}, {"kind": "statement"}, "proof"):
        with pytest.raises(ProofError):
            StatementProofDoc.from_json(bad)


def flip(data: bytes, at: int = -1) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def _replace_receipt(p: EventProofDoc, **changes: object) -> EventProofDoc:
    return dataclasses.replace(p, receipt=dataclasses.replace(p.receipt, **changes))


def _bigger_total(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    s = Statement.decode(d.statement)
    first = dataclasses.replace(s.lines[0], amount=s.lines[0].amount + 100)
    bigger = dataclasses.replace(s, lines=(first, *s.lines[1:]), total=s.total + 100)
    return dataclasses.replace(d, statement=bigger.encode())


def _other_close(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    other = build_statement_proof(c.store, "CODEC@2026-Q1")
    assert other is not None
    return dataclasses.replace(d, close=other.close)


def _other_payment(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    other = build_statement_proof(c.store, "OS@2026-Q1")
    assert other is not None
    return dataclasses.replace(d, payments=(other.payments[0], d.payments[1]))


def _null_certificate_itself(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    """The close block's own certificate (on NULL_DIGEST) instead of the descendant's."""
    cert = c.store.certificate(d.close.receipt.height)
    assert cert is not None and cert.block_hash == NULL_DIGEST
    return dataclasses.replace(
        d, close=_replace_receipt(d.close, certificate=cert.encode(), descendants=())
    )


def _tampered_transfer(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    p = d.payments[0]
    receipt = Receipt.decode(p.receipt.leaf)
    event = receipt.events[p.event_index]
    (payee, amount), *rest = event.attrs["transfers"]
    attrs = {**event.attrs, "transfers": [[payee, amount + 1], *rest]}
    events = list(receipt.events)
    events[p.event_index] = dataclasses.replace(event, attrs=attrs)
    forged = dataclasses.replace(receipt, events=tuple(events))
    return dataclasses.replace(
        d, payments=(_replace_receipt(p, leaf=forged.encode()), d.payments[1])
    )


def _outsiders_sign_payment(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    p = d.payments[1]
    header = BlockHeader.decode(p.receipt.header)
    outsiders = [signer_for(f"outsider-{i}") for i in range(3)]
    forged = certify_digest(header, header.hash(), outsiders)
    return dataclasses.replace(
        d, payments=(d.payments[0], _replace_receipt(p, certificate=forged.encode()))
    )


def _unbilled_usage(c: PaymentsChain, d: StatementProofDoc) -> StatementProofDoc:
    assert d.usage is not None
    other = radio_proof(c, usage=8)
    assert other.usage is not None
    return dataclasses.replace(d, usage=dataclasses.replace(d.usage, tx=other.usage.tx))


def _usage(d: StatementProofDoc, **changes: object) -> StatementProofDoc:
    assert d.usage is not None
    return dataclasses.replace(d, usage=dataclasses.replace(d.usage, **changes))


TAMPERINGS: dict[str, Callable[[PaymentsChain, StatementProofDoc], StatementProofDoc]] = {
    "statement_total": _bigger_total,
    "statement_byte": lambda c, d: dataclasses.replace(d, statement=flip(d.statement)),
    "statement_id": lambda c, d: dataclasses.replace(d, statement_id="CODEC@2026-Q1"),
    "chain_id": lambda c, d: dataclasses.replace(d, chain_id="another-chain"),
    "close_of_another_statement": _other_close,
    "close_event_index": lambda c, d: dataclasses.replace(
        d, close=dataclasses.replace(d.close, event_index=d.close.event_index + 1)
    ),
    "close_leaf_byte": lambda c, d: dataclasses.replace(
        d, close=_replace_receipt(d.close, leaf=flip(d.close.receipt.leaf))
    ),
    "close_descendants_dropped": lambda c, d: dataclasses.replace(
        d, close=_replace_receipt(d.close, descendants=())
    ),
    "close_by_null_certificate": _null_certificate_itself,
    "payment_left_out": lambda c, d: dataclasses.replace(d, payments=d.payments[1:]),
    "payments_reordered": lambda c, d: dataclasses.replace(d, payments=d.payments[::-1]),
    "payment_of_another_statement": _other_payment,
    "payment_transfer_amount": _tampered_transfer,
    "payment_certificate_by_outsiders": _outsiders_sign_payment,
    "payment_path_hash": lambda c, d: dataclasses.replace(
        d,
        payments=(
            d.payments[0],
            _replace_receipt(d.payments[1], path=(b"\x00" * 32, *d.payments[1].receipt.path)),
        ),
    ),
    "usage_leaf_index": lambda c, d: _usage(d, index=0),
    "usage_path": lambda c, d: _usage(d, path=d.usage.path[:-1] if d.usage else ()),
    "usage_of_an_unbilled_tx": _unbilled_usage,
    "usage_leaf_of_another_tx": lambda c, d: _usage(d, leaf=flip(d.usage.leaf) if d.usage else b""),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampered_statement_proofs_are_rejected(pchain: PaymentsChain, name: str) -> None:
    doc = radio_proof(pchain)
    verify_statement_proof(doc, CHAIN, VALIDATORS)  # the untampered proof is fine
    tampered = TAMPERINGS[name](pchain, doc)
    assert tampered != doc
    with pytest.raises(ProofError):
        verify_statement_proof(tampered, CHAIN, VALIDATORS)


def test_a_payment_not_yet_certified_is_left_out(tmp_path: pathlib.Path) -> None:
    chain = build_payments_chain(tmp_path / "db")
    head = chain.store.head()
    assert head is not None
    chain.store.kv.write([(height_key(CERT, head.height), None)])  # the ack's block
    doc = radio_proof(chain, usage=None)
    v = verify_statement_proof(doc, CHAIN, VALIDATORS)
    assert len(v.payments) == 1 and v.paid_total < v.statement.total
    chain.store.put_certificate(certify(chain.store.block(head.height).header))  # type: ignore[union-attr]
    assert len(radio_proof(chain, usage=None).payments) == 2
    chain.store.close()


@pytest.mark.trio
async def test_statement_proof_and_history_over_http(pchain: PaymentsChain) -> None:
    transport = httpx.ASGITransport(app=make_app(FakeControl(pchain.store, CHAIN)))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        usage = pchain.usage_txs[3].tx_id.hex()
        answer = await c.get(f"/v1/statements/{RADIO_Q1}/proof", params={"usage_tx": usage})
        assert answer.status_code == 200
        doc = StatementProofDoc.from_json(answer.json())
        assert verify_statement_proof(doc, CHAIN, VALIDATORS).usage is not None
        for path, status, code in (
            ("/v1/statements/RADIO@2026-Q3/proof", 404, "not_found"),
            ("/v1/statements/RADIO/proof", 400, "bad_id"),
            (f"/v1/statements/CODEC@2026-Q1/proof?usage_tx={'ab' * 32}", 404, "usage_not_billed"),
            (f"/v1/statements/CODEC@2026-Q1/proof?usage_tx={'AB' * 32}", 400, "bad_hex"),
        ):
            answer = await c.get(path)
            assert (answer.status_code, answer.json()["error"]) == (status, code), path
        history = await c.get("/v1/validator-history")
        assert history.json() == {"chain_id": CHAIN, "changes": []}
        closed_id = system_receipt_id(pchain.close_height, 0).hex()
        receipt = await c.get(f"/v1/receipts/{closed_id}/proof")
        assert receipt.status_code == 200 and receipt.json()["descendants"]
        assert (await c.get(f"/v1/txs/{closed_id}/proof")).status_code == 404


def test_null_certificate_cannot_certify_a_header(pchain: PaymentsChain) -> None:
    """A null block's certificate signs NULL_DIGEST: it proves nothing about a header."""
    cert = pchain.store.certificate(pchain.close_height)
    block = pchain.store.block(pchain.close_height)
    assert cert is not None and block is not None
    with pytest.raises(ProofError, match="wrong_block"):
        cert.verify(CHAIN, VALIDATORS, block.header.hash())
    assert isinstance(cert, CommitCertificate)
