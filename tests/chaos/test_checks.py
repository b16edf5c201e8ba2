"""The end-of-run checks fail on what they exist to catch: forked chains, acknowledged
transactions missing or included twice, money that appears or vanishes, and answers an
honest client should never get. (Fabricated chain scans; no processes.)"""

from __future__ import annotations

from typing import Any

import trio

from tests.chaos import checks
from tests.chaos.checks import ChainScan
from tests.chaos.load import Load, TxRecord


def scan(hashes: list[str], txs: dict[int, list[tuple[str, bool, list[Any]]]]) -> ChainScan:
    return ChainScan(
        height=len(hashes),
        hashes=dict(enumerate(hashes, start=1)),
        parents=dict(enumerate(["genesis", *hashes[:-1]], start=1)),
        state_digest="d" + hashes[-1],
        tx_ids={h: [t for t, _, _ in items] for h, items in txs.items()},
        receipts={
            h: [{"tx_id": t, "accepted": ok, "events": ev} for t, ok, ev in items]
            for h, items in txs.items()
        },
    )


def load_with(*records: TxRecord) -> Load:
    load = Load(None, 1, 0, trio.CapacityLimiter(1))  # type: ignore[arg-type]
    for rec in records:
        load.records[rec.tx_id] = rec
    return load


def test_chains_must_match_at_every_height() -> None:
    same = {0: scan(["a", "b", "c"], {}), 1: scan(["a", "b", "c"], {})}
    assert checks.check_chains(same).ok
    forked = {0: scan(["a", "b", "c"], {}), 1: scan(["a", "x", "c"], {})}
    result = checks.check_chains(forked)
    assert not result.ok and "node-1 block 2" in result.detail
    unlinked = scan(["a", "b", "c"], {})
    unlinked.parents[3] = "x"
    result = checks.check_chains({0: unlinked, 1: scan(["a", "b", "c"], {})})
    assert not result.ok and "block 3 does not link" in result.detail
    other_digest = scan(["a", "b", "c"], {})
    other_digest.state_digest = "other"
    assert not checks.check_chains({0: scan(["a", "b", "c"], {}), 2: other_digest}).ok


def test_acknowledged_transactions_must_be_on_the_chain_once() -> None:
    chain = scan(["a", "b", "c"], {2: [("t1", True, [])], 3: [("t2", True, [])]})
    good = load_with(TxRecord("t1", "deposit", "oem", acks=[(0, 2, "ok")]))
    assert checks.check_acknowledged(None, good, chain, []).ok  # type: ignore[arg-type]
    wrong_height = load_with(TxRecord("t2", "deposit", "oem", acks=[(1, 2, "ok")]))
    result = checks.check_acknowledged(None, wrong_height, chain, [])  # type: ignore[arg-type]
    assert not result.ok and "node-1 acked height 2" in result.detail
    missing = load_with(TxRecord("t9", "usage", "device-0", acks=[(0, 3, "ok")]))
    assert not checks.check_acknowledged(None, missing, chain, []).ok  # type: ignore[arg-type]
    twice = scan(["a", "b", "c"], {2: [("t1", True, [])], 3: [("t1", False, [])]})
    result = checks.check_acknowledged(None, good, twice, [])  # type: ignore[arg-type]
    assert not result.ok and "included 2 times" in result.detail


def test_money_totals_follow_the_receipt_events() -> None:
    def ev(kind: str, amount: int) -> dict[str, Any]:
        return {"kind": kind, "attrs": {"currency": "EUR", "amount": amount}}

    chain = scan(
        ["a", "b"],
        {
            1: [("d", True, [ev("deposit", 500)]), ("x", False, [ev("deposit", 999)])],
            2: [
                ("w1", True, [ev("withdrawal_requested", 100)]),
                ("w2", True, [ev("withdrawal_requested", 50)]),
                ("a1", True, [ev("withdrawal", 100)]),
            ],
        },
    )
    assert checks.ledger_totals(chain) == {"deposited": 500, "withdrawn": 100, "in_transit": 50}
    load = load_with()
    load.in_transit = 50
    assert checks.check_money(None, load, chain, []).ok  # type: ignore[arg-type]
    load.in_transit = 0
    assert not checks.check_money(None, load, chain, []).ok  # type: ignore[arg-type]


def test_refusals_errors_and_unresolved_transactions_fail_the_client_check() -> None:
    ok = TxRecord("t1", "deposit", "oem", acks=[(0, 1, "ok")])
    assert checks.check_client_answers(load_with(ok)).ok
    refused = TxRecord("t2", "deposit", "oem", http_errors=[(2, 500, "internal")])
    assert not checks.check_client_answers(load_with(ok, refused)).ok
    unresolved = TxRecord("t3", "usage", "device-1")
    result = checks.check_client_answers(load_with(ok, unresolved))
    assert not result.ok and "never resolved" in result.detail
