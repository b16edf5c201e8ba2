"""Money and calendar arithmetic on integers only: named roundings, exact allocation, day numbers.

These are plain pure functions (the VM exposes them as builtins, the ledger may call them
directly). Money is integer minor units; rates are integers (basis points or fractions).
Day numbers count days since 1970-01-01 in the proleptic Gregorian calendar
(civil-from-days after H. Hinnant), so rules never need datetime.
"""

from __future__ import annotations

from .errors import ContractError

# The calendar helpers contracts may call (day numbers since 1970-01-01); the validator's
# allow-list and the runtime's builtin table are both built from this one tuple.
CALENDAR_HELPERS = (
    "days_from_civil",
    "civil_from_days",
    "days_between",
    "is_leap_year",
    "days_in_month",
    "month_end",
    "quarter_end",
    "year_end",
    "period_end",
    "add_months",
)

ROUNDINGS = ("half-even", "half-up", "floor", "ceiling", "down")


def mul_div(a: int, b: int, d: int, rounding: str) -> int:
    """a * b / d rounded as named: half-even, half-up (away from zero on .5), floor,
    ceiling, down (toward zero). Exact for any integers; d must be non-zero."""
    if d == 0:
        raise ContractError("mul_div: division by zero")
    n = a * b
    if d < 0:
        n, d = -n, -d
    q, r = divmod(n, d)  # floor division, 0 <= r < d
    if r == 0 or rounding == "floor":
        if rounding not in ROUNDINGS:
            raise ContractError(f"mul_div: unknown rounding {rounding!r}")
        return q
    if rounding == "ceiling":
        return q + 1
    if rounding == "down":
        return q + 1 if n < 0 else q
    twice = 2 * r
    if rounding == "half-up":  # ties away from zero
        if twice > d or (twice == d and n >= 0):
            return q + 1
        return q
    if rounding == "half-even":
        if twice > d or (twice == d and q % 2 == 1):
            return q + 1
        return q
    raise ContractError(f"mul_div: unknown rounding {rounding!r}")


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` (>= 0) in proportion to non-negative `weights` by largest remainder.

    Each share starts at floor(total * w / W); the units left over go one each to the
    largest remainders (total * w mod W); ties go to the earlier index. Shares always sum
    exactly to `total`.
    """
    if total < 0:
        raise ContractError("allocate: total must be >= 0")
    if not weights:
        raise ContractError("allocate: no weights")
    whole = 0
    for w in weights:
        if type(w) is not int or w < 0:
            raise ContractError("allocate: weights must be non-negative integers")
        whole += w
    if whole == 0:
        raise ContractError("allocate: weights sum to zero")
    shares = []
    remainders = []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, whole)
        shares.append(q)
        remainders.append((-r, i))
    left = total - sum(shares)
    for _, i in sorted(remainders)[:left]:
        shares[i] += 1
    return shares


def is_leap_year(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_in_month(y: int, m: int) -> int:
    if not 1 <= m <= 12:
        raise ContractError("month out of range")
    if m == 2:
        return 29 if is_leap_year(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def days_from_civil(y: int, m: int, d: int) -> int:
    """Day number of the date y-m-d (1970-01-01 is 0)."""
    if not -1_000_000 <= y <= 1_000_000 or not 1 <= d <= days_in_month(y, m):
        raise ContractError("date out of range")
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(n: int) -> list[int]:
    """[year, month, day] of day number n."""
    if not -400_000_000 <= n <= 400_000_000:
        raise ContractError("day number out of range")
    z = n + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return [yoe + era * 400 + (m <= 2), m, d]


def month_end(n: int) -> int:
    y, m, _ = civil_from_days(n)
    return days_from_civil(y, m, days_in_month(y, m))


def quarter_end(n: int) -> int:
    y, m, _ = civil_from_days(n)
    qm = ((m - 1) // 3) * 3 + 3
    return days_from_civil(y, qm, days_in_month(y, qm))


def year_end(n: int) -> int:
    y = civil_from_days(n)[0]
    return days_from_civil(y, 12, 31)


def period_end(n: int, period: str) -> int:
    """Last day of the reporting period ("month", "quarter" or "year") containing n."""
    if period == "month":
        return month_end(n)
    if period == "quarter":
        return quarter_end(n)
    if period == "year":
        return year_end(n)
    raise ContractError(f"unknown period {period!r}")


def add_months(n: int, k: int) -> int:
    """Same day k months later, clamped to the month's last day (Jan 31 + 1 -> Feb 28/29)."""
    y, m, d = civil_from_days(n)
    total = y * 12 + (m - 1) + k
    ny, nm = total // 12, total % 12 + 1
    return days_from_civil(ny, nm, min(d, days_in_month(ny, nm)))


def days_between(a: int, b: int) -> int:
    """Actual days from day a to day b (b - a)."""
    return b - a
