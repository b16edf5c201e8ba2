"""The meter and the operator helpers that generated contract code calls.

Owns the rule that every operation whose cost grows with operand size is charged (and
checked against the hard caps) BEFORE the work is done. Contract code only ever sees VM
values (int, bool, str, None, list, dict, range); helpers reject anything else with a
ContractError whose message names VM types, never host reprs, so messages are identical
on every node. Fast paths for small ints keep the common case to one Python call.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import ContractError, LimitExceeded, OutOfGas
from .schedule import DEFAULT_LIMITS, DEFAULT_SCHEDULE

S = DEFAULT_SCHEDULE
L = DEFAULT_LIMITS
IMAX = 1 << L.int_bits_max  # every int value satisfies -IMAX < x < IMAX
SMALL = 1 << 63  # operands below this multiply without a size charge
KEY_MAX = L.dict_int_key_max
KEY_LEN_MAX = L.dict_str_key_len_max
STR_MAX = L.str_len_max
LEN_MAX = L.container_len_max


class Meter:
    """Per-execution mutable state: remaining gas, allocation, call depth, pending effects."""

    __slots__ = ("alloc", "depth", "events", "gas", "host", "writes")

    def __init__(self, gas: int, host: Any) -> None:
        self.gas = gas
        self.alloc = 0
        self.depth = 0
        self.host = host
        self.writes: dict[str, Any] | None = None  # created on first use
        self.events: list[tuple[str, Any]] | None = None


def oog(m: Meter) -> NoReturn:
    raise OutOfGas(-m.gas)


def charge(m: Meter, n: int) -> None:
    m.gas -= n
    if m.gas < 0:
        raise OutOfGas(-m.gas)


def allocate_bytes(m: Meter, n: int) -> None:
    m.alloc += n
    if m.alloc > L.alloc_bytes_max:
        raise LimitExceeded("alloc_bytes", m.alloc)


def enter(m: Meter, n: int) -> None:
    m.depth += 1
    if m.depth > L.call_depth_max:
        raise LimitExceeded("call_depth", m.depth)
    m.gas -= n
    if m.gas < 0:
        raise OutOfGas(-m.gas)


def type_name(v: object) -> str:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is str:
        return "str"
    if t is list:
        return "list"
    if t is dict:
        return "dict"
    if t is range:
        return "range"
    if v is None:
        return "None"
    return "value"


def bad_operands(op: str, a: object, b: object) -> NoReturn:
    raise ContractError(f"unsupported operands for {op}: {type_name(a)} and {type_name(b)}")


def check_int(m: Meter, r: int) -> int:
    """Cap an int result; a big one (|r| >= 2**63) is a new object: account its bytes."""
    if -SMALL < r < SMALL:
        return r
    if not -IMAX < r < IMAX:
        raise LimitExceeded("int_bits", r.bit_length())
    allocate_bytes(m, 8 * limbs(r) + 32)
    return r


def build(m: Meter, kind: type, n: int) -> None:
    """Charge and cap the building of a str (n chars) or list/dict (n elements)."""
    if kind is str:
        if n > STR_MAX:
            raise LimitExceeded("str_len", n)
        charge(m, n // 8 + 1)
        allocate_bytes(m, n)
    else:
        if n > LEN_MAX:
            raise LimitExceeded("container_len", n)
        charge(m, n * S.per_element + 1)
        allocate_bytes(m, 8 * n + 64)


def search_cost(hay: str, needle: str) -> int:
    """Substring search: CPython's fastsearch is O(n * m) in the worst case for needles
    shorter than 100 chars (two-way, linear, above that), so charge by both."""
    return len(hay) * (min(len(needle), 100) + 4) // 64 + 1


def limbs(x: int) -> int:
    return x.bit_length() // 64 + 1


# -- arithmetic ---------------------------------------------------------------------------


def add(m: Meter, a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        r = a + b
        if -SMALL < r < SMALL:
            return r
        return check_int(m, r)
    ta = type(a)
    if ta is type(b) and (ta is str or ta is list):
        build(m, ta, len(a) + len(b))
        return a + b
    if isinstance(a, int) and isinstance(b, int):
        return check_int(m, a + b)
    bad_operands("+", a, b)


def iadd(m: Meter, a: Any, b: Any) -> Any:
    """`a += b`: in place for lists (as CPython), otherwise as `a + b`."""
    if type(a) is int and type(b) is int:
        r = a + b
        if -SMALL < r < SMALL:
            return r
        return check_int(m, r)
    if type(a) is list and type(b) is list:
        build(m, list, len(a) + len(b))
        a.extend(b)
        return a
    return add(m, a, b)


def neg(m: Meter, a: Any) -> Any:
    """Unary minus (a new object for a big int)."""
    if type(a) is int and -SMALL < a < SMALL:
        return -a
    if isinstance(a, int):
        return check_int(m, -a)
    raise ContractError(f"bad operand for unary -: {type_name(a)}")


def sub(m: Meter, a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        r = a - b
        if -SMALL < r < SMALL:
            return r
        return check_int(m, r)
    if isinstance(a, int) and isinstance(b, int):
        r = a - b
        if -SMALL < r < SMALL:
            return r
        return check_int(m, r)
    bad_operands("-", a, b)


def mul(m: Meter, a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int and -SMALL < a < SMALL and -SMALL < b < SMALL:
        return a * b
    if isinstance(a, int) and isinstance(b, int):
        charge(m, limbs(a) * limbs(b) * S.limb_product)
        if a.bit_length() + b.bit_length() > L.int_bits_max + 1:
            raise LimitExceeded("int_bits", a.bit_length() + b.bit_length())
        return check_int(m, a * b)
    if isinstance(b, int) and type(a) in (str, list):
        build(m, type(a), len(a) * max(b, 0))
        return a * b
    if isinstance(a, int) and type(b) in (str, list):
        build(m, type(b), len(b) * max(a, 0))
        return a * b
    bad_operands("*", a, b)


def floordiv(m: Meter, a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if not -SMALL < a < SMALL:
            charge(m, limbs(a) * limbs(b) * S.limb_product)
        if b == 0:
            raise ContractError("integer division by zero")
        return check_int(m, a // b)
    bad_operands("//", a, b)


def mod(m: Meter, a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if not -SMALL < a < SMALL:
            charge(m, limbs(a) * limbs(b) * S.limb_product)
        if b == 0:
            raise ContractError("integer modulo by zero")
        return check_int(m, a % b)
    bad_operands("%", a, b)  # `str % x` formatting is deliberately not supported


def power(m: Meter, a: Any, b: Any) -> Any:
    if not (isinstance(a, int) and isinstance(b, int)):
        bad_operands("**", a, b)
    if b < 0:
        raise ContractError("negative exponent (no floats in the VM)")
    if a in (0, 1, -1) or b <= 1:
        return a**b
    bits = (a.bit_length() - 1) * b  # |a| >= 2**(bits(a)-1), so the result has > bits
    if bits >= L.int_bits_max:
        raise LimitExceeded("int_bits", bits)
    size = bits // 64 + 1
    charge(m, size * size * S.limb_product)
    return check_int(m, a**b)


# -- walking and comparing ----------------------------------------------------------------


def _keys_cost(d: dict[Any, Any]) -> int:
    """Comparing dicts compares their keys: charge long str keys by length too."""
    cost = 0
    for k in d:
        if type(k) is str and len(k) > 64:
            cost += len(k) // 64
    return cost


def walk(m: Meter, v: Any) -> None:
    """Charge per element (and per 64 chars of str values and keys) for an operation that
    visits all of v, before it runs; cap the nesting depth (this also stops cycles).
    Depth-first over a stack of iterators: memory proportional to depth, not width."""
    t = type(v)
    if t is not list and t is not dict:
        if t is str and len(v) > 64:
            charge(m, len(v) // 64)
        return
    cost = len(v) + 1
    if t is dict:
        cost += _keys_cost(v)
    stack = [iter(v.values() if t is dict else v)]
    while stack:
        for item in stack[-1]:
            ti = type(item)
            if ti is list or ti is dict:
                if len(stack) >= L.data_depth_max:
                    raise LimitExceeded("data_depth", len(stack) + 1)
                cost += len(item) + 1
                if ti is dict:
                    cost += _keys_cost(item)
                if cost > m.gas:
                    charge(m, cost * S.per_element)  # raises OutOfGas
                stack.append(iter(item.values() if ti is dict else item))
                break
            if ti is str and len(item) > 64:
                cost += len(item) // 64
        else:
            stack.pop()
    charge(m, cost * S.per_element)


def _plain(a: Any, b: Any) -> bool:
    ta = type(a)
    return ta is int or (ta is str and (type(b) is not str or len(a) < 256 or len(b) < 256))


def eq(m: Meter, a: Any, b: Any) -> bool:
    if not _plain(a, b):
        walk(m, a)
        walk(m, b)
    return bool(a == b)


def ne(m: Meter, a: Any, b: Any) -> bool:
    return not eq(m, a, b)


def _ordered(m: Meter, a: Any, b: Any, op: str) -> None:
    ta, tb = type(a), type(b)
    ok = (isinstance(a, int) and isinstance(b, int)) or (ta is tb and ta in (str, list))
    if not ok:
        bad_operands(op, a, b)
    if not _plain(a, b):
        walk(m, a)
        walk(m, b)


def lt(m: Meter, a: Any, b: Any) -> bool:
    if type(a) is int and type(b) is int:
        return a < b
    _ordered(m, a, b, "<")
    return bool(a < b)


def le(m: Meter, a: Any, b: Any) -> bool:
    if type(a) is int and type(b) is int:
        return a <= b
    _ordered(m, a, b, "<=")
    return bool(a <= b)


def gt(m: Meter, a: Any, b: Any) -> bool:
    if type(a) is int and type(b) is int:
        return a > b
    _ordered(m, a, b, ">")
    return bool(a > b)


def ge(m: Meter, a: Any, b: Any) -> bool:
    if type(a) is int and type(b) is int:
        return a >= b
    _ordered(m, a, b, ">=")
    return bool(a >= b)


def contains(m: Meter, a: Any, b: Any) -> bool:
    """`a in b`."""
    tb = type(b)
    if tb is dict:
        if type(a) not in (int, str, bool):
            raise ContractError(f"dict keys are str or int, not {type_name(a)}")
        return a in b
    if tb is str:
        if type(a) is not str:
            bad_operands("in", a, b)
        charge(m, search_cost(b, a))
        return a in b
    if tb is list:
        walk(m, a)
        walk(m, b)
        return a in b
    if tb is range:
        return isinstance(a, int) and a in b
    bad_operands("in", a, b)


def not_contains(m: Meter, a: Any, b: Any) -> bool:
    return not contains(m, a, b)


# -- containers ---------------------------------------------------------------------------


def key(m: Meter, k: Any) -> Any:
    t = type(k)
    if (t is str and len(k) <= KEY_LEN_MAX) or (t is int and -KEY_MAX < k < KEY_MAX):
        return k
    raise ContractError(
        f"dict keys are str (<= 256 chars) or int (|k| < 2**60), not {type_name(k)}")


def setitem(m: Meter, obj: Any, k: Any, v: Any) -> None:
    t = type(obj)
    if t is dict:
        key(m, k)
        if k not in obj:
            if len(obj) >= LEN_MAX:
                raise LimitExceeded("container_len", len(obj) + 1)
            allocate_bytes(m, 48)
        obj[k] = v
    elif t is list:
        if type(k) is not int:
            raise ContractError("list indices must be int")
        obj[k] = v
    else:
        raise ContractError(f"{type_name(obj)} does not support item assignment")


def getslice(m: Meter, obj: Any, lo: Any, hi: Any, step: Any) -> Any:
    t = type(obj)
    if t not in (str, list, range):
        raise ContractError(f"{type_name(obj)} cannot be sliced")
    for part in (lo, hi, step):
        if part is not None and not isinstance(part, int):
            raise ContractError("slice bounds must be int or None")
    if step == 0:
        raise ContractError("slice step cannot be zero")
    if t is range:
        return obj[lo:hi:step]
    n = len(range(len(obj))[lo:hi:step])
    build(m, t, n)
    return obj[lo:hi:step]


def new(m: Meter, obj: Any) -> Any:
    """A list or dict literal: account its allocation."""
    allocate_bytes(m, 64 + 16 * len(obj))
    return obj


def tick(m: Meter, n: int) -> bool:
    """One comprehension iteration: gas plus room for one more element."""
    m.gas -= n
    if m.gas < 0:
        raise OutOfGas(-m.gas)
    m.alloc += 16
    if m.alloc > L.alloc_bytes_max:
        raise LimitExceeded("alloc_bytes", m.alloc)
    return True


def checked_len(m: Meter, obj: Any) -> Any:
    if len(obj) > LEN_MAX:
        raise LimitExceeded("container_len", len(obj))
    return obj


def iterable(m: Meter, x: Any) -> Any:
    """Validate an iterable argument of a builtin and charge one walk step per element."""
    t = type(x)
    if t is dict:
        return list(x)
    if t in (list, str, range):
        return x
    raise ContractError(f"{type_name(x)} is not iterable")
