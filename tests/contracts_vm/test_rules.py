"""The rule library reproduces the public reference figures of domain.md and handles the
edge cases: tier boundaries, zero usage, caps reached mid-period, minimum-guarantee
true-up, advance recoupment, pool remainders. Money in cents."""

from __future__ import annotations

import pytest

from contracts_vm import Status, compile, execute
from contracts_vm.rules import RULES

from .support import FakeHost

MPEG_LA = {"tiers": [[100_000, 0], [5_000_000, 20], [None, 10]], "annual_cap": 500_000_000}


def ok(rule: str, entry: str, *args: object, host: FakeHost) -> object:
    result = execute(compile(RULES[rule]), entry, list(args), 1_000_000, host)
    assert result.status is Status.OK, result.error
    host.apply(result)
    return result.value


def test_every_rule_compiles() -> None:
    for source in RULES.values():
        compile(source)


@pytest.mark.parametrize(
    ("sales", "sublicensing", "expected_cents"),
    [(120_000, 45_000, 7_740), (155_000, 22_500, 8_145), (70_000, 40_000, 5_230)],
)
def test_accord_ip_payment_reference_figures(
    sales: int, sublicensing: int, expected_cents: int
) -> None:
    host = FakeHost(params={"rate_bp": 450, "sublicense_rate_bp": 520})
    assert ok("percent_of_net_sales", "royalty", sales, sublicensing, host=host) == expected_cents


def test_mpeg_la_six_million_units_is_1_080_000_usd() -> None:
    host = FakeHost(params=MPEG_LA)
    assert ok("tiered_with_cap", "royalty", 6_000_000, 0, 0, host=host) == 108_000_000


@pytest.mark.parametrize(
    ("units", "expected"),
    [(0, 0), (100_000, 0), (100_001, 20), (5_000_000, 98_000_000), (5_000_001, 98_000_010)],
)
def test_mpeg_la_tier_boundaries(units: int, expected: int) -> None:
    assert ok("tiered_with_cap", "royalty", units, 0, 0, host=FakeHost(params=MPEG_LA)) == expected


def test_tiers_apply_to_year_to_date_volume_across_periods() -> None:
    host = FakeHost(params=MPEG_LA)
    q1 = ok("tiered_with_cap", "royalty", 3_000_000, 0, 0, host=host)
    q2 = ok("tiered_with_cap", "royalty", 3_000_000, 3_000_000, q1, host=host)
    assert q1 + q2 == 108_000_000  # the same as one period of 6M


def test_annual_cap_reached_mid_period_bills_only_up_to_the_cap() -> None:
    host = FakeHost(params=MPEG_LA)
    billed_before = 499_000_000
    result = execute(
        compile(RULES["tiered_with_cap"]),
        "royalty",
        [20_000_000, 30_000_000, billed_before],
        1_000_000,
        host,
    )
    assert result.status is Status.OK
    assert result.value == 1_000_000  # 2M USD earned, only 10,000.00 USD left under the cap
    assert [e.name for e in result.effects.events] == ["annual_cap_reached"]
    assert ok("tiered_with_cap", "royalty", 1_000, 50_000_000, 500_000_000, host=host) == 0


def test_qualcomm_capped_base() -> None:
    host = FakeHost(params={"base_cap": 50_000, "rate_bp": 325})
    assert ok("capped_base", "royalty", 80_000, 1, host=host) == 1_625  # USD 16.25
    assert ok("capped_base", "royalty", 40_000, 1, host=host) == 1_300  # below the cap
    assert ok("capped_base", "royalty", 50_000, 10, host=host) == 16_250


def test_per_unit_and_zero_usage() -> None:
    host = FakeHost(params={"fee_per_unit": 35})
    assert ok("per_unit", "royalty", 1_000, host=host) == 35_000
    assert ok("per_unit", "royalty", 0, host=host) == 0
    r = execute(compile(RULES["per_unit"]), "royalty", [-1], 100_000, host)
    assert r.status is Status.ERROR and "negative units" in r.error


def test_late_payment_interest_reference_figure() -> None:
    host = FakeHost(params={"annual_rate_bp": 800})
    due = 20_000
    assert ok("late_interest", "late_interest", 1_000_000, due, due + 30, host=host) == 6_575
    assert ok("late_interest", "late_interest", 1_000_000, due, due, host=host) == 0


