"""Disputes: a disputed line is frozen until both parties or the licence's arbiter sign a
resolution; strangers cannot resolve; the closed statement is never rewritten (the
resolution is a new Adjustment record)."""

from __future__ import annotations

from typing import Any

from node.ledger.calendar import MS_PER_DAY, ms_of_date
from node.ledger.model import (
    Account,
    Adjustment,
    Dispute,
    Licence,
    Statement,
    k_account,
    k_adjustment,
    k_dispute,
    k_licence,
    k_statement,
)
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import (
    DEVICE,
    MEMBERS,
    T0,
    activate,
    assert_money_conserved,
    deposit,
    terms,
)

PEOPLE = {**MEMBERS, "arb": ("auditor",), "stranger": ("licensor",)}
KEY = k_statement("L1", "2026-Q1")
FEE, UNITS, UPFRONT = 10, 1_000, 5_000


def closed(arbiter: str | None) -> Harness:
    """L1 closed for Q1 with lines [units x fee 10,000, upfront fee 5,000]; funds held."""
    h = Harness(PEOPLE, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    arb = h.key[arbiter] if arbiter else b""
    t = terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": FEE}, upfront_fee=UPFRONT, arbiter=arb)
    activate(h, t, "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": UNITS})
    h.ok()
    h.ok(ms_of_date(2026, 4, 1))
    deposit(h, "oem", 100_000, "d1")
    return h


def stmt(h: Harness) -> Statement:
    s: Statement = h.get(KEY, Statement)
    return s


def fixed(s: Statement) -> tuple[Any, ...]:
    """What the period close fixed: must never change."""
    return (s.lines, s.total, s.earned, s.due_ms, s.usage_root, s.usage_count, s.rule)


def dispute(h: Harness, who: str, line: int) -> str:
    body = {"licence_id": "L1", "period_id": "2026-Q1", "line": line, "evidence_hash": b"\x09" * 32}
    h.tx(who, "statement.dispute", body)
    return h.block()[0].code


def resolve(h: Harness, who: str, amount: int, line: int = 0) -> str:
    body = {"licence_id": "L1", "period_id": "2026-Q1", "line": line, "amount": amount}
    h.tx(who, "statement.resolve", body)
    return h.block()[0].code


def balance(h: Harness, who: str) -> int:
    acct = h.get(k_account(h.key[who], "EUR"), Account)
    return acct.balance if acct else 0


def test_the_arbiter_alone_resolves_and_history_stays() -> None:
    h = closed("arb")
    original = stmt(h)
    assert [(li.label, li.amount) for li in original.lines] == [
        ("units x fee", FEE * UNITS),
        ("upfront fee", UPFRONT),
    ]
    assert dispute(h, "oem", 0) == "ok"
    h.ok(original.due_ms)  # due: only the undisputed line is paid
    assert (stmt(h).paid, stmt(h).status) == (UPFRONT, "disputed")
    later = original.due_ms + 30 * MS_PER_DAY
    h.ok(later)

    before = h.state()
    assert resolve(h, "stranger", 0) == "not_authorised"
    assert resolve(h, "auditor", 0) == "not_authorised"
    assert h.state() == before  # a rejected transaction changes nothing

    assert resolve(h, "codec", 9_000) == "ok"  # one party's vote does not resolve
    assert stmt(h).frozen == (0,)
    assert resolve(h, "arb", 7_000) == "ok"
    s = stmt(h)
    assert fixed(s) == fixed(original)  # the closed statement is never rewritten
    assert (s.adjustment, s.paid, s.frozen, s.status) == (-3_000, UPFRONT + 7_000, (), "paid")
    assert s.interest_paid == 0  # a frozen line accrues no late interest
    adj = h.get(k_adjustment(KEY, 0), Adjustment)
    assert (adj.original, adj.agreed, adj.delta, adj.resolved_by) == (
        10_000,
        7_000,
        -3_000,
        (h.key["arb"],),
    )
    assert h.get(k_dispute(KEY, 0), Dispute).status == "resolved"
    assert balance(h, "codec") == UPFRONT + 7_000
    assert resolve(h, "oem", 0) == "bad_line"  # resolved once
    assert dispute(h, "oem", 0) == "duplicate"
    assert_money_conserved(h)


def test_without_an_arbiter_both_parties_must_sign_the_same_amount() -> None:
    h = closed(None)
    assert dispute(h, "auditor", 0) == "ok"  # an auditor may raise a dispute
    assert resolve(h, "arb", 5_000) == "not_authorised"  # not this licence's arbiter
    assert resolve(h, "codec", 6_000) == "ok"
    assert resolve(h, "oem", 4_000) == "ok"  # disagreement: still frozen
    assert stmt(h).frozen == (0,)
    assert resolve(h, "oem", 6_000) == "ok"
    s = stmt(h)
    assert (s.total, s.adjustment, s.frozen, s.status) == (15_000, -4_000, (), "open")
    adj = h.get(k_adjustment(KEY, 0), Adjustment)
    assert adj.resolved_by == tuple(sorted((h.key["codec"], h.key["oem"])))
    h.ok(s.due_ms)
    assert (stmt(h).paid, stmt(h).status) == (11_000, "paid")


def test_who_may_dispute_and_who_may_be_arbiter() -> None:
    h = closed(None)
    assert dispute(h, "stranger", 0) == "not_a_party"
    assert dispute(h, "oem", 7) == "bad_line"
    assert dispute(h, "oem", 300) == "invalid"  # out of range in the body itself
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    for licence_id, arbiter in (("L2", h.key["codec"]), ("L3", b"\x05" * 32)):
        t = terms(h, licence_id, rules.PER_UNIT, {"fee_per_unit": 1})
        body = {**t.to_value(), "arbiter": arbiter}
        h.tx("codec", "licence.propose", {"terms": body})
        assert h.block()[0].code == ("invalid" if licence_id == "L2" else "bad_party")
        assert h.get(k_licence(licence_id), Licence) is None
