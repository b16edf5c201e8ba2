"""Timing helpers shared by the benchmarks: medians and min-max over several runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def rate(
    fn: Callable[[], object], ops_per_call: int, runs: int = 5, min_seconds: float = 0.2
) -> tuple[float, float, float]:
    """Run `fn` repeatedly per run for at least `min_seconds`; return (median, min, max) ops/s."""
    rates = []
    for _ in range(runs):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates.append(calls * ops_per_call / elapsed)
    return statistics.median(rates), min(rates), max(rates)


def report(
    name: str, figures: tuple[float, float, float], unit: str = "ops/s", ref: str = ""
) -> str:
    median, lo, hi = figures
    line = f"  {name:<44} {median:>12,.0f} {unit}  (min {lo:,.0f}, max {hi:,.0f})"
    if ref:
        line += f"   [performance.md: {ref}]"
    print(line, flush=True)
    return line
