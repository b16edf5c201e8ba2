"""The calendar agrees with Python's datetime (used only here, as an independent oracle)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from node.ledger.calendar import (
    MS_PER_DAY,
    civil_from_days,
    days_from_civil,
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
