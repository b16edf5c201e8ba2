"""`python -m bench [--full] [--write FILE]`: run every benchmark in turn and print.

--full runs the cluster benchmark in full (4, 7 and 10 validators, 10,000-block catch-up);
--write also writes everything printed, with the machine, date and command, to a Markdown
file (`make bench-full` writes docs/bench-results.md, which the README links to)."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import os
import platform
import sys
from pathlib import Path
from typing import Any, TextIO

from bench import cluster

MODULES = [
    "bench.foundation",
    "bench.txcodec",
    "bench.pipeline",
    "bench.vm",
    "bench.agent",
    "bench.api",
    "bench.p2p",
]
CLUSTER = "bench.cluster"


class _Tee(io.TextIOBase):
    """Prints and keeps a copy (what a benchmark printed goes into the report)."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.kept = out, io.StringIO()

    def write(self, text: str) -> int:
        self.out.write(text)
        self.kept.write(text)
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def _run(name: str, args: list[str] | None = None) -> tuple[str, Any]:
    """Run a benchmark's main(); what it printed (also printed) and what it returned."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        module = importlib.import_module(name)
        value = module.main(args) if args is not None else module.main()
    return tee.kept.getvalue(), value


def report(
    command: str,
    started: datetime.datetime,
    machine_line: str,
    printed: dict[str, str],
    cluster_lines: list[str],
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC. {machine_line}",
        "Narrative, history and what the figures mean: [benchmarks.md](benchmarks.md).",
        "",
    ]
    for name, text in printed.items():
        lines += [f"## `python -m {name}`", "", "```", text.rstrip(), "```", ""]
    lines += [f"## `python -m {CLUSTER}`", "", *cluster_lines, ""]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="the cluster benchmark in full")
    parser.add_argument("--write", type=Path, help="write a Markdown report of everything")
    opts = parser.parse_args(args if args is not None else sys.argv[1:])
    started = datetime.datetime.now(datetime.UTC)
    m = cluster.machine()
    machine_line = (
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']} on "
        f"{platform.machine()}; load average before {m['load_before'][0]:.2f}."
    )
    print(machine_line)
    printed = {name: _run(name)[0] for name in MODULES}
    cluster_args = ["--full"] if opts.full else []
    if opts.write:
        cluster_args += ["--json", str(opts.write.with_suffix(".json"))]
    result = _run(CLUSTER, cluster_args)[1]
    if opts.write:
        command = "python -m bench " + " ".join(args if args is not None else sys.argv[1:])
        body = [cluster.machine_line(result), "", *cluster.table(result)]
        opts.write.write_text(report(command.strip(), started, machine_line, printed, body))
        print(f"wrote {opts.write} ({os.path.getsize(opts.write):,} bytes)")


if __name__ == "__main__":
    main()
