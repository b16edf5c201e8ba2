"""Short reporting periods (calendar "min1".."hour") through the whole ledger: usage
accrues per minute, each period closes in the first block past its end, a statement due
0 days after the period end is settled in that same block, and twelve periods make the
contract year that minimum guarantees and annual caps use."""

from __future__ import annotations

from node.ledger import crypto
from node.ledger.calendar import MS_PER_MINUTE, ms_of_date
from node.ledger.model import Account, Statement, k_account, k_statement
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import MEMBERS, code_hash, deposit, terms

T0 = ms_of_date(2026, 3, 5) + 14 * 60 * MS_PER_MINUTE  # 2026-03-05 14:00 UTC
DEVICE = crypto.Signer(b"\x71" * 32)


def minute(i: int, second: int = 0) -> int:
    return T0 + i * MS_PER_MINUTE + second * 1000


def setup(**changes: object) -> Harness:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok(minute(0, 1))
    t = terms(
        h,
        "FAST",
        rules.PER_UNIT,
        {"fee_per_unit": 10},
        period="min1",
        start_ms=T0,
        payment_due_days=0,
        **changes,
    )
    assert t.rule == code_hash(rules.PER_UNIT)
    h.tx("codec", "licence.propose", {"terms": t.to_value()})
    h.ok(minute(0, 2))
    h.tx("oem", "licence.sign", {"licence_id": "FAST", "terms_hash": t.terms_hash()})
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["FAST"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok(minute(0, 3))
    deposit(h, "oem", 10_000_000, "fund")
    return h


def statement(h: Harness, i: int) -> Statement:
    pid = f"2026-03-05T14:{i:02d}"
    s = h.get(k_statement("FAST", pid), Statement)
    assert s is not None, pid
    return s


def balance(h: Harness, name: str) -> int:
    acct = h.get(k_account(h.key[name], "EUR"), Account)
    return acct.balance if acct else 0


def test_minute_periods_close_and_settle_in_the_first_block_past_their_end() -> None:
    h = setup()
    units = 0
    for i in range(3):
        units += 5 + i
        h.usage(DEVICE, "cam-1", "DE", {"units": units})
        h.ok(minute(i, 30))
        assert h.get(k_statement("FAST", f"2026-03-05T14:{i:02d}"), Statement) is None
    h.ok(minute(3, 0))  # exactly the end of 14:02: closes it
    got = [statement(h, i) for i in range(3)]
    assert [s.total for s in got] == [50, 60, 70]
    assert [s.usage_count for s in got] == [1, 1, 1]
    assert [s.due_ms for s in got] == [minute(i + 1) for i in range(3)]
    assert all(s.status == "paid" and s.paid == s.total for s in got)
    assert balance(h, "codec") == 180
    assert balance(h, "oem") == 10_000_000 - 180


def test_a_short_contract_year_of_twelve_periods_trues_up_the_minimum() -> None:
    h = setup(minimum_annual=1_000)
    units = 0
    for i in range(13):
        units += 4
        h.usage(DEVICE, "cam-1", "DE", {"units": units})
        h.ok(minute(i, 20))
        h.ok(minute(i + 1, 0))
    firsts = [statement(h, i) for i in range(12)]
    assert [s.total for s in firsts[:11]] == [40] * 11
    assert [li.label for li in firsts[11].lines] == [
        "units x fee",
        "minimum annual guarantee true-up",
    ]
    assert firsts[11].total == 1_000 - 11 * 40  # the year's 12 x 40 = 480 plus 520
    second_year = statement(h, 12)
    assert second_year.total == 40 and len(second_year.lines) == 1
    assert balance(h, "codec") == 1_000 + 40


def test_short_periods_keep_the_annual_cap_per_twelve_periods() -> None:
    h = setup(annual_cap=100)
    units = 0
    for i in range(13):
        units += 4
        h.usage(DEVICE, "cam-1", "DE", {"units": units})
        h.ok(minute(i, 20))
        h.ok(minute(i + 1, 0))
    totals = [statement(h, i).total for i in range(13)]
    assert totals == [40, 40, 20] + [0] * 9 + [40]  # capped at 100 until the 13th period
