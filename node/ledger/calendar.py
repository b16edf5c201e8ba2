"""Deterministic UTC calendar on day numbers and milliseconds (no datetime, no clock).

Rule kept here: every replica maps a block timestamp to the same reporting period.
Day numbers count days since 1970-01-01 (the proleptic Gregorian calendar), converted with
Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms. Periods are calendar
months, quarters or years in UTC, identified as "2026-03", "2026-Q1" or "2026", or short
fixed-length periods for demonstrations and tests ("hour", "min15", "min5", "min1"),
aligned to the Unix epoch and identified by their UTC start, "2026-03-05T14:05".

A contract year is twelve months; for a short kind it is twelve periods (one period
stands in for a month), so caps and minimum guarantees work on a compressed calendar:
a "min1" licence's contract year is twelve minutes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000
CALENDAR_KINDS = ("month", "quarter", "year")
SHORT_PERIOD_MS = {
    "hour": 60 * MS_PER_MINUTE,
    "min15": 15 * MS_PER_MINUTE,
    "min5": 5 * MS_PER_MINUTE,
    "min1": MS_PER_MINUTE,
}
PERIOD_KINDS = CALENDAR_KINDS + tuple(SHORT_PERIOD_MS)
UNITS_PER_CONTRACT_YEAR = 12  # months, or periods of a short kind


def days_from_civil(year: int, month: int, day: int) -> int:
    y = year - (month <= 2)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def ms_of_date(year: int, month: int, day: int) -> int:
    return days_from_civil(year, month, day) * MS_PER_DAY


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period [start_ms, end_ms) and the contract year it belongs to."""

    kind: str
    period_id: str
    year: int
    start_ms: int
    end_ms: int

    @property
    def is_year_end(self) -> bool:
        """The period ends a calendar year (it ends at 1 January, 00:00 UTC)."""
        _, month, day = civil_from_days(self.end_ms // MS_PER_DAY)
        return self.end_ms % MS_PER_DAY == 0 and (month, day) == (1, 1)


@functools.lru_cache(maxsize=256)  # a pure function of its arguments; every usage report
def period_of(kind: str, ms: int) -> Period:  # asks it for its block's time
    """The period of `kind` that contains the instant `ms`."""
    if kind in SHORT_PERIOD_MS:
        return _short_period(kind, ms)
    year, month, _ = civil_from_days(ms // MS_PER_DAY)
    if kind == "month":
        first, months, label = month, 1, f"{year:04d}-{month:02d}"
    elif kind == "quarter":
        q = (month - 1) // 3
        first, months, label = 3 * q + 1, 3, f"{year:04d}-Q{q + 1}"
    elif kind == "year":
        first, months, label = 1, 12, f"{year:04d}"
    else:
        raise ValueError(f"unknown period kind {kind!r}")
    end_year, end_month = year + (first - 1 + months) // 12, (first - 1 + months) % 12 + 1
    return Period(kind, label, year, ms_of_date(year, first, 1), ms_of_date(end_year, end_month, 1))


def _short_period(kind: str, ms: int) -> Period:
    length = SHORT_PERIOD_MS[kind]
    start = ms - ms % length
    days, in_day = divmod(start, MS_PER_DAY)
    year, month, day = civil_from_days(days)
    hour, minute = divmod(in_day // MS_PER_MINUTE, 60)
    label = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
    return Period(kind, label, year, start, start + length)


def next_period(period: Period) -> Period:
    return period_of(period.kind, period.end_ms)


def month_index(ms: int) -> int:
    """Months since 1970-01 of the month containing `ms`."""
    year, month, _ = civil_from_days(ms // MS_PER_DAY)
    return 12 * year + month - 1


def year_unit_index(kind: str, ms: int) -> int:
    """The index of the contract-year unit containing `ms`: months since 1970-01 for the
    calendar kinds, periods since the epoch for the short kinds."""
    if kind in SHORT_PERIOD_MS:
        return ms // SHORT_PERIOD_MS[kind]
    return month_index(ms)


@dataclass(frozen=True, slots=True)
class ContractYear:
    """Which contract year (1, 2, ...) a period falls in, and whether it ends that year.

    Contract years run twelve months from the start of the licence's first reporting
    period (`anchor_ms`, a period start); period boundaries of one kind are month starts
    twelve months apart, so a period never straddles two contract years. A licence that
    starts on 1 January has calendar years as contract years. For a short kind, twelve
    periods make a contract year.
    """

    number: int
    is_year_end: bool


def contract_year(anchor_ms: int, period: Period) -> ContractYear:
    anchor = year_unit_index(period.kind, anchor_ms)
    start = year_unit_index(period.kind, period.start_ms) - anchor
    end = year_unit_index(period.kind, period.end_ms) - anchor
    if start < 0:
        raise ValueError("period before the licence's first period")
    units = UNITS_PER_CONTRACT_YEAR
    return ContractYear(start // units + 1, end % units == 0)
