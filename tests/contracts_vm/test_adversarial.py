"""Adversarial programs that pass deploy must end in a defined outcome (OUT_OF_GAS, LIMIT
or ERROR), never a host RecursionError/MemoryError, a stall or an escape (issue 4)."""

from __future__ import annotations

import pytest

from contracts_vm import HostError, Status, compile, execute

from .support import FakeHost, run

GAS = 2_000_000


def outcome(source: str, *args: object, gas: int = GAS) -> tuple[Status, str]:
    result = run(source, "f", *args, gas=gas)
    assert result.effects.storage_writes == () and result.effects.events == ()
    return result.status, result.error


@pytest.mark.parametrize(
    ("source", "status", "message"),
    [
        ("def f():\n    while True:\n        pass", Status.OUT_OF_GAS, "out of gas"),
        ("def f():\n    for i in range(10 ** 300):\n        pass", Status.OUT_OF_GAS, ""),
        ("def f():\n    return g(0)\ndef g(n):\n    return g(n + 1)", Status.LIMIT, "call_depth"),
        ("def f():\n    return g(0)\ndef g(n):\n    return h(n)\ndef h(n):\n    return g(n)",
         Status.LIMIT, "call_depth"),
        ("def f():\n    return g(0)\ndef g(n):\n    return [g(n) for x in [1]]",
         Status.LIMIT, "call_depth"),
        ("def f():\n    x = 3\n    while True:\n        x = x * x", Status.LIMIT, "int_bits"),
        ("def f():\n    return 10 ** (10 ** 6)", Status.LIMIT, "int_bits"),
        ("def f():\n    x = 7\n    return x ** x ** x", Status.LIMIT, "int_bits"),
        ("def f():\n    x = 1\n    while True:\n        x = x + x", Status.LIMIT, "int_bits"),
        ("def f():\n    return int('9' * 300) * int('9' * 300) * int('9' * 300) * 10 ** 200",
         Status.LIMIT, "int_bits"),
        ("def f():\n    s = 'ab'\n    while True:\n        s = s + s", Status.LIMIT, "str_len"),
        ("def f():\n    return 'a' * 10 ** 9", Status.LIMIT, "str_len"),
        ("def f():\n    return [0] * 10 ** 9", Status.LIMIT, "container_len"),
        ("def f():\n    x = [1]\n    while True:\n        x += x", Status.LIMIT, "container_len"),
        ("def f():\n    x = []\n    while True:\n        x.append(1)", Status.LIMIT, ""),
        ("def f():\n    return [[0] * 50000 for i in range(10 ** 6)]", Status.OUT_OF_GAS, ""),
        ("def f():\n    return [[j for j in range(10 ** 4)] for i in range(10 ** 4)]",
         Status.OUT_OF_GAS, ""),
        ("def f():\n    return {str(i): i for i in range(10 ** 7)}", Status.OUT_OF_GAS, ""),
        ("def f():\n    return 'x'.join(['abc' * 20000] * 1000)", Status.LIMIT, "str_len"),
        ("def f():\n    return ('a' * 60000).replace('a', 'bbbb')", Status.LIMIT, "str_len"),
        ("def f():\n    return sorted(list(range(10 ** 6)))", Status.LIMIT, ""),
        ("def f():\n    return sorted(range(10 ** 9))", Status.LIMIT, "container_len"),
        ("def f():\n    return max(range(10 ** 9))", Status.LIMIT, "container_len"),
        ("def f():\n    return sum(range(10 ** 18))", Status.LIMIT, "container_len"),
        ("def f():\n    return list(range(10 ** 300))", Status.ERROR, "OverflowError"),
        ("def f():\n    x = [0] * 100000\n    y = [x] * 100000\n    return y == [x] * 100000",
         Status.OUT_OF_GAS, ""),
        ("def f():\n    x = []\n    for i in range(100):\n        x = [x]\n    return x",
         Status.LIMIT, "data_depth"),
        ("def f():\n    x = []\n    y = []\n    for i in range(100):\n        x = [x]\n"
         "        y = [y]\n    return x == y", Status.LIMIT, "data_depth"),
        ("def f():\n    a = []\n    a.append(a)\n    return a == [a]", Status.LIMIT, "data_depth"),
        ("def f():\n    a = []\n    a.append(a)\n    return a", Status.LIMIT, "data_depth"),
        ("def f():\n    a = []\n    a.append(a)\n    return sorted([a, a])", Status.LIMIT, ""),
        ("def f():\n    a = []\n    a.append(a)\n    return a in [a, 1]", Status.LIMIT, ""),
        ("def f():\n    d = {}\n    for i in range(1000):\n        d[i * (2 ** 61 - 1)] = i",
         Status.ERROR, "dict keys"),
        ("def f():\n    return {[1]: 2}", Status.ERROR, "dict keys"),
        ("def f():\n    return '%s' % 5", Status.ERROR, "unsupported operands for %"),
        ("def f():\n    return 2 ** -1", Status.ERROR, "negative exponent"),
        ("def f():\n    return 1 // 0", Status.ERROR, "division by zero"),
        ("def f():\n    return [1][5]", Status.ERROR, "IndexError"),
        ("def f():\n    return {'a': 1}['b']", Status.ERROR, "KeyError"),
        ("def f():\n    return 1 < 'a'", Status.ERROR, "TypeError"),
        ("def f():\n    return '\\u00e9'.upper()", Status.ERROR, "ASCII-only"),
        ("def f():\n    return int('\\u0661\\u0662')", Status.ERROR, "ASCII"),
        ("def f():\n    return 'a b'.split()", Status.ERROR, "TypeError"),
        ("def f():\n    return str([1, 2])", Status.ERROR, "str() of a list"),
        ("def f():\n    return range(3)", Status.ERROR, "cannot leave the VM"),
        ("def f():\n    return {1: 2}", Status.ERROR, "str keys"),
        ("def f():\n    storage_set('k', 1)\n    return 1 // 0", Status.ERROR, "division"),
        ("def f():\n    emit('e', 1)\n    while True:\n        pass", Status.OUT_OF_GAS, ""),
        ("def f():\n    return y\ny = 1 // 0", Status.ERROR, "division"),
        ("def f():\n    fail('no licence')", Status.ERROR, "fail: no licence"),
    ],
)
def test_defined_outcome(source: str, status: Status, message: str) -> None:
    got_status, error = outcome(source)
    assert got_status is status, error
    assert message in error


