"""Differential tests (Hypothesis): legitimate programs give the same value in the VM as in
plain CPython, and a native exception corresponds to a VM ERROR. Tuples produced natively
are compared as lists (the VM has none)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts_vm import Status, allocate, compile, execute, mul_div

from .support import FakeHost

HOST = FakeHost()


def normal(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [normal(x) for x in v]
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    return v


def native(source: str, entry: str, args: list[Any]) -> tuple[bool, Any]:
    ns: dict[str, Any] = {"mul_div": mul_div, "allocate": allocate}
    exec(source, ns)
    try:
        return True, normal(ns[entry](*args))
    except (ArithmeticError, LookupError, TypeError, ValueError):
        return False, None


def agree(source: str, entry: str, args: list[Any]) -> None:
    ok, expected = native(source, entry, [normal(a) for a in args])
    result = execute(compile(source), entry, args, 5_000_000, HOST)
    if ok:
        assert result.status is Status.OK, result.error
        assert result.value == expected
        assert type(result.value) is type(expected)
    else:
        assert result.status is Status.ERROR, result


def expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(["a", "b", "c"]),
        st.integers(-1000, 1000).map(str),
        st.sampled_from(["True", "False"]),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})")
        compare = st.tuples(inner, st.sampled_from(["<", "<=", "==", "!=", ">", ">="]),
                            inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        boolean = st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})")
        calls = st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})")
        unary = st.tuples(st.sampled_from(["-", "not ", "abs"]), inner).map(
            lambda t: f"({t[0]}({t[1]}))")
        cond = st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})")
        power = st.tuples(inner, st.integers(0, 3)).map(lambda t: f"({t[0]} ** {t[1]})")
        return st.one_of(binary, compare, boolean, calls, unary, cond, power)

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(expressions(), st.integers(-10**6, 10**6), st.integers(-10**6, 10**6),
       st.integers(-50, 50))
def test_integer_expressions(expr: str, a: int, b: int, c: int) -> None:
    agree(f"def f(a, b, c):\n    return {expr}\n", "f", [a, b, c])


LISTS = '''
def f(xs, i, j):
    ys = sorted(xs)
    evens = [x * 2 for x in xs if x % 3 == 0]
    pairs = [[k, v] for k, v in enumerate(xs) if k < j]
    acc = []
    for x in xs:
        if x < 0:
            continue
        if x > 900:
            break
        acc.append(x)
    total = 0
    n = len(xs)
    while n > 0:
        n -= 1
        total += xs[n] * n
    zs = xs[:]
    zs += [i, j]
    zs.extend(acc)
    return [ys[i:j], ys[::-1], xs[i::2], evens, pairs, acc, total, sum(xs), len(xs),
            min(xs + [i]), max(xs + [j]), list(reversed(xs)), zip(xs, ys), any(xs),
            all(xs), xs.count(i), i in xs, zs, sorted(xs, reverse=True), divmod(total, 7),
            xs[i] if -len(xs) <= i < len(xs) else None]
'''


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-1000, 1000), max_size=30), st.integers(-35, 35),
       st.integers(-35, 35))
def test_list_programs(xs: list[int], i: int, j: int) -> None:
    agree(LISTS.replace("zip(xs, ys)", "list(zip(xs, ys))"), "f", [xs, i, j])


STRINGS = '''
def f(s, t):
    parts = s.split(",")
    return [s + t, s.replace("a", t), parts, "-".join(parts), s.find(t), s.startswith(t),
            s.endswith(t), s.strip("ab"), s.upper(), s.lower(), s * 2, s[1:3], t in s,
            s.count("a"), len(s), s < t, s == t, str(len(s)) + t, s.isdigit(),
            int(s) if s.isdigit() else -1, [c for c in s if c != ","], sorted(s),
            s.index(t) if t in s else None]
'''


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab,c 1", max_size=12), st.text(alphabet="ab,1", max_size=3))
def test_string_programs(s: str, t: str) -> None:
    agree(STRINGS, "f", [s, t])


DICTS = '''
def f(keys, n):
    d = {}
    for k in keys:
        d[k] = d.get(k, 0) + 1
    counts = {k: v for k, v in d.items() if v > 1}
    inv = {}
    for k in sorted(d):
        inv[str(d[k])] = k
    first = None
    if keys:
        first = d.pop(keys[0])
    grid = {i: [j for j in range(i)] for i in range(n)}
    d["x" + str(n)] = n
    return [d, list(d.keys()), list(d.values()), sorted(d.items()), counts, inv, first,
            "a" in d, len(d), dict(counts), grid[n - 1] if n > 0 else [], d.copy()]
'''


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "dd", "e"]), max_size=12), st.integers(0, 6))
def test_dict_programs(keys: list[str], n: int) -> None:
    program = DICTS.replace("grid[n - 1] if n > 0 else []", "[] if n == 0 else grid[n - 1]")
    ok, expected = native(program, "f", [keys, n])
    assert ok
    result = execute(compile(program), "f", [keys, n], 5_000_000, HOST)
    assert result.status is Status.OK, result.error
    # grid has int keys, which cannot leave the VM, so it is not returned
    assert result.value == expected


TIERED = '''
def royalty(units, tiers, cap):
    total = 0
    prev = 0
    for tier in tiers:
        end = tier[0]
        fee = tier[1]
        if end is None or units <= end:
            total += (units - prev) * fee
            break
        total += (end - prev) * fee
        prev = end
    return min(total, cap)
'''


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**8), st.lists(st.integers(1, 10**6), min_size=1, max_size=5),
       st.integers(0, 10**9))
def test_tiered_royalty(units: int, steps: list[int], cap: int) -> None:
    bounds: list[Any] = []
    acc = 0
    for i, step in enumerate(steps):
        acc += step
        bounds.append([acc, 30 - i * 5])
    bounds.append([None, 1])
    agree(TIERED, "royalty", [units, bounds, cap])


CONTROL = '''
LIMIT = 40


def gcd(a, b):
    while b != 0:
        a, b = b, a % b
    return abs(a)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def search(xs, target):
    lo = 0
    hi = len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def f(a, b, xs):
    ys = sorted(xs)
    hits = 0
    for x in xs:
        if x % 2 == 0:
            continue
        hits += 1
        if hits > LIMIT:
            break
    return [gcd(a, b), fib(abs(a) % 12), search(ys, b), hits, a ** 2 - b ** 3,
            mul_div(a, b, 7, "half-even"), allocate(abs(a), [1, 2, 3])]
'''


@settings(max_examples=150, deadline=None)
@given(st.integers(-10**9, 10**9), st.integers(-10**6, 10**6),
       st.lists(st.integers(-100, 100), max_size=60))
def test_control_flow_and_recursion(a: int, b: int, xs: list[int]) -> None:
    agree(CONTROL, "f", [a, b, xs])
