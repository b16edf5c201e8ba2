"""`python -m tests.chaos --seed S --duration D`: one chaos run; exit 1 on any failed
check, printing the seed and the command that replays it (see tests/chaos/run.py)."""

from __future__ import annotations

import argparse
import pathlib
import random
import shutil
import sys
import tempfile

import trio

from tests.chaos.plan import KINDS
from tests.chaos.run import DEFAULT_DEVICES, Options, run, stderr_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of faults")
    parser.add_argument(
        "--devices", type=int, default=DEFAULT_DEVICES, help="devices reporting usage"
    )
    parser.add_argument("--kinds", default="", help=f"comma-separated subset of {KINDS}")
    parser.add_argument("--no-byzantine", action="store_true", help="no Byzantine episodes")
    parser.add_argument("--dir", type=pathlib.Path, default=None, help="keep the run here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; choose from {KINDS}")
    options = Options(seed, args.duration, not args.no_byzantine, kinds, args.devices)
    workdir = args.dir or pathlib.Path(tempfile.mkdtemp(prefix=f"alps-chaos-{seed}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_log(f"seed {seed}; replay: {options.replay()}")
    try:
        report = trio.run(run, options, workdir / "net", stderr_log)
    except BaseException:
        print(f"FAIL chaos seed {seed}: the controller stopped (logs in {workdir})", flush=True)
        print(f"replay: {options.replay()}", flush=True)
        raise
    print(report.render(), flush=True)
    if report.ok and args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
