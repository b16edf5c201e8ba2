"""Every rule of the VM's library, deployed through the ledger (`rule.deploy`) in the
ledger's convention (contracts_vm.rules.LEDGER_RULES), reproduces domain.md's public
reference figures on statements. Expected figures are computed here with plain integer
and Fraction arithmetic, not with the VM or the ledger."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from contracts_vm.rules import LEDGER_RULES, NATIVE_TERMS, RULES
from node.ledger import crypto
from node.ledger.calendar import MS_PER_DAY, ms_of_date
from node.ledger.model import LicenceTerms, Statement, k_statement
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import T0, activate, terms

MEMBERS = {"codec": ("licensor",), "oem": ("licensee",), "bank": ("bank",)}
Q_END = [ms_of_date(2026, m, 1) for m in (4, 7, 10)] + [ms_of_date(2027, 1, 1)]
DAY0 = T0 // MS_PER_DAY


def half_even(x: Fraction) -> int:
    return round(x)


def device(n: int) -> crypto.Signer:
    return crypto.Signer(bytes([0x70 + n]) * 32)


def deploy(h: Harness, rule: str) -> bytes:
    h.tx("codec", "rule.deploy", {"source": LEDGER_RULES[rule]})
    [receipt] = h.ok()
    [event] = receipt.events
    code_hash: bytes = event.attrs["code_hash"]
    assert code_hash == crypto.sha256(LEDGER_RULES[rule].encode())
    return code_hash


def licence(
    h: Harness, rule: str, licence_id: str, params: dict[str, Any], **changes: Any
) -> LicenceTerms:
    deploy(h, rule)
    t = terms(
        h,
        licence_id,
        LEDGER_RULES[rule],
        params,
        licensor=h.key["codec"],
        currency="USD",
        **changes,
    )
    activate(h, t, "codec", "oem")
    return t


def setup(h: Harness, skus: dict[str, list[str]], devices: dict[int, str]) -> None:
    """Bill of IP (sku -> licences) and enrolled devices (index -> sku)."""
    for sku, licences in skus.items():
        h.tx("oem", "bom.set", {"sku": sku, "licences": licences})
    for n, sku in devices.items():
        h.enrol("oem", device(n), sku)
    h.ok()


def stmt(h: Harness, licence_id: str, period: str) -> Statement:
    s: Statement = h.get(k_statement(licence_id, period), Statement)
    return s


def quarter_totals(h: Harness, licence_id: str, quarters: int = 4) -> list[int]:
    return [stmt(h, licence_id, f"2026-Q{q}").total for q in range(1, quarters + 1)]


def test_every_library_rule_has_a_ledger_entry_or_is_a_native_term() -> None:
    assert set(LEDGER_RULES) | set(NATIVE_TERMS) == set(RULES)
    assert not set(LEDGER_RULES) & set(NATIVE_TERMS)
    for name, source in LEDGER_RULES.items():
        if name != "one_time_device_fee":  # the library text is reused, entry renamed
            assert RULES[name].replace("def royalty(", "def library_royalty(") in source


def test_per_unit_avanci_5g_vehicle_usd_32() -> None:
    h = Harness(MEMBERS, T0)
    licence(h, "per_unit", "AVX", {"fee_per_unit": 3_200})
    setup(h, {"cam-1": ["AVX"]}, {0: "cam-1", 1: "cam-1"})
    h.usage(device(0), "cam-1", "DE", {"units": 600})
    h.usage(device(1), "cam-1", "FR", {"units": 400})
    h.ok()
    h.ok(Q_END[0])
    s = stmt(h, "AVX", "2026-Q1")
    assert [(li.label, li.amount) for li in s.lines] == [("units x fee", 1_000 * 3_200)]
    assert s.total == 3_200_000  # 1,000 vehicles x USD 32 = USD 32,000.00


def test_percent_of_net_sales_accord_ip_payment_vectors() -> None:
    """4.5% of net sales + 5.2% of sublicensing revenue: 77.40, 81.45, 52.30."""
    h = Harness(MEMBERS, T0)
    licence(h, "percent_of_net_sales", "ACC", {"rate_bp": 450, "sublicense_rate_bp": 520})
    setup(h, {"cam-1": ["ACC"]}, {0: "cam-1"})
    vectors = [(120_000, 45_000), (155_000, 22_500), (70_000, 40_000)]
    sales = sub = 0
    for q, (s, r) in enumerate(vectors):
        sales, sub = sales + s, sub + r
        h.usage(device(0), "cam-1", "DE", {"net_sales": sales, "sublicensing_revenue": sub})
        h.ok()
        h.ok(Q_END[q])
    want = [
        half_even(Fraction(s * 45, 1000)) + half_even(Fraction(r * 52, 1000)) for s, r in vectors
    ]
    assert want == [7_740, 8_145, 5_230]
    assert quarter_totals(h, "ACC", 3) == want


def mpeg_la_cost(n: int) -> int:
    """First 100,000 units a year free, USD 0.20 up to 5M, USD 0.10 above (cents)."""
    return 20 * max(0, min(n, 5_000_000) - 100_000) + 10 * max(0, n - 5_000_000)


@pytest.mark.parametrize("cap", [None, 50_000_000])
def test_tiered_mpeg_la_six_million_units_and_annual_cap(cap: int | None) -> None:
    h = Harness(MEMBERS, T0)
    tiers = [[100_000, 0], [5_000_000, 20], [None, 10]]
    licence(h, "tiered_with_cap", "AVC", {"tiers": tiers, "annual_cap": cap})
    setup(h, {"cam-1": ["AVC"]}, {0: "cam-1"})
    per_quarter = [1_000_000, 2_000_000, 2_500_000, 500_000]
    register = 0
    for q, units in enumerate(per_quarter):
        register += units
        h.usage(device(0), "cam-1", "DE", {"units": register})
        h.ok()
        h.ok(Q_END[q])
    cumulative = [sum(per_quarter[: q + 1]) for q in range(4)]
    earned = [mpeg_la_cost(c) for c in cumulative]
    limit = cap if cap is not None else 2**62
    billed = [min(e, limit) for e in earned]
    want = [b - a for a, b in zip([0, *billed[:-1]], billed, strict=True)]
    assert quarter_totals(h, "AVC") == want
    if cap is None:
        assert sum(want) == 108_000_000  # 6,000,000 units -> USD 1,080,000.00
    else:
        assert sum(want) == cap and want[2:] == [0, 0]


def test_capped_base_qualcomm_by_product_class() -> None:
    """3.25% of the device price with the base capped at USD 500 -> at most USD 16.25."""
    h = Harness(MEMBERS, T0)
    params = {
        "rate_bp": 325,
        "base_cap": 50_000,
        "unit_prices": {"premium": 80_000, "basic": 40_000},
    }
    licence(
        h,
        "capped_base",
        "QC",
        params,
        skus=("phone-x", "phone-s"),
        product_classes={"phone-x": "premium", "phone-s": "basic"},
    )
    setup(h, {"phone-x": ["QC"], "phone-s": ["QC"]}, {0: "phone-x", 1: "phone-s"})
    h.usage(device(0), "phone-x", "DE", {"units": 10})
    h.usage(device(1), "phone-s", "FR", {"units": 4})
    h.ok()
    h.ok(Q_END[0])
    premium = half_even(Fraction(min(80_000, 50_000) * 325, 10_000))
    basic = half_even(Fraction(min(40_000, 50_000) * 325, 10_000))
    assert (premium, basic) == (1_625, 1_300)  # USD 16.25 is the most per device
    assert stmt(h, "QC", "2026-Q1").total == 10 * premium + 4 * basic


def test_time_dependent_avanci_early_bird_and_grace_period() -> None:
    """USD 29 per vehicle if signed before the deadline, USD 32 otherwise; 90-day grace."""
    h = Harness(MEMBERS, T0)
    base = {
        "early_bird_deadline_day": DAY0 + 30,
        "early_bird_fee": 2_900,
        "standard_fee": 3_200,
        "licence_start_day": DAY0,
        "grace_days": 90,
    }
    deploy(h, "time_dependent")
    for licence_id, signed in (("EARLY", DAY0 + 10), ("LATE", DAY0 + 45)):
        t = terms(
            h,
            licence_id,
            LEDGER_RULES["time_dependent"],
            {**base, "signed_day": signed},
            licensor=h.key["codec"],
            currency="USD",
        )
        activate(h, t, "codec", "oem")
    setup(h, {"cam-1": ["EARLY", "LATE"]}, {0: "cam-1"})  # stacked: both accrue
    h.usage(device(0), "cam-1", "DE", {"units": 100})
    h.ok()
    h.ok(Q_END[0])
    h.usage(device(0), "cam-1", "DE", {"units": 350})
    h.ok()
    h.ok(Q_END[1])
    assert Q_END[0] // MS_PER_DAY - DAY0 == 90  # Q2 starts when the grace period ends
    assert quarter_totals(h, "EARLY", 2) == [0, 250 * 2_900]
    assert quarter_totals(h, "LATE", 2) == [0, 250 * 3_200]


def test_territory_and_product_class_rates_flag_unrated_use() -> None:
    h = Harness(MEMBERS, T0)
    licence(
        h,
        "territory_rates",
        "TR",
        {"rates": {"DE/auto": 120, "US/auto": 100, "DE/truck": 300}},
        skus=("car-1", "lorry-9"),
        product_classes={"car-1": "auto", "lorry-9": "truck"},
        territories=("DE", "FR", "US"),
    )
    setup(h, {"car-1": ["TR"], "lorry-9": ["TR"]}, {0: "car-1", 1: "lorry-9"})
    for territory, register in (("DE", 5), ("US", 15), ("FR", 22)):
        h.usage(device(0), "car-1", territory, {"units": register})
    h.usage(device(1), "lorry-9", "DE", {"units": 2})
    h.ok()
    h.ok(Q_END[0])
    s = stmt(h, "TR", "2026-Q1")
    assert s.total == 5 * 120 + 10 * 100 + 2 * 300
    assert [(li.label, li.amount) for li in s.lines][1] == (
        "unlicensed, not billed: 7 units FR/auto",
        0,
    )


def test_one_time_device_fee_avanci_smart_meter_once_per_lifetime() -> None:
    """USD 3 per meter, once for the meter's lifetime, plus the upfront fee (native term)."""
    h = Harness(MEMBERS, T0)
    licence(h, "one_time_device_fee", "METER", {"fee_per_device": 300}, upfront_fee=1_000_000)
    setup(h, {"cam-1": ["METER"]}, {n: "cam-1" for n in range(3)})
    reports = [[0, 1, 0, 1], [1, 2, 2]]  # device indices reporting in Q1, then Q2
    seen: set[int] = set()
    want = []
    for q, devices in enumerate(reports):
        for i, n in enumerate(devices):
            h.usage(device(n), "cam-1", "DE", {"units": 10 * (q + 1) + i})
        h.ok()
        h.ok(Q_END[q])
        new = set(devices) - seen
        seen |= new
        want.append(300 * len(new) + (1_000_000 if q == 0 else 0))
    assert quarter_totals(h, "METER", 2) == want == [1_000_600, 300]


