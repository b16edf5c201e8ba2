"""Contract VM benchmark: metered calls/s of a ~30-line tiered royalty rule vs native CPython.

Both run the same source text: natively via exec() of the plain source (with mul_div from
contracts_vm.money), and through compile()+execute() with full metering. The ratio is
measured in one run; medians of several rounds, min-max shown.
Run: python -m bench.vm
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from typing import Any

from contracts_vm import GAS_SCHEDULE_VERSION, VM_VERSION, compile, execute
from contracts_vm.money import mul_div

RULE = '''
TIERS = [[100000, 0], [5000000, 20], [-1, 10]]


def royalty(units, net_sales_cents, region):
    """MPEG LA style marginal tiers plus a regional surcharge, capped per year."""
    if units < 0:
        return 0
    total = 0
    prev = 0
    for tier in TIERS:
        end = tier[0]
        cents = tier[1]
        if end == -1 or units <= end:
            total += (units - prev) * cents
            break
        total += (end - prev) * cents
        prev = end
    surcharge_bp = 0
    if region == "EU":
        surcharge_bp = 150
    elif region == "US":
        surcharge_bp = 100
    extra = mul_div(net_sales_cents, surcharge_bp, 10000, "half-even")
    total = total + extra
    cap = 500000000
    if total > cap:
        total = cap
    discount = 0
    if units > 1000000:
        discount = total // 100
    return total - discount
'''


class Host:
    vm_version = VM_VERSION
    gas_schedule_version = GAS_SCHEDULE_VERSION

    def param(self, name: str) -> object:
        return None

    def aggregate(self, name: str) -> object:
        return None

    def storage_get(self, key: str) -> object:
        return None


# Programs that try to do much work per unit of gas: ns/gas should stay near the
# rule's own figure, or gas would not bound a validator's time.
STRESS = {
    "int loop": "def f():\n    t = 0\n    for i in range(100000):\n        t += i * i\n"
                "    return t",
    "string doubling": "def f():\n    s = 'ab'\n    for i in range(15):\n        s = s + s\n"
                       "    return len(s)",
    "worst substring": "def f():\n    s = 'a' * 65536\n    n = 0\n    for i in range(20):\n"
                       "        n += s.find('a' * 99 + 'b')\n    return n",
    "deep compare": "def f():\n    x = [0] * 1000\n    y = [x] * 300\n    n = 0\n"
                    "    for i in range(20):\n        n += y == [x] * 300\n    return n",
    "sort strings": "def f():\n    x = ['a' * 60000] * 2000\n    return len(sorted(x))",
    "big-int mul": "def f():\n    x = 3 ** 300\n    t = 0\n    for i in range(20000):\n"
                   "        t = x * x // x\n    return t % 7",
    "dict build": "def f():\n    d = {}\n    for i in range(50000):\n        d[str(i)] = i\n"
                  "    return len(d)",
    "comprehension": "def f():\n    return len([[i, i] for i in range(50000)])",
}


MEMORY = {
    "nested lists": "def f():\n    x = []\n    while True:\n        x = [x]\n",
    "big ints in lists": "def f():\n    x = 10 ** 300\n    L = []\n    while True:\n"
                         "        L.append([x + i for i in range(1000)])\n",
    "dict growth": "def f():\n    d = {}\n    i = 0\n    while True:\n        i += 1\n"
                   "        d[i] = -i\n",
}


def peak_memory(source: str, host: Host, gas_limit: int) -> tuple[float, str]:
    program = compile(source)
    tracemalloc.start()
    result = execute(program, "f", [], gas_limit, host)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6, result.status.value


def ns_per_gas(source: str, host: Host) -> float:
    program = compile(source)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = execute(program, "f", [], 100_000_000, host)
        elapsed = time.perf_counter() - start
        assert result.status.value == "OK", result
        best = min(best, elapsed * 1e9 / result.gas_used)
    return best


INPUTS = [[6_000_000, 123_456_789, "EU"], [50_000, 10_000, "US"], [2_500_000, 0, "JP"]]


def rate(fn: Any, seconds: float = 0.4) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for args in INPUTS:
            fn(args)
        n += len(INPUTS)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    program = compile(RULE)
    host = Host()
    native_ns: dict[str, Any] = {"mul_div": mul_div}
    exec(RULE, native_ns)
    native = native_ns["royalty"]
    for args in INPUTS:
        r = execute(program, "royalty", args, 100_000, host)
        assert r.value == native(*args), (r, native(*args))
    gas = [execute(program, "royalty", a, 100_000, host).gas_used for a in INPUTS]
    rounds = []
    for _ in range(7):
        nat = rate(lambda a: native(*a))
        vm = rate(lambda a: execute(program, "royalty", a, 100_000, host))
        rounds.append((nat, vm, nat / vm))
    nat_m = statistics.median(r[0] for r in rounds)
    vm_m = statistics.median(r[1] for r in rounds)
    ratios = [r[2] for r in rounds]
    print("contract VM benchmark (python -m bench.vm): 30-line tiered royalty rule")
    print(f"  gas per call: {gas}")
    print(f"  native CPython: {nat_m:12,.0f} calls/s (median of {len(rounds)})")
    print(f"  metered VM:     {vm_m:12,.0f} calls/s (median of {len(rounds)})")
    print(f"  slowdown VM/native: median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; target < 20x)")
    rule_ns = 1e9 / vm_m / (sum(gas) / len(gas))
    print(f"  time per gas unit, the rule: {rule_ns:.1f} ns")
    print("  time per gas unit, stress programs (best of 3):")
    for name, source in STRESS.items():
        print(f"    {name:18s} {ns_per_gas(source, host):6.1f} ns")
    print("  peak traced memory of allocation bombs, gas limit 50,000,000:")
    for name, source in MEMORY.items():
        mb, status = peak_memory(source, host, 50_000_000)
        print(f"    {name:18s} {mb:6.1f} MB  ({status})")


if __name__ == "__main__":
    main()
