"""End-of-block receipts (node/ledger/app.py, block.py): the events of period closes and
settlements are committed by the receipt root like any transaction's, deterministically,
and they say exactly what moved. Figures are recomputed here with plain arithmetic."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from fractions import Fraction

import pytest

from node.ledger import app
from node.ledger.app import BlockInvalid, check_result, execute_block
from node.ledger.block import Event, Receipt, system_receipt_id, system_receipts
from node.ledger.calendar import ms_of_date
from node.ledger.context import BlockInfo
from node.ledger.model import Account, Statement, k_account, k_statement, k_statement_closed
from node.store.kv import StoreError
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import CHAIN, Harness
from tests.ledger.test_ledger_invariants import replay_from_genesis

TAG = b"alps/end-of-block/v1"
FIRST_DEPOSIT = 3_000_000  # covers CODEC and OS Q1, only part of RADIO Q1


def _deposit(h: Harness, deposit_id: str, amount: int) -> None:
    body = {
        "deposit_id": deposit_id,
        "currency": "USD",
        "amount": amount,
        "reference": "",
        "counterparty": b"",
    }
    h.tx("oem", "account.deposit", body)
    h.ok()
    h.tx("bank", "account.ack_deposit", {"deposit_id": deposit_id})


def quarter_with_short_balance() -> tuple[Harness, int, int]:
    """The licensing web with one quarter of usage closed; returns (harness, height of
    the close block, height of the next block: the due-date one, left to the caller)."""
    h = web.build()
    gateways = web.enrol_gateways(h)
    h.ok()
    _deposit(h, "first", FIRST_DEPOSIT)
    h.ok()
    registers = [{"units": 0, "net_sales": 0} for _ in web.GATEWAYS]
    for month in (1, 2, 3):
        for g, (sku, territory) in enumerate(web.GATEWAYS):
            registers[g] = web.grown(registers[g], g, sku, month)
            h.usage(gateways[g], sku, territory, dict(registers[g]))
        h.ok(ms_of_date(2026, month, 15))
    close_height = h.store.next_height
    h.ok(web.QUARTER_ENDS[0])
    return h, close_height, h.store.next_height


def balances(h: Harness) -> dict[str, int]:
    out = {}
    for name, key in h.key.items():
        acct = h.get(k_account(key, "USD"), Account)
        out[name] = acct.balance if acct else 0
    return out


def test_system_receipt_ids_and_splitting() -> None:
    events = [Event("e", {"i": i}) for i in range(130)]
    receipts = system_receipts(7, events)
    assert [len(r.events) for r in receipts] == [64, 64, 2]
    height = (7).to_bytes(8, "big")
    assert receipts[0].tx_id == hashlib.sha256(TAG + height).digest()
    assert receipts[2].tx_id == hashlib.sha256(TAG + height + (2).to_bytes(4, "big")).digest()
    assert [e.attrs["i"] for r in receipts for e in r.events] == list(range(130))
    assert all(r.accepted and r.code == "ok" for r in receipts)
    assert system_receipts(7, []) == ()
    assert system_receipt_id(8, 0) != system_receipt_id(7, 0)


def test_period_close_is_an_end_of_block_receipt() -> None:
    h, close_height, _ = quarter_with_short_balance()
    block, receipts = h.store.block(close_height), h.store.receipts(close_height)
    assert block is not None and receipts is not None
    assert (block.header.tx_count, block.header.receipt_count) == (0, 1)
    (system,) = receipts
    assert system.tx_id == hashlib.sha256(TAG + close_height.to_bytes(8, "big")).digest()
    closed = [e for e in system.events if e.kind == "statement_closed"]
    assert sorted(e.attrs["licence_id"] for e in closed) == ["CODEC", "GFX-OS", "OS", "RADIO"]
    for event in closed:
        lid, pid = event.attrs["licence_id"], event.attrs["period_id"]
        record = h.store.get(k_statement_closed(lid, pid))
        assert record is not None
        assert event.attrs["statement_hash"] == hashlib.sha256(record).digest()
        at_close = Statement.decode(record)
        assert (at_close.paid, at_close.interest_accrued) == (0, 0)
        assert event.attrs["total"] == at_close.total and event.attrs["currency"] == "USD"
        licensee = h.key["osv" if lid == "GFX-OS" else "oem"]
        assert event.attrs["licensee"] == licensee == at_close.licensee
        assert event.attrs["usage_root"] == at_close.usage_root
    # the tx index never points at it; the receipt index does
    assert h.store.tx_location(system.tx_id) is None
    assert h.store.receipt_location(system.tx_id) == (close_height, 0)


def test_settlement_events_match_the_balances_moved() -> None:
    h, _, settle_height = quarter_with_short_balance()
    before = balances(h)
    h.ok(ms_of_date(2026, 5, 5))  # past the due date
    after = balances(h)
    receipts = h.store.receipts(settle_height)
    assert receipts is not None
    payments = [e for r in receipts for e in r.events if e.kind == "statement_payment"]
    assert [p.attrs["licence_id"] for p in payments] == ["CODEC", "OS", "RADIO"]
    moved: Counter[bytes] = Counter()
    for p in payments:
        a = p.attrs
        assert a["payer"] == h.key["oem"] and a["currency"] == "USD"
        assert sum(amount for _, amount in a["transfers"]) == a["principal"] + a["interest"]
        stmt = h.get(k_statement(a["licence_id"], a["period_id"]), Statement)
        assert (a["paid_total"], a["outstanding"]) == (stmt.paid, stmt.principal_outstanding)
        closed = h.store.get(k_statement_closed(a["licence_id"], a["period_id"]))
        assert a["statement_hash"] == hashlib.sha256(closed or b"").digest()
        for payee, amount in a["transfers"]:
            moved[payee] += amount
    paid = sum(p.attrs["principal"] + p.attrs["interest"] for p in payments)
    assert paid == FIRST_DEPOSIT == before["oem"] - after["oem"]  # all it held
    for name, key in h.key.items():
        if name != "oem":
            assert after[name] - before[name] == moved[key], name
    radio = payments[2].attrs
    weights = list(web.PATENTS.values())
    want = web.largest_remainder(radio["principal"], weights)  # pool apportionment
    assert radio["transfers"] == [[h.key[n], w] for n, w in zip(web.PATENTS, want, strict=True)]
    assert radio["outstanding"] > 0 and radio["status"] == "open"


def test_late_interest_is_paid_first_when_the_licensee_deposits() -> None:
    h, _, _ = quarter_with_short_balance()
    h.ok(ms_of_date(2026, 5, 5))
    radio = h.get(k_statement("RADIO", "2026-Q1"), Statement)
    outstanding, due = radio.principal_outstanding, radio.due_ms
    h.ok(ms_of_date(2026, 6, 4))
    _deposit(h, "second", 10_000_000)
    receipts = h.ok(ms_of_date(2026, 6, 4) + 1000)
    (ack,) = receipts  # the settlement runs in the acknowledging transaction's receipt
    (payment,) = [e for e in ack.events if e.kind == "statement_payment"]
    days = (ms_of_date(2026, 6, 4) + 1000 - due) // 86_400_000
    interest = round(Fraction(outstanding * 800 * days, 365 * 10_000))  # half-even
    assert payment.attrs["interest"] == interest > 0
    assert payment.attrs["principal"] == outstanding
    assert payment.attrs["status"] == "paid" and payment.attrs["interest_outstanding"] == 0


def test_replay_reproduces_every_receipt() -> None:
    h, _, _ = quarter_with_short_balance()
    h.ok(ms_of_date(2026, 5, 5))
    replay_from_genesis(h)  # replay_block checks receipt_count and receipt_root too


def test_executing_twice_gives_the_same_receipts_and_roots() -> None:
    h, _, settle_height = quarter_with_short_balance()
    info = BlockInfo(CHAIN, settle_height, ms_of_date(2026, 5, 5))
    first = execute_block(h.store, h.store.accumulator(), info, [])
    second = execute_block(h.store, h.store.accumulator(), info, [], share_records=False)
    assert first.receipts == second.receipts and len(first.receipts) == 1
    assert first.receipt_root == second.receipt_root
    assert first.state_digest == second.state_digest


_ROOTS = """
from tests.ledger.test_end_of_block_receipts import quarter_with_short_balance
from node.ledger.calendar import ms_of_date
h, _, _ = quarter_with_short_balance()
h.ok(ms_of_date(2026, 5, 5))
for height in range(1, h.store.next_height):
    b = h.store.block(height)
    print(b.header.receipt_count, b.header.receipt_root.hex(), b.header.state_digest.hex())
