"""Crossing the VM boundary: JSON-like host values in, VM values out, deterministic sizes.

Import deep-copies and validates (int within the cap, str within the cap, str dict keys,
depth <= data_depth_max), so the VM never holds a host object or an alias of one. Export
produces fresh JSON-like values (tuples never exist inside the VM; ranges cannot leave it).
`json_size` is the byte measure that storage and events are charged by.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from .errors import ContractError, LimitExceeded
from .runtime import IMAX, LEN_MAX, STR_MAX, Meter, charge, type_name
from .schedule import DEFAULT_LIMITS

Json: TypeAlias = "bool | int | str | list[Json] | dict[str, Json] | None"

DEPTH_MAX = DEFAULT_LIMITS.data_depth_max
SMALL_INT = 1 << 63


class BadValue(Exception):
    """Raised inside import_value; the caller decides what kind of error it is."""


def import_value(v: object, depth: int = 1) -> Any:
    """Deep-copy a JSON-like host value into VM values; raise BadValue if it is not one."""
    if depth > DEPTH_MAX:
        raise BadValue("value nested too deeply")
    t = type(v)
    if v is None or t is bool:
        return v
    if t is int:
        if not -IMAX < v < IMAX:  # type: ignore[operator]
            raise BadValue("integer too large")
        return v
    if t is str:
        if len(v) > STR_MAX:  # type: ignore[arg-type]
            raise BadValue("string too long")
        return v
    if t is list or t is tuple:
        if len(v) > LEN_MAX:  # type: ignore[arg-type]
            raise BadValue("list too long")
        return [import_value(x, depth + 1) for x in v]  # type: ignore[attr-defined]
    if t is dict:
        if len(v) > LEN_MAX:  # type: ignore[arg-type]
            raise BadValue("dict too long")
        out = {}
        for k, x in v.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise BadValue("dict keys must be str")
            if len(k) > DEFAULT_LIMITS.dict_str_key_len_max:
                raise BadValue("dict key too long")
            out[k] = import_value(x, depth + 1)
        return out
    raise BadValue(f"not a JSON-like value: {t.__name__}")


def import_args(args: object) -> tuple[list[Any], int]:
    """Import an argument list; return the VM values and their json_size. Flat lists of
    small scalars (the common case) take a fast path with the same result."""
    if type(args) is list:
        size = 4
        for a in args:
            t = type(a)
            if t is int and -SMALL_INT < a < SMALL_INT:
                size += 8 + (a.bit_length() + 7) // 8
            elif t is str and a.isascii() and len(a) <= STR_MAX:
                size += 4 + len(a)
            elif a is None or t is bool:
                size += 1
            else:
                break
        else:
            return list(args), size
    value = import_value(args)
    return value, json_size(value)


def export_value(m: Meter, v: Any, depth: int = 1) -> Json:
    """Copy a VM value out as JSON-like data, charging per element; ContractError if it
    is not representable (range, non-str dict key)."""
    if depth > DEPTH_MAX:
        raise LimitExceeded("data_depth", depth)
    t = type(v)
    if v is None or t is bool or t is int:
        return v  # type: ignore[no-any-return]
    if t is str:
        charge(m, len(v) // 64 + 1)
        return v  # type: ignore[no-any-return]
    if t is list:
        charge(m, len(v) + 1)
        return [export_value(m, x, depth + 1) for x in v]
    if t is dict:
        charge(m, len(v) + 1)
        out: dict[str, Json] = {}
        for k, x in v.items():
            if type(k) is not str:
                raise ContractError("only dicts with str keys can leave the VM")
            out[k] = export_value(m, x, depth + 1)
        return out
    raise ContractError(f"a {type_name(v)} cannot leave the VM")


def json_size(v: Json) -> int:
    """Deterministic byte size: 1 for None/bool, 8 + bytes for int, 4 + UTF-8 for str,
    4 + members for list/dict (a dict member is its key plus its value)."""
    if v is None or isinstance(v, bool):
        return 1
    if isinstance(v, int):
        return 8 + (v.bit_length() + 7) // 8
    if isinstance(v, str):
        return 4 + len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, list):
        return 4 + sum(json_size(x) for x in v)
    return 4 + sum(4 + len(k.encode("utf-8", "surrogatepass")) + json_size(x) for k, x in v.items())
