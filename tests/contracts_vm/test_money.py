"""Money and calendar builtins: named roundings, largest-remainder allocation (shares sum
to the total, documented tie-break), day-number calendar against the proleptic Gregorian
calendar."""

from __future__ import annotations

import datetime
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts_vm import ContractError, Status, allocate, mul_div
from contracts_vm.money import (
    add_months,
    civil_from_days,
    days_from_civil,
    month_end,
    period_end,
    quarter_end,
    year_end,
)

from .support import run

EPOCH = datetime.date(1970, 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # value = n / 10; columns: half-even, half-up, floor, ceiling, down
        (25, (2, 3, 2, 3, 2)),
        (35, (4, 4, 3, 4, 3)),
        (-25, (-2, -3, -3, -2, -2)),
        (-35, (-4, -4, -4, -3, -3)),
        (24, (2, 2, 2, 3, 2)),
        (-26, (-3, -3, -3, -2, -2)),
        (30, (3, 3, 3, 3, 3)),
    ],
)
def test_named_roundings(value: int, expected: tuple[int, ...]) -> None:
    modes = ("half-even", "half-up", "floor", "ceiling", "down")
    assert tuple(mul_div(value, 1, 10, mode) for mode in modes) == expected
    assert tuple(mul_div(-value, 1, -10, mode) for mode in modes) == expected


def test_unknown_rounding_and_zero_divisor_are_contract_errors() -> None:
    with pytest.raises(ContractError):
        mul_div(1, 1, 3, "banker")
    with pytest.raises(ContractError):
        mul_div(1, 1, 0, "floor")
    result = run("def f():\n    return mul_div(1, 2, 3, 'nearest')\n", "f")
    assert result.status is Status.ERROR and "unknown rounding" in result.error


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**30, 10**30), st.integers(-10**6, 10**6),
       st.integers(-10**9, 10**9).filter(bool))
def test_mul_div_matches_exact_fractions(a: int, b: int, d: int) -> None:
    exact = Fraction(a * b, d)
    floor = exact.numerator // exact.denominator
    assert mul_div(a, b, d, "floor") == floor
    ceiling = -((-exact.numerator) // exact.denominator)
    assert mul_div(a, b, d, "ceiling") == ceiling
    assert mul_div(a, b, d, "down") == (floor if exact >= 0 else ceiling)
    assert mul_div(a, b, d, "half-even") == round(exact)  # Fraction rounds half to even
    half_up = mul_div(a, b, d, "half-up")
    assert abs(exact - half_up) <= Fraction(1, 2)
    if abs(exact - half_up) == Fraction(1, 2):
        assert abs(half_up) > abs(exact)


def test_allocate_tie_break_goes_to_the_earlier_index() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(5, [0, 1, 0, 1]) == [0, 3, 0, 2]
    assert allocate(0, [3, 4]) == [0, 0]
    assert allocate(10, [1, 2]) == [3, 7]  # remainders 1/3 < 2/3: the larger one wins


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**15), st.lists(st.integers(0, 10**6), min_size=1, max_size=20)
       .filter(lambda ws: sum(ws) > 0))
def test_allocate_sums_to_total_and_is_within_one_unit(total: int, weights: list[int]) -> None:
    shares = allocate(total, weights)
    assert sum(shares) == total
    whole = sum(weights)
    for share, w in zip(shares, weights, strict=True):
        assert total * w // whole <= share <= total * w // whole + 1
        if w == 0:
            assert share == 0


def test_allocate_rejects_bad_inputs() -> None:
    for total, weights in ((-1, [1]), (1, []), (1, [0, 0]), (1, [-1, 2])):
        with pytest.raises(ContractError):
            allocate(total, weights)


@settings(max_examples=300, deadline=None)
@given(st.dates())
def test_calendar_matches_proleptic_gregorian(day: datetime.date) -> None:
    n = (day - EPOCH).days
    assert days_from_civil(day.year, day.month, day.day) == n
    assert civil_from_days(n) == [day.year, day.month, day.day]
    nxt_month = (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    assert month_end(n) == (nxt_month - EPOCH).days - 1
    if day.year < 9999:
        assert year_end(n) == (datetime.date(day.year + 1, 1, 1) - EPOCH).days - 1
    assert period_end(n, "month") == month_end(n)
    assert quarter_end(n) >= month_end(n)


def test_calendar_edge_cases() -> None:
    assert days_from_civil(1970, 1, 1) == 0
    assert civil_from_days(days_from_civil(2024, 2, 29)) == [2024, 2, 29]
    assert add_months(days_from_civil(2024, 1, 31), 1) == days_from_civil(2024, 2, 29)
    assert add_months(days_from_civil(2023, 1, 31), 1) == days_from_civil(2023, 2, 28)
    assert add_months(days_from_civil(2023, 11, 15), 3) == days_from_civil(2024, 2, 15)
    assert quarter_end(days_from_civil(2024, 5, 3)) == days_from_civil(2024, 6, 30)
    assert quarter_end(days_from_civil(2024, 12, 31)) == days_from_civil(2024, 12, 31)
    with pytest.raises(ContractError):
        days_from_civil(2023, 2, 29)
    with pytest.raises(ContractError):
        period_end(0, "fortnight")


def test_calendar_builtins_inside_the_vm() -> None:
    source = (
        "def f():\n    due = period_end(days_from_civil(2024, 2, 10), 'quarter') + 30\n"
        "    return [civil_from_days(due), days_between(due, due + 30), is_leap_year(2100),"
        " days_in_month(2024, 2)]\n"
    )
    assert run(source, "f").value == [[2024, 4, 30], 30, False, 29]