"""


def test_receipts_do_not_depend_on_the_hash_seed() -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    outs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", _ROOTS],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outs.append(run.stdout)
    assert outs[0] == outs[1] and len(outs[0].splitlines()) > 10


def test_header_and_store_insist_on_every_receipt() -> None:
    h, _, settle_height = quarter_with_short_balance()
    h.ok(ms_of_date(2026, 5, 5))
    block = h.store.block(settle_height)
    assert block is not None
    info = BlockInfo(CHAIN, settle_height, block.header.timestamp_ms)
    h2, _, _ = quarter_with_short_balance()
    result = execute_block(h2.store, h2.store.accumulator(), info, [])
    check_result(block.header, result)
    wrong = replace(block.header, receipt_count=block.header.receipt_count + 1)
    with pytest.raises(BlockInvalid, match="receipt_count"):
        check_result(wrong, result)
    with pytest.raises(StoreError, match="receipts"):  # the end-of-block receipt left out
        h2.store.commit_block(block, [], None, result.changes, result.accumulator)


def test_a_transaction_over_the_event_bound_is_rejected_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness({"oem": ("licensee",), "bank": ("bank",)}, ms_of_date(2026, 1, 1))
    _deposit(h, "d1", 500)
    monkeypatch.setattr(app, "MAX_EVENTS", 0)  # the ack emits one event: too many
    (receipt,) = h.block()
    assert isinstance(receipt, Receipt) and receipt.code == "too_many_events"
    assert h.get(k_account(h.key["oem"], "USD"), Account) is None
    monkeypatch.setattr(app, "MAX_EVENTS", 1024)
    h.tx("bank", "account.ack_deposit", {"deposit_id": "d1"})
    h.ok()
    assert h.get(k_account(h.key["oem"], "USD"), Account) == Account(500)
