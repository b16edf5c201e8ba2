"""The calendar agrees with Python's datetime (used only here, as an independent oracle)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger.calendar import (
    MS_PER_DAY,
    ContractYear,
    civil_from_days,
    contract_year,
    days_from_civil,
    ms_of_date,
    next_period,
    period_of,
)

EPOCH = dt.date(1970, 1, 1)


@given(st.dates(min_value=dt.date(1600, 1, 1), max_value=dt.date(2600, 12, 31)))
def test_day_numbers_match_datetime(date: dt.date) -> None:
    days = (date - EPOCH).days
    assert days_from_civil(date.year, date.month, date.day) == days
    assert civil_from_days(days) == (date.year, date.month, date.day)


def test_periods_of_an_instant() -> None:
    ms = days_from_civil(2024, 2, 29) * MS_PER_DAY + 5
    q = period_of("quarter", ms)
    assert (q.period_id, q.start_ms, q.end_ms) == (
        "2024-Q1",
        days_from_civil(2024, 1, 1) * MS_PER_DAY,
        days_from_civil(2024, 4, 1) * MS_PER_DAY,
    )
    assert period_of("month", ms).period_id == "2024-02"
    december = period_of("month", days_from_civil(2024, 12, 31) * MS_PER_DAY)
    assert december.end_ms == days_from_civil(2025, 1, 1) * MS_PER_DAY and december.is_year_end
    assert period_of("year", ms).period_id == "2024" and period_of("year", ms).is_year_end
    assert next_period(q).period_id == "2024-Q2" and not q.is_year_end
    assert next_period(period_of("quarter", december.start_ms)).period_id == "2025-Q1"


def test_period_boundaries_are_half_open() -> None:
    start = days_from_civil(2025, 4, 1) * MS_PER_DAY
    assert period_of("quarter", start - 1).period_id == "2025-Q1"
    assert period_of("quarter", start).period_id == "2025-Q2"


# -- short periods (demonstrations and tests) -------------------------------------------------


@given(
    st.sampled_from(["min1", "min5", "min15", "hour"]),
    st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2400, 12, 31)),
)
def test_short_periods_match_datetime(kind: str, when: dt.datetime) -> None:
    minutes = {"min1": 1, "min5": 5, "min15": 15, "hour": 60}[kind]
    ms = int((when - dt.datetime(1970, 1, 1)) / dt.timedelta(milliseconds=1))
    p = period_of(kind, ms)
    start = when.replace(second=0, microsecond=0) - dt.timedelta(
        minutes=(when.hour * 60 + when.minute) % minutes
    )
    assert p.period_id == start.strftime("%Y-%m-%dT%H:%M")
    assert p.start_ms <= ms < p.end_ms and p.end_ms - p.start_ms == minutes * 60_000
    assert p.year == start.year
    assert next_period(p).start_ms == p.end_ms
    assert period_of(kind, p.end_ms - 1) == p and period_of(kind, p.start_ms) == p


def test_short_period_ids_sort_like_time_and_mark_calendar_year_ends() -> None:
    ms = days_from_civil(2025, 12, 31) * MS_PER_DAY + (23 * 60 + 58) * 60_000
    p = period_of("min1", ms)
    q = next_period(p)
    r = next_period(q)
    assert [p.period_id, q.period_id, r.period_id] == [
        "2025-12-31T23:58",
        "2025-12-31T23:59",
        "2026-01-01T00:00",
    ]
    assert p.period_id < q.period_id < r.period_id
    assert (p.is_year_end, q.is_year_end, r.is_year_end) == (False, True, False)
    assert period_of("hour", ms).period_id == "2025-12-31T23:00"


def test_unknown_period_kind_is_refused() -> None:
    for kind in ("min2", "minute", "", "Month"):
        with pytest.raises(ValueError):
            period_of(kind, 0)


def test_a_short_contract_year_is_twelve_periods() -> None:
    anchor = period_of("min5", ms_of_date(2026, 3, 1) + 7 * 60_000)  # 00:05
    p = anchor
    years = []
    for _ in range(25):
        y = contract_year(anchor.start_ms, p)
        years.append((y.number, y.is_year_end))
        p = next_period(p)
    assert years[:12] == [(1, False)] * 11 + [(1, True)]
    assert years[12:24] == [(2, False)] * 11 + [(2, True)]
    assert years[24] == (3, False)
    with pytest.raises(ValueError):
        contract_year(anchor.start_ms, period_of("min5", anchor.start_ms - 1))


def test_calendar_contract_years_are_unchanged() -> None:
    anchor = ms_of_date(2026, 4, 1)
    march = period_of("month", ms_of_date(2027, 3, 10))
    assert contract_year(anchor, march) == ContractYear(1, True)
    q = period_of("quarter", ms_of_date(2027, 4, 2))
    assert contract_year(anchor, q) == ContractYear(2, False)
