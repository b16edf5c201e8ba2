"""Device agent benchmark: start-up time, peak RSS, reports signed+persisted per second,
CPU per report, and end-to-end committed reports per second against a local fake node.

Run: `python -m bench.agent` (about 20 s). Medians of several runs with min-max. The
outbox fsyncs every report (SQLite WAL, synchronous=FULL), so wall-clock rate is bound by
the storage's fsync latency (an SD card is far slower than this machine's disk) while CPU
per report is what the Pi's core pays.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from device_agent.outbox import Outbox
from node.ledger import crypto
from node.ledger.usage import UsageReport, make_usage_report
from tests.device_agent.fakenode import FakeLedger, FakeNode

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEVICE = crypto.Signer(b"\x61" * 32)


def _line(name: str, runs: list[float], unit: str, fmt: str = ",.1f") -> None:
    med, lo, hi = statistics.median(runs), min(runs), max(runs)
    print(f"  {name:<44} {med:>12{fmt}} {unit}  (min {lo:{fmt}}, max {hi:{fmt}})", flush=True)


def _config(tmp: pathlib.Path, endpoint: str, rate: int) -> pathlib.Path:
    path = tmp / "agent.toml"
    path.write_text(
        f"""
[device]
chain_id = "alps-bench"
sku = "cam-1"
territory = "DE"
key_file = "device.key"
state_dir = "state"
[nodes]
endpoints = ["{endpoint}"]
[upload]
batch_size_max = 200
confirm_interval_s = 0.05
enrolment_check_s = 0.1
[record]
interval_s = 0.0
tick_s = 0.001
[log]
level = "error"
[source]
kind = "simulated"
rate_per_s = {rate}
"""
    )
    return path


def _cli(config: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device_agent.cli", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def bench_startup(config: pathlib.Path) -> None:
    walls = []
    for _ in range(7):
        start = time.perf_counter()
        _cli(config, "status", "--json")
        walls.append((time.perf_counter() - start) * 1000)
    _line("start-up: `alps-agent status` process, wall", walls, "ms")
    imports = []
    for _ in range(5):
        code = (
            "import time; t=time.perf_counter(); import device_agent.agent, device_agent.cli; "
            "print(time.perf_counter()-t)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        imports.append(float(done.stdout) * 1000)
    _line("start-up: agent imports only", imports, "ms")


def bench_outbox(tmp: pathlib.Path) -> None:
    rates, cpus, sign_cpus = [], [], []
    for run in range(5):
        box = Outbox(tmp / f"bench-{run}.sqlite", DEVICE.public_key, "alps-bench", 1_000_000)

        def build(seq: int, prev: bytes, regs: dict[str, int]):  # type: ignore[no-untyped-def]
            report = UsageReport("cam-1", "DE", 1_700_000_000_000 + seq, prev, regs)
            return make_usage_report(DEVICE, "alps-bench", seq, report)

        n = 400
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            box.record({"units": i, "hours": i // 60}, build)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        box.close()
        rates.append(n / wall)
        cpus.append(cpu / n * 1e6)
        cpu = time.process_time()
        for i in range(n):
            build(i + 1, b"\x00" * 32, {"units": i, "hours": i // 60})
        sign_cpus.append((time.process_time() - cpu) / n * 1e6)
    _line("reports signed + fsynced into the outbox", rates, "reports/s", ",.0f")
    _line("CPU per report (sign + persist)", cpus, "us", ",.0f")
    _line("  of which building + signing the report", sign_cpus, "us", ",.0f")


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (Linux), 0 if unknown."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def bench_end_to_end(tmp: pathlib.Path) -> None:
    ledger = FakeLedger(chain_id="alps-bench")
    node = FakeNode(ledger)
    try:
        config = _config(tmp, node.url, rate=100_000)
        request = json.loads(_cli(config, "init", "--licensee", "42" * 32).stdout)
        device = bytes.fromhex(request["device"])
        ledger.enrol(device)
        proc = subprocess.Popen(
            [sys.executable, "-m", "device_agent.cli", "--config", str(config), "run"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        before, t0 = len(ledger.reports(device)), time.perf_counter()
        time.sleep(4.0)
        after, t1 = len(ledger.reports(device)), time.perf_counter()
        peak_kib = _peak_rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        # the kernel's VmHWM of the agent's own image; ru_maxrss would also count the
        # pages of this (benchmark) process that the child shared between fork and exec
        peak = peak_kib / 1024 if peak_kib else usage.ru_maxrss / 1024
        print(f"  {'agent peak RSS (run, 5 s under load)':<44} {peak:>12.1f} MiB")
        cpu = usage.ru_utime + usage.ru_stime
        total = len(ledger.reports(device))
        rate = (after - before) / (t1 - t0)
        print(f"  {'end-to-end committed reports (fake node)':<44} {rate:>12,.0f} reports/s")
        per_report = cpu / max(total, 1) * 1e6
        print(f"  {'agent CPU per committed report, all in':<44} {per_report:>12,.0f} us")
    finally:
        node.stop()


def main() -> None:
    print("== device agent: start-up, memory, outbox throughput ==")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        bench_outbox(tmp_path)
        bench_end_to_end(tmp_path)
        bench_startup(tmp_path / "agent.toml")


if __name__ == "__main__":
    main()
