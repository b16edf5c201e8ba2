"""Time-driven work never stops the chain (periods.end_of_block): a close that cannot be
made (found by review: it raised out of every block after the period end, on every node)
becomes a `rule_failed` statement billing nothing, with the reason in an event."""

from __future__ import annotations

from node.ledger.crypto import Signer
from node.ledger.model import Statement, k_statement, k_ytd
from node.ledger.usage import MAX_REGISTER
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import DEVICE, MEMBERS, T0, activate, terms
from tests.ledger.test_ledger_terms import Q

TWO_HUGE_LINES = """
def royalty(usage, period):
    return [["a", 4611686018427387904], ["b", 4611686018427387904]]
"""


def _licensed(source: str) -> Harness:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": source})
    h.ok()
    activate(h, terms(h, "L1", source, {"fee_per_unit": 0}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    return h


def _events(receipts, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e.attrs for r in receipts for e in r.events if e.kind == kind]


def test_lines_past_the_amount_limit_make_a_rule_failed_statement() -> None:
    """Each line is within the rule's bound (2**62) but the total is not."""
    h = _licensed(TWO_HUGE_LINES)
    h.usage(DEVICE, "cam-1", "DE", {"units": 5})
    h.ok()
    receipts = h.ok(Q[0])  # the quarter ends: the close runs in this block
    stmt = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (stmt.status, stmt.total, stmt.lines, stmt.earned) == ("rule_failed", 0, (), 0)
    failed = _events(receipts, "rule_failed")
    assert failed and failed[0]["period_id"] == "2026-Q1" and "total" in failed[0]["detail"]
    assert [e["status"] for e in _events(receipts, "statement_closed")] == ["rule_failed"]
    assert h.value(k_ytd("L1", 1)) is None  # the year-to-date figures were not touched
    h.usage(DEVICE, "cam-1", "DE", {"units": 6})  # and the chain goes on: the next period
    h.ok()
    h.ok(Q[1])
    assert h.get(k_statement("L1", "2026-Q2"), Statement).status == "rule_failed"


def test_year_to_date_quantity_past_the_integer_range_is_a_failed_close() -> None:
    """Devices in two territories near the register limit: each accrual bucket fits the
    codec's integer range (two devices: 2**64 - 2), their year-to-date sum does not."""
    h = _licensed(rules.PER_UNIT)
    others = [Signer(bytes([0x52 + i]) * 32) for i in range(2)]
    for device in others:
        h.enrol("oem", device, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": MAX_REGISTER})
    h.usage(others[0], "cam-1", "DE", {"units": MAX_REGISTER})
    h.usage(others[1], "cam-1", "FR", {"units": MAX_REGISTER})
    h.ok()
    receipts = h.ok(Q[0])
    stmt = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (stmt.status, stmt.total) == ("rule_failed", 0)
    assert stmt.usage_count == 3  # the usage it could not bill is still proven by its root
    assert any("int" in e["detail"] for e in _events(receipts, "rule_failed"))