def test_native_late_interest_reference_figure() -> None:
    """10,000.00 paid 30 days late at 8% a year, actual/365 -> 65.75."""
    h = Harness(MEMBERS, T0)
    licence(h, "per_unit", "LATE", {"fee_per_unit": 1_000_000})
    setup(h, {"cam-1": ["LATE"]}, {0: "cam-1"})
    h.usage(device(0), "cam-1", "DE", {"units": 1})
    h.ok()
    h.ok(Q_END[0])
    s = stmt(h, "LATE", "2026-Q1")
    h.ok(s.due_ms)  # due; nothing to pay it with
    h.tx("oem", "account.deposit", deposit_body("late", 2_000_000))
    h.ok(s.due_ms + 30 * MS_PER_DAY - 1_000)
    h.tx("bank", "account.ack_deposit", {"deposit_id": "late"})
    h.ok(s.due_ms + 30 * MS_PER_DAY)
    s = stmt(h, "LATE", "2026-Q1")
    want = half_even(Fraction(1_000_000 * 800 * 30, 10_000 * 365))
    assert want == 6_575
    assert (s.status, s.paid, s.interest_paid) == ("paid", 1_000_000, want)


def deposit_body(deposit_id: str, amount: int) -> dict[str, Any]:
    return {
        "deposit_id": deposit_id,
        "currency": "USD",
        "amount": amount,
        "reference": "",
        "counterparty": b"",
    }