def test_total_allocation_is_capped() -> None:
    source = "def f():\n    return [[0] * 50000 for i in range(10 ** 6)]\n"
    result = run(source, "f", gas=50_000_000)
    assert result.status is Status.LIMIT and "alloc_bytes" in result.error


def test_big_int_results_count_against_the_allocation_cap() -> None:
    source = (
        "def f():\n    x = 10 ** 300\n    keep = []\n    while True:\n"
        "        keep.append([-x - i for i in range(1000)])\n"
    )
    result = run(source, "f", gas=50_000_000)
    assert result.status is Status.LIMIT and "alloc_bytes" in result.error


def test_out_of_gas_uses_the_whole_limit_and_gas_is_exact() -> None:
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    result = run(source, "f", 1000)
    assert result.status is Status.OK and result.value == 499500
    exact = run(source, "f", 1000, gas=result.gas_used)
    assert exact.status is Status.OK and exact.gas_used == result.gas_used
    short = run(source, "f", 1000, gas=result.gas_used - 1)
    assert short.status is Status.OUT_OF_GAS and short.gas_used == result.gas_used - 1


def test_gas_grows_with_work() -> None:
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    gas = [run(source, "f", n).gas_used for n in (10, 20, 110)]
    assert gas[0] < gas[1] < gas[2]
    assert gas[2] - gas[1] == 9 * (gas[1] - gas[0])  # a constant per iteration


def test_big_operands_cost_more_gas_than_small_ones() -> None:
    source = "def f(a, b):\n    return a * b\n"
    small = run(source, "f", 3, 5).gas_used
    big = run(source, "f", 3 ** 600, 5 ** 400).gas_used
    assert big > small + 100


