"""The allowed method calls on VM values, each rewritten by codegen to `method(m, obj, *args)`.

One name may serve several types (`pop`, `index`, `count`, `copy`); the helper dispatches on
the exact VM type and raises ContractError for anything else, so `x.get` works only on a
dict and no attribute of a host object is ever reachable. keys/values/items return fresh
lists. String methods are ASCII-only where CPython would consult the Unicode database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ContractError, LimitExceeded
from .runtime import (
    LEN_MAX,
    STR_MAX,
    Meter,
    allocate_bytes,
    build,
    charge,
    key,
    search_cost,
    walk,
)
from .runtime import type_name as tn


def bad(name: str, obj: Any) -> ContractError:
    return ContractError(f"{tn(obj)} has no method {name}()")


def m_get(m: Meter, obj: Any, k: Any, default: Any = None) -> Any:
    if type(obj) is not dict:
        raise bad("get", obj)
    return obj.get(key(m, k), default)


def m_keys(m: Meter, obj: Any) -> list[Any]:
    if type(obj) is not dict:
        raise bad("keys", obj)
    build(m, list, len(obj))
    return list(obj)


def m_values(m: Meter, obj: Any) -> list[Any]:
    if type(obj) is not dict:
        raise bad("values", obj)
    build(m, list, len(obj))
    return list(obj.values())


def m_items(m: Meter, obj: Any) -> list[list[Any]]:
    if type(obj) is not dict:
        raise bad("items", obj)
    build(m, list, len(obj))
    allocate_bytes(m, 80 * len(obj))  # one [k, v] list per item
    return [[k, v] for k, v in obj.items()]


def m_pop(m: Meter, obj: Any, *args: Any) -> Any:
    if type(obj) is list and len(args) <= 1:
        if args and type(args[0]) is not int:
            raise ContractError("list.pop index must be int")
        if not obj:
            raise ContractError("pop from empty list")
        charge(m, len(obj) // 8)
        return obj.pop(*args)
    if type(obj) is dict and 1 <= len(args) <= 2:
        key(m, args[0])
        if len(args) == 1 and args[0] not in obj:
            raise ContractError("dict.pop of a missing key")
        return obj.pop(*args)
    raise bad("pop", obj)


def m_append(m: Meter, obj: Any, v: Any) -> None:
    if type(obj) is not list:
        raise bad("append", obj)
    if len(obj) >= LEN_MAX:
        raise LimitExceeded("container_len", len(obj) + 1)
    allocate_bytes(m, 16)
    obj.append(v)


def m_extend(m: Meter, obj: Any, other: Any) -> None:
    if type(obj) is not list or type(other) is not list:
        raise bad("extend", obj)
    build(m, list, len(obj) + len(other))
    obj.extend(other)


def m_insert(m: Meter, obj: Any, i: Any, v: Any) -> None:
    if type(obj) is not list or type(i) is not int:
        raise bad("insert", obj)
    if len(obj) >= LEN_MAX:
        raise LimitExceeded("container_len", len(obj) + 1)
    charge(m, len(obj) // 8 + 1)
    allocate_bytes(m, 16)
    obj.insert(i, v)


def m_index(m: Meter, obj: Any, v: Any) -> int:
    if type(obj) is list:
        walk(m, obj)
        walk(m, v)
        if v not in obj:
            raise ContractError("list.index: value not in list")
        return obj.index(v)
    if type(obj) is str and type(v) is str:
        charge(m, search_cost(obj, v))
        if v not in obj:
            raise ContractError("str.index: substring not found")
        return obj.index(v)
    raise bad("index", obj)


def m_count(m: Meter, obj: Any, v: Any) -> int:
    if type(obj) is list:
        walk(m, obj)
        walk(m, v)
        return obj.count(v)
    if type(obj) is str and type(v) is str:
        charge(m, search_cost(obj, v))
        return obj.count(v)
    raise bad("count", obj)


def m_copy(m: Meter, obj: Any) -> Any:
    if type(obj) in (list, dict):
        build(m, list, len(obj))
        return obj.copy()
    raise bad("copy", obj)


def _str_args(name: str, obj: Any, *args: Any) -> None:
    if type(obj) is not str:
        raise bad(name, obj)
    for a in args:
        if type(a) is not str:
            raise ContractError(f"str.{name}() needs str arguments, got {tn(a)}")


def m_startswith(m: Meter, obj: Any, prefix: Any) -> bool:
    _str_args("startswith", obj, prefix)
    charge(m, len(prefix) // 64)
    return obj.startswith(prefix)  # type: ignore[no-any-return]


def m_endswith(m: Meter, obj: Any, suffix: Any) -> bool:
    _str_args("endswith", obj, suffix)
    charge(m, len(suffix) // 64)
    return obj.endswith(suffix)  # type: ignore[no-any-return]


def m_find(m: Meter, obj: Any, sub: Any) -> int:
    _str_args("find", obj, sub)
    charge(m, search_cost(obj, sub))
    return obj.find(sub)  # type: ignore[no-any-return]


def m_replace(m: Meter, obj: Any, old: Any, new: Any) -> str:
    _str_args("replace", obj, old, new)
    charge(m, search_cost(obj, old))
    n = obj.count(old)
    build(m, str, len(obj) + n * (len(new) - len(old)))
    return obj.replace(old, new)  # type: ignore[no-any-return]


def m_split(m: Meter, obj: Any, sep: Any) -> list[str]:
    _str_args("split", obj, sep)
    if not sep:
        raise ContractError("str.split() needs a non-empty separator")
    charge(m, search_cost(obj, sep))
    build(m, list, obj.count(sep) + 1)
    allocate_bytes(m, len(obj))
    return obj.split(sep)  # type: ignore[no-any-return]


def m_join(m: Meter, obj: Any, items: Any) -> str:
    if type(obj) is not str or type(items) is not list:
        raise bad("join", obj)
    total = len(obj) * max(len(items) - 1, 0)
    for s in items:
        if type(s) is not str:
            raise ContractError(f"str.join() needs a list of str, got {tn(s)}")
        total += len(s)
        if total > STR_MAX:
            raise LimitExceeded("str_len", total)
    charge(m, len(items))
    build(m, str, total)
    return obj.join(items)


def m_strip(m: Meter, obj: Any, chars: Any) -> str:
    _str_args("strip", obj, chars)
    charge(m, search_cost(obj, chars))
    return obj.strip(chars)  # type: ignore[no-any-return]


def _ascii(name: str, obj: Any) -> str:
    if type(obj) is not str:
        raise bad(name, obj)
    if not obj.isascii():
        raise ContractError(f"str.{name}() is ASCII-only")
    return obj


def m_lower(m: Meter, obj: Any) -> str:
    s = _ascii("lower", obj)
    build(m, str, len(s))
    return s.lower()


def m_upper(m: Meter, obj: Any) -> str:
    s = _ascii("upper", obj)
    build(m, str, len(s))
    return s.upper()


def m_isdigit(m: Meter, obj: Any) -> bool:
    if type(obj) is not str:
        raise bad("isdigit", obj)
    charge(m, len(obj) // 64)
    return obj.isascii() and obj.isdigit()


METHOD_HELPERS: dict[str, Callable[..., Any]] = {
    name[2:]: fn for name, fn in list(globals().items()) if name.startswith("m_")
}