def test_avanci_vehicle_early_bird_and_standard_fee() -> None:
    params = {
        "early_bird_deadline_day": 19_000,
        "early_bird_fee": 2_900,
        "standard_fee": 3_200,
        "licence_start_day": 18_000,
        "grace_days": 90,
    }
    host = FakeHost(params=params)
    assert ok("time_dependent", "royalty", 10, 18_999, 19_500, host=host) == 29_000
    assert ok("time_dependent", "royalty", 10, 19_000, 19_500, host=host) == 32_000
    assert ok("time_dependent", "royalty", 10, 18_000, 18_089, host=host) == 0  # grace
    assert ok("time_dependent", "royalty", 10, 18_000, 18_090, host=host) == 29_000


def test_avanci_smart_meter_once_per_lifetime() -> None:
    host = FakeHost(params={"fee_per_device": 300, "upfront_fee": 1_000_000})
    first = ok("one_time_device_fee", "royalty", ["m1", "m2", "m2"], host=host)
    assert first == {
        "devices_billed": 2,
        "device_fees": 600,
        "upfront": 1_000_000,
        "total": 1_000_600,
    }
    second = ok("one_time_device_fee", "royalty", ["m2", "m3"], host=host)
    assert second == {"devices_billed": 1, "device_fees": 300, "upfront": 0, "total": 300}


def test_minimum_guarantee_true_up() -> None:
    host = FakeHost(params={"minimum_annual": 10_000_000})
    short = ok("minimum_guarantee", "true_up", [1_000_000, 2_000_000, 3_000_000], host=host)
    assert short == {"earned": 6_000_000, "true_up": 4_000_000, "total": 10_000_000}
    over = ok("minimum_guarantee", "true_up", [6_000_000, 6_000_000], host=host)
    assert over == {"earned": 12_000_000, "true_up": 0, "total": 12_000_000}
    assert ok("minimum_guarantee", "true_up", [], host=host)["true_up"] == 10_000_000  # type: ignore[index]


def test_advance_recouped_against_earned_royalties() -> None:
    host = FakeHost(params={"advance": 5_000})
    assert ok("advance_recoupment", "royalty", 3_000, host=host)["payable"] == 0  # type: ignore[index]
    second = ok("advance_recoupment", "royalty", 3_000, host=host)
    assert second == {"recouped": 2_000, "payable": 1_000, "advance_remaining": 0}
    assert ok("advance_recoupment", "royalty", 700, host=host)["payable"] == 700  # type: ignore[index]


def test_territory_rates_flag_unlicensed_use_and_do_not_bill_it() -> None:
    host = FakeHost(params={"rates": {"US/auto": 100, "DE/auto": 120}})
    lines = [
        {"territory": "US", "product_class": "auto", "units": 10},
        {"territory": "DE", "product_class": "auto", "units": 5},
        {"territory": "BR", "product_class": "auto", "units": 7},
    ]
    result = execute(compile(RULES["territory_rates"]), "royalty", [lines], 100_000, host)
    assert result.status is Status.OK
    assert result.value == {"total": 1_600, "unlicensed": [lines[2]]}
    assert [(e.name, e.payload) for e in result.effects.events] == [("unlicensed_use", lines[2])]


def test_pool_apportionment_remainder_goes_to_largest_remainders() -> None:
    host = FakeHost(params={"weights": {"alpha": 1, "beta": 1, "gamma": 1}})
    shares = ok("pool_apportionment", "apportion", 100, host=host)
    assert shares == {"alpha": 34, "beta": 33, "gamma": 33}
    host = FakeHost(params={"weights": {"a": 7, "b": 2, "c": 1}})
    shares = ok("pool_apportionment", "apportion", 1_000_001, host=host)
    assert shares == {"a": 700_001, "b": 200_000, "c": 100_000}
    assert sum(shares.values()) == 1_000_001  # type: ignore[union-attr]


def test_sublicence_pass_through() -> None:
    host = FakeHost(params={"pass_through_bp": 3_333})
    assert ok("sublicence_pass_through", "pass_through", 1_000, host=host) == {
        "upstream": 333,
        "retained": 667,
    }
