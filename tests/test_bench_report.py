"""`python -m bench --write`: what each benchmark printed lands in the report file, the
cluster's table is embedded under its heading, and the header names the command and the
machine."""

from __future__ import annotations

import datetime
import sys
import types

import pytest

import bench.__main__ as runner


def test_run_prints_and_keeps_what_a_benchmark_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = types.ModuleType("bench_fake")
    fake.main = lambda args=None: print("ops/s 123", args)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench_fake", fake)
    assert runner._run("bench_fake") == ("ops/s 123 None\n", None)
    assert runner._run("bench_fake", ["--full"]) == ("ops/s 123 ['--full']\n", None)
    assert capsys.readouterr().out == "ops/s 123 None\nops/s 123 ['--full']\n"


def test_report_has_header_sections_and_the_cluster_table() -> None:
    text = runner.report(
        "python -m bench --full --write docs/bench-results.md",
        datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.UTC),
        "Machine: 2 cores (x), Python 3.11.7 on x86_64; load average before 0.50.",
        {"bench.vm": "VM 1,000 calls/s\n", "bench.agent": "agent RSS 20 MB\n"},
        ["Machine: ...", "", "| validators | load |", "|---|---|", "| 4 | steady |"],
    )
    assert text.startswith("# Benchmark results\n")
    assert "`python -m bench --full --write docs/bench-results.md` on 2026-12-06 05:00" in text
    assert "load average before 0.50" in text
    assert "## `python -m bench.vm`\n\n```\nVM 1,000 calls/s\n```" in text
    assert text.index("bench.vm") < text.index("bench.agent") < text.index("bench.cluster")
    assert text.count("# Benchmarks") == 0  # one title: the report's
    assert "## `python -m bench.cluster`\n\nMachine: ...\n\n| validators | load |" in text
    assert "Command:" not in text  # the header's command is the one to re-run
