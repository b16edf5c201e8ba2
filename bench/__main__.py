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
import re
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bench.cluster import machine

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


def _run(name: str, args: list[str] | None = None) -> str:
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        module = importlib.import_module(name)
        module.main(args) if args is not None else module.main()
    return tee.kept.getvalue()


def report(
    command: str,
    started: datetime.datetime,
    machine_line: str,
    printed: dict[str, str],
    cluster_md: str,
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
    body = cluster_md.split("\n", 1)[1].lstrip() if cluster_md.startswith("# ") else cluster_md
    # its own command line names a temporary file; the command above is the one to re-run
    body = re.sub(rf"Command: `python -m {CLUSTER}[^\n]*\n\n", "", body)
    lines += [f"## `python -m {CLUSTER}`", "", body.rstrip(), ""]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="the cluster benchmark in full")
    parser.add_argument("--write", type=Path, help="write a Markdown report of everything")
    opts = parser.parse_args(args if args is not None else sys.argv[1:])
    started = datetime.datetime.now(datetime.UTC)
    m = machine()
    machine_line = (
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']} on "
        f"{platform.machine()}; load average before {m['load_before'][0]:.2f}."
    )
    print(machine_line)
    printed = {name: _run(name) for name in MODULES}
    with tempfile.TemporaryDirectory() as tmp:
        cluster_args = ["--full"] if opts.full else []
        table = Path(tmp) / "cluster.md"
        if opts.write:
            cluster_args += ["--write", str(table), "--json", str(opts.write.with_suffix(".json"))]
        _run(CLUSTER, cluster_args)
        cluster_md = table.read_text() if opts.write else ""
    if opts.write:
        command = "python -m bench " + " ".join(args if args is not None else sys.argv[1:])
        opts.write.write_text(report(command.strip(), started, machine_line, printed, cluster_md))
        print(f"wrote {opts.write} ({os.path.getsize(opts.write):,} bytes)")


if __name__ == "__main__":
    main()
