"""`python -m tests.sim --seeds N [--start S]` runs N random seeds; `--seed S` replays one.

Prints one line per failing seed with its replay command, and seeds/second at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from tests.sim.cluster import SimFailure
from tests.sim.runner import plan, run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim")
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=10_000, help="first seed")
    parser.add_argument("--seed", type=int, help="replay exactly this seed, verbosely")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    failures = 0
    began = time.perf_counter()
    for seed in seeds:
        try:
            outcome = run_seed(seed)
        except SimFailure as exc:
            failures += 1
            print(f"FAIL seed {seed}: {exc}", flush=True)
            continue
        except Exception:
            failures += 1
            print(f"CRASH seed {seed} plan={plan(seed)}")
            print(f"  replay: python -m tests.sim --seed {seed}")
            traceback.print_exc()
            continue
        if args.seed is not None:
            print(outcome)
    elapsed = time.perf_counter() - began
    count = len(seeds)
    print(f"{count} seeds, {failures} failed, {elapsed:.1f}s, {count / elapsed:.1f} seeds/s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