def test_walks_over_containers_are_charged_by_size() -> None:
    source = "def f(n):\n    x = ['a' * 60000] * n\n    return x.count('b')\n"
    small, big = run(source, "f", 1), run(source, "f", 1000)
    assert small.value == big.value == 0
    assert big.gas_used - small.gas_used > 999 * (60000 // 64)


def test_long_dict_keys_are_refused() -> None:
    assert run("def f():\n    return {'k' * 257: 1}\n", "f").status is Status.ERROR
    assert run("def f():\n    d = {}\n    d['k' * 300] = 1\n", "f").status is Status.ERROR
    assert run("def f(d):\n    return d\n", "f", {"k" * 300: 1}).status is Status.ERROR
    ok = run("def f():\n    d = {'k' * 256: 1}\n    return d.get('k' * 256)\n", "f")
    assert ok.value == 1


def test_worst_case_substring_search_is_charged_by_both_lengths() -> None:
    source = "def f(n):\n    s = 'a' * 65536\n    return s.find('a' * n + 'b')\n"
    short, long = run(source, "f", 0), run(source, "f", 99)
    assert short.value == long.value == -1
    assert long.gas_used - short.gas_used > 65536 * 99 // 64


def test_effects_apply_only_on_success() -> None:
    source = (
        "def f(ok):\n    storage_set('k', [1, 2])\n    emit('paid', {'n': 1})\n"
        "    if not ok:\n        fail('no')\n    return storage_get('k')\n"
    )
    good = run(source, "f", True)
    assert good.status is Status.OK and good.value == [1, 2]
    assert good.effects.storage_writes == (("k", [1, 2]),)
    assert [(e.name, e.payload) for e in good.effects.events] == [("paid", {"n": 1})]
    bad = run(source, "f", False)
    assert bad.status is Status.ERROR
    assert bad.effects.storage_writes == () and bad.effects.events == ()


def test_host_values_are_copied_in_and_out() -> None:
    host = FakeHost(params={"tiers": [[1, 2]]}, storage={"s": {"a": [1]}})
    source = (
        "def f():\n    t = param('tiers')\n    t.append(9)\n    s = storage_get('s')\n"
        "    s['a'].append(2)\n    return [t, s]\n"
    )
    result = run(source, "f", host=host)
    assert result.value == [[[1, 2], 9], {"a": [1, 2]}]
    assert host.params == {"tiers": [[1, 2]]} and host.storage == {"s": {"a": [1]}}


def test_arguments_are_copied_and_validated() -> None:
    args = [[1, 2]]
    result = run("def f(x):\n    x.append(3)\n    return x\n", "f", *args)
    assert result.value == [1, 2, 3] and args == [[1, 2]]
    assert run("def f(x):\n    return x\n", "f", 1.5).status is Status.ERROR
    assert run("def f(x):\n    return x\n", "f", {1: 2}).status is Status.ERROR
    assert run("def f(x):\n    return x\n", "f", object()).status is Status.ERROR
    assert run("def f(x):\n    return x\n", "f").status is Status.ERROR
    assert run("def f(x):\n    return x\n", "g", 1).status is Status.ERROR


def test_module_state_does_not_leak_between_executions() -> None:
    program = compile("SEEN = []\ndef f(x):\n    SEEN.append(x)\n    return SEEN\n")
    host = FakeHost()
    assert execute(program, "f", [1], GAS, host).value == [1]
    assert execute(program, "f", [2], GAS, host).value == [2]
    failing = compile("A = f(1)\nB = 2\ndef f(x):\n    return B\n")
    first = execute(failing, "f", [0], GAS, host)
    second = execute(failing, "f", [0], GAS, host)
    assert first.status is second.status is Status.ERROR  # B is never visible early
    assert first == second


def test_host_with_another_vm_version_is_refused() -> None:
    program = compile("def f():\n    return 1\n")
    with pytest.raises(HostError):
        execute(program, "f", [], GAS, FakeHost(vm_version=99))
    with pytest.raises(HostError):
        execute(program, "f", [], GAS, FakeHost(gas_schedule_version=99))


def test_host_returning_a_non_json_value_is_a_host_error() -> None:
    with pytest.raises(HostError):
        run("def f():\n    return param('x')\n", "f", host=FakeHost(params={"x": 1.5}))


def test_a_failing_host_read_is_a_host_error_not_an_outcome() -> None:
    class BrokenHost(FakeHost):
        def param(self, name: str) -> object:
            raise KeyError(name)

    with pytest.raises(HostError):
        run("def f():\n    return param('x')\n", "f", host=BrokenHost())


def test_deepest_allowed_recursion_succeeds() -> None:
    source = "def f(n):\n    if n == 0:\n        return 0\n    return 1 + f(n - 1)\n"
    assert run(source, "f", 63).value == 63
    assert run(source, "f", 64).status is Status.LIMIT


def test_contract_never_sees_a_host_object() -> None:
    # every value a contract can name is a VM value; builtins return fresh lists
    source = (
        "def f(d):\n    return [d.items(), enumerate([5]), zip([1], [2]), divmod(7, 2),"
        " reversed([1, 2]), d.keys()]\n"
    )
    result = run(source, "f", {"a": 1})
    assert result.value == [[["a", 1]], [[0, 5]], [[1, 2]], [3, 1], [2, 1], ["a"]]
