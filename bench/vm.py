"""Contract VM benchmark: metered calls/s of a ~30-line tiered royalty rule vs native CPython.

Both run the same source text: natively via exec() of the plain source (with mul_div from
contracts_vm.money), and through compile()+execute() with full metering. The ratio is
measured in one run; medians of several rounds, min-max shown.
Run: python -m bench.vm
"""

from __future__ import annotations

import statistics
import time
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
    print(
        f"  slowdown VM/native: median {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; target < 20x)"
    )


if __name__ == "__main__":
    main()
