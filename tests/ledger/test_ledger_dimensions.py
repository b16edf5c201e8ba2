"""Pricing dimensions (territory and product class) and contract years."""

from __future__ import annotations

from node.ledger.calendar import ms_of_date
from node.ledger.model import Accrual, Licence, Statement, k_accrual, k_licence, k_statement
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import DEVICE, MEMBERS, T0, activate, terms
from tests.ledger.test_rule_library import device

# Bills what the rule sees per (territory, class) so the test can read the shape back.
ECHO_USAGE = """
def royalty(usage, period):
    out = []
    for territory in sorted(usage.keys()):
        for product_class in sorted(usage[territory].keys()):
            metrics = usage[territory][product_class]
            out.append([territory + "/" + product_class, metrics.get("units", 0)])
            out.append([territory + "/" + product_class + " new devices",
                        metrics.get("_new_devices", 0)])
    return out
"""

# Reports the contract year the ledger passes: 1000 x year + 1 at a contract-year end.
ECHO_YEAR = """
def royalty(usage, period):
    flag = 0
    if period["is_year_end"]:
        flag = 1
    return [["contract year", 1000 * period["contract_year"] + flag]]
"""


def test_usage_accrues_per_territory_and_product_class() -> None:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": ECHO_USAGE})
    h.ok()
    t = terms(
        h,
        "L1",
        ECHO_USAGE,
        {},
        skus=("cam-1", "cam-2", "hub-1"),
        product_classes={"cam-1": "camera", "cam-2": "camera"},  # hub-1 is its own class
    )
    activate(h, t, "codec", "oem")
    for sku in ("cam-1", "cam-2", "hub-1"):
        h.tx("oem", "bom.set", {"sku": sku, "licences": ["L1"]})
    for n, sku in enumerate(("cam-1", "cam-2", "hub-1")):
        h.enrol("oem", device(n), sku)
    h.ok()
    h.usage(device(0), "cam-1", "DE", {"units": 5})
    h.usage(device(1), "cam-2", "DE", {"units": 7})
    h.usage(device(2), "hub-1", "DE", {"units": 3})
    h.usage(device(1), "cam-2", "FR", {"units": 11})  # device 1 moves to FR: 4 more units
    h.ok()
    acc = h.get(k_accrual("L1", "2026-Q1"), Accrual)
    assert acc.quantities == {
        "DE": {
            "camera": {"units": 12, "_new_devices": 2},
            "hub-1": {"units": 3, "_new_devices": 1},
        },
        "FR": {"camera": {"units": 4}},
    }
    h.ok(ms_of_date(2026, 4, 1))
    s = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert [(li.label, li.amount) for li in s.lines] == [
        ("DE/camera", 12),
        ("DE/camera new devices", 2),
        ("DE/hub-1", 3),
        ("DE/hub-1 new devices", 1),
        ("FR/camera", 4),
        ("FR/camera new devices", 0),
    ]


def test_product_classes_may_only_name_licensed_skus() -> None:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    t = terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 1})
    body = t.to_value()
    body["product_classes"] = {"not-licensed": "x"}
    h.tx("codec", "licence.propose", {"terms": body})
    [r] = h.block()
    assert (r.accepted, r.code) == (False, "invalid")
    assert h.get(k_licence("L1"), Licence) is None


APRIL = ms_of_date(2026, 4, 1)
QUARTER_ENDS = [ms_of_date(y, m, 1) for y, m in ((2026, 7), (2026, 10), (2027, 1), (2027, 4))]
QUARTER_ENDS.append(ms_of_date(2027, 7, 1))
QUARTERS = ["2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1", "2027-Q2"]


def run(h: Harness, licence_id: str, source: str, params: dict, **changes: object) -> None:
    h.tx("codec", "rule.deploy", {"source": source})
    h.ok()
    activate(h, terms(h, licence_id, source, params, start_ms=APRIL, **changes), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": [licence_id]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok(APRIL)  # usage before the licence starts would be unlicensed


def totals(h: Harness, licence_id: str) -> list[int]:
    return [h.get(k_statement(licence_id, q), Statement).total for q in QUARTERS]


def test_contract_years_run_from_the_licence_start() -> None:
    h = Harness(MEMBERS, T0)
    run(h, "L1", ECHO_YEAR, {})
    for end in QUARTER_ENDS:
        h.ok(end)
    # Contract year 1 is 2026-04 .. 2027-03: it ends with 2027-Q1, not with 2026-Q4.
    assert totals(h, "L1") == [1000, 1000, 1000, 1001, 2000]


def test_minimum_guarantee_and_cap_use_the_contract_year() -> None:
    fee, units = 10, [1_000, 0, 2_000, 1_000, 1_000]
    h = Harness(MEMBERS, T0)
    run(h, "MG", rules.PER_UNIT, {"fee_per_unit": fee}, minimum_annual=100_000)
    register = 0
    for end, n in zip(QUARTER_ENDS, units, strict=True):
        register += n
        h.usage(DEVICE, "cam-1", "DE", {"units": register})
        h.ok()
        h.ok(end)
    earned = [fee * n for n in units]
    year_one = sum(earned[:4])
    assert totals(h, "MG") == [*earned[:3], earned[3] + 100_000 - year_one, earned[4]]
    q4 = h.get(k_statement("MG", "2026-Q4"), Statement)
    assert [li.label for li in q4.lines] == ["units x fee"]  # no true-up at calendar end

    h2 = Harness(MEMBERS, T0)
    cap = 35_000
    run(h2, "CAP", rules.PER_UNIT, {"fee_per_unit": fee}, annual_cap=cap)
    register = 0
    for end, n in zip(QUARTER_ENDS, units, strict=True):
        register += n
        h2.usage(DEVICE, "cam-1", "DE", {"units": register})
        h2.ok()
        h2.ok(end)
    # The cap spans the calendar year end (Q4 2026 and Q1 2027 are one contract year)
    # and resets for contract year 2.
    billed, room = [], cap
    for n in earned[:4]:
        billed.append(min(n, room))
        room -= billed[-1]
    assert totals(h2, "CAP") == [*billed, earned[4]] == [10_000, 0, 20_000, 5_000, 10_000]
