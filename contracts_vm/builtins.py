"""The fixed builtin functions and allowed methods, as VM helpers taking the meter first.

Each helper type-checks its VM-value arguments, charges by size before doing the work,
and returns fresh VM values (enumerate/zip/items/divmod give lists, never tuples or
iterators). String helpers that would depend on the Unicode database (whitespace split,
case mapping, digit tests) are ASCII-only or require an explicit separator. Host reads
are deep-copied in; storage writes and events are buffered in the meter and only become
effects if the execution succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import money
from .errors import ContractError, HostError, LimitExceeded, OutOfGas
from .runtime import (
    LEN_MAX,
    SMALL,
    Meter,
    S,
    allocate_bytes,
    build,
    charge,
    check_int,
    iterable,
    key,
    type_name,
    walk,
)
from .schedule import DEFAULT_LIMITS
from .values import BadValue, export_value, import_value, json_size


def need_int(*xs: Any) -> None:
    for x in xs:
        if not isinstance(x, int):
            raise ContractError(f"expected int, got {type_name(x)}")


def need_str(*xs: Any) -> None:
    for x in xs:
        if type(x) is not str:
            raise ContractError(f"expected str, got {type_name(x)}")


def need(x: Any, t: type, what: str) -> None:
    if type(x) is not t:
        raise ContractError(f"{what} needs a {t.__name__}, got {type_name(x)}")


def seq_len(m: Meter, x: Any) -> int:
    n = len(iterable(m, x))
    if n > LEN_MAX:
        raise LimitExceeded("container_len", n)
    return n


# -- general builtins ---------------------------------------------------------------------


def b_len(m: Meter, x: Any) -> int:
    if type(x) not in (str, list, dict, range):
        raise ContractError(f"{type_name(x)} has no len()")
    return len(x)


def b_range(m: Meter, *args: Any) -> range:
    if not 1 <= len(args) <= 3:
        raise ContractError("range takes 1 to 3 arguments")
    need_int(*args)
    if len(args) == 3 and args[2] == 0:
        raise ContractError("range step cannot be zero")
    return range(*args)


def _minmax(m: Meter, args: tuple[Any, ...], pick: Callable[..., Any]) -> Any:
    items = iterable(m, args[0]) if len(args) == 1 else list(args)
    charge(m, seq_len(m, items))
    if not items:
        raise ContractError("min/max of an empty sequence")
    if type(items) is not range:
        walk(m, items)
    try:
        return pick(items)
    except TypeError:
        raise ContractError("min/max of values that cannot be ordered") from None


def b_min(m: Meter, *args: Any) -> Any:
    return _minmax(m, args, min)


def b_max(m: Meter, *args: Any) -> Any:
    return _minmax(m, args, max)


def b_sum(m: Meter, x: Any, start: Any = 0) -> int:
    items = iterable(m, x)
    charge(m, seq_len(m, items) * S.per_element)
    need_int(start)
    if type(items) is not range:
        need_int(*items)
    total: int = sum(items, start)
    return check_int(m, total)


def b_abs(m: Meter, x: Any) -> int:
    need_int(x)
    return check_int(m, int(abs(x)))


def b_sorted(m: Meter, x: Any, reverse: Any = False) -> list[Any]:
    n = seq_len(m, iterable(m, x))
    build(m, list, n)
    items = list(iterable(m, x))
    walk(m, items)
    charge(m, n * max(n - 1, 0).bit_length() * S.sort_factor)
    try:
        return sorted(items, reverse=bool(reverse))
    except TypeError:
        raise ContractError("sorted() of values that cannot be ordered") from None


def b_enumerate(m: Meter, x: Any, start: Any = 0) -> list[list[Any]]:
    need_int(start)
    items = iterable(m, x)
    n = seq_len(m, items)
    build(m, list, n)
    allocate_bytes(m, 80 * n)  # one [i, v] list per element
    return [[i, v] for i, v in enumerate(items, start)]


def b_zip(m: Meter, *xs: Any) -> list[list[Any]]:
    seqs = [iterable(m, x) for x in xs]
    n = min((len(s) for s in seqs), default=0)
    build(m, list, n)
    allocate_bytes(m, (64 + 8 * len(seqs)) * n)
    charge(m, n * len(seqs) * S.per_element)
    return [list(t) for t in zip(*seqs, strict=False)]


def b_list(m: Meter, x: Any = None) -> list[Any]:
    if x is None:
        return []
    items = iterable(m, x)
    build(m, list, len(items))
    return list(items)


def b_dict(m: Meter, x: Any = None) -> dict[Any, Any]:
    if x is None:
        return {}
    if type(x) is dict:
        build(m, list, len(x))
        return dict(x)
    if type(x) is list:
        build(m, list, len(x))
        out = {}
        for pair in x:
            if type(pair) is not list or len(pair) != 2:
                raise ContractError("dict() needs a list of [key, value] pairs")
            out[key(m, pair[0])] = pair[1]
        return out
    raise ContractError(f"dict() of {type_name(x)}")


def b_str(m: Meter, x: Any) -> str:
    t = type(x)
    if t is str:
        return x  # type: ignore[no-any-return]
    if (t is int and -SMALL < x < SMALL) or t is bool or x is None:
        m.gas -= 2
        if m.gas < 0:
            raise OutOfGas(-m.gas)
        return str(x)
    if t is int:
        charge(m, 2 + limbs_product(x, x) // 2)
        return str(x)  # |x| < 2**1024: at most 309 digits, below any int_max_str_digits
    raise ContractError(f"str() of a {type_name(x)} is not allowed")


def b_int(m: Meter, x: Any) -> int:
    if isinstance(x, int):
        return int(x)
    if type(x) is str:
        if not x.isascii() or len(x) > 320:
            raise ContractError("int() needs a short ASCII decimal string")
        try:
            return check_int(m, int(x, 10))
        except ValueError:
            raise ContractError("invalid literal for int()") from None
    raise ContractError(f"int() of a {type_name(x)}")


def b_bool(m: Meter, x: Any) -> bool:
    return bool(x)


def b_reversed(m: Meter, x: Any) -> list[Any]:
    items = iterable(m, x)
    build(m, list, len(items))
    return list(reversed(items))


def b_any(m: Meter, x: Any) -> bool:
    items = iterable(m, x)
    charge(m, seq_len(m, items))
    return any(items)


def b_all(m: Meter, x: Any) -> bool:
    items = iterable(m, x)
    charge(m, seq_len(m, items))
    return all(items)


def b_divmod(m: Meter, a: Any, b: Any) -> list[int]:
    need_int(a, b)
    if b == 0:
        raise ContractError("integer division by zero")
    q, r = divmod(a, b)
    return [check_int(m, q), check_int(m, r)]


def b_fail(m: Meter, message: Any) -> None:
    need_str(message)
    raise ContractError(f"fail: {message[:200]}")


# -- money and calendar -------------------------------------------------------------------


def b_mul_div(m: Meter, a: Any, b: Any, d: Any, rounding: Any) -> int:
    if type(a) is int and type(b) is int and -SMALL < a < SMALL and -SMALL < b < SMALL:
        m.gas -= S.builtin_money
        if m.gas < 0:
            raise OutOfGas(-m.gas)
        if type(d) is int and type(rounding) is str:
            return check_int(m, money.mul_div(a, b, d, rounding))
    need_int(a, b, d)
    need_str(rounding)
    charge(m, S.builtin_money + limbs_product(a, b))
    return check_int(m, money.mul_div(a, b, d, rounding))


def limbs_product(a: int, b: int) -> int:
    return (a.bit_length() // 64 + 1) * (b.bit_length() // 64 + 1)


def b_allocate(m: Meter, total: Any, weights: Any) -> list[int]:
    need_int(total)
    need(weights, list, "allocate")
    n = len(weights)
    build(m, list, n)
    charge(m, S.builtin_money + n * max(n - 1, 0).bit_length() * S.sort_factor)
    return money.allocate(total, list(weights))


def calendar(fn: Callable[..., Any]) -> Callable[..., Any]:
    def helper(m: Meter, *args: Any) -> Any:
        charge(m, S.builtin_calendar)
        for a in args:
            if not isinstance(a, int) and type(a) is not str:
                raise ContractError(f"{fn.__name__}: bad argument {type_name(a)}")
        for a in args:
            if isinstance(a, int) and not -(2**40) < a < 2**40:
                raise ContractError(f"{fn.__name__}: argument out of range")
        try:
            return fn(*args)
        except TypeError:
            raise ContractError(f"{fn.__name__}: wrong arguments") from None

    return helper


# -- host ---------------------------------------------------------------------------------


def host_read(fn: Callable[[str], object], name: str) -> object:
    """Call a Host read; any exception it raises is a node bug, never a contract outcome."""
    try:
        return fn(name)
    except Exception as exc:
        raise HostError(f"host read failed: {type(exc).__name__}") from exc


def host_value(m: Meter, v: object, per_byte: int) -> Any:
    try:
        out = import_value(v)
    except BadValue as exc:
        raise HostError(f"host returned a bad value: {exc}") from None
    charge(m, json_size(out) * per_byte)
    return out


def b_param(m: Meter, name: Any) -> Any:
    need_str(name)
    charge(m, S.host_read)
    return host_value(m, host_read(m.host.param, name), 1)


def b_aggregate(m: Meter, name: Any) -> Any:
    need_str(name)
    charge(m, S.host_read)
    return host_value(m, host_read(m.host.aggregate, name), 1)


def b_storage_get(m: Meter, k: Any) -> Any:
    need_str(k)
    charge(m, S.storage_read)
    if m.writes is not None and k in m.writes:
        v = m.writes[k]
        charge(m, json_size(v) * S.storage_read_per_byte)
        return import_value(v)
    return host_value(m, host_read(m.host.storage_get, k), S.storage_read_per_byte)


def b_storage_set(m: Meter, k: Any, v: Any) -> None:
    need_str(k)
    if len(k) > 256:
        raise ContractError("storage key longer than 256")
    out = export_value(m, v)
    charge(m, S.storage_write + (len(k) + json_size(out)) * S.storage_write_per_byte)
    if m.writes is None:
        m.writes = {}
    if k not in m.writes and len(m.writes) >= DEFAULT_LIMITS.storage_writes_max:
        raise LimitExceeded("storage_writes", len(m.writes) + 1)
    m.writes[k] = out


def b_emit(m: Meter, name: Any, payload: Any = None) -> None:
    need_str(name)
    out = export_value(m, payload)
    charge(m, S.event + (len(name) + json_size(out)) * S.event_per_byte)
    if m.events is None:
        m.events = []
    if len(m.events) >= DEFAULT_LIMITS.events_max:
        raise LimitExceeded("events", len(m.events) + 1)
    m.events.append((name, out))


BUILTIN_HELPERS: dict[str, Callable[..., Any]] = {
    "len": b_len,
    "range": b_range,
    "min": b_min,
    "max": b_max,
    "sum": b_sum,
    "abs": b_abs,
    "sorted": b_sorted,
    "enumerate": b_enumerate,
    "zip": b_zip,
    "list": b_list,
    "dict": b_dict,
    "str": b_str,
    "int": b_int,
    "bool": b_bool,
    "reversed": b_reversed,
    "any": b_any,
    "all": b_all,
    "divmod": b_divmod,
    "fail": b_fail,
    "mul_div": b_mul_div,
    "allocate": b_allocate,
    "param": b_param,
    "aggregate": b_aggregate,
    "storage_get": b_storage_get,
    "storage_set": b_storage_set,
    "emit": b_emit,
}
for _name in money.CALENDAR_HELPERS:
    BUILTIN_HELPERS[_name] = calendar(getattr(money, _name))
