"""The cluster benchmark: real node processes on 127.0.0.1 under a signed-usage load.

What it measures, in one run (issue 9, `make bench`):
- the single-process pipeline limit (bench.pipeline, measured first, in this run); the
  limit for n validators sharing this machine is `one-core rate * cores / n`;
- for a cluster of n validators (4; 7 and 10 with --full): committed tx/s and commit
  latency p50/p99 at a steady load (a fraction of the limit) and at saturation, each as
  a ratio to the limit;
- catch-up: a stopped node misses N committed blocks, restarts, and is timed until it
  reaches the head;
- bytes on disk per usage record (a node's LevelDB directory / committed usage reports).

The load: devices enrolled by the OEM licensee under an active per-unit licence (the
setup of bench.pipeline), each reporting a chain of usage reports (seq 1, 2, ...; prev
hash chained; cumulative registers). Every report is signed before the clock starts.
Each device talks to one node (as a real device would), so its reports stay in order.
Batches go to the nodes in turn:
- steady: open loop, batch k is due at t0 + k * batch / rate; latency counts from the
  time a batch was due, so a slow submission is not hidden (no coordinated omission);
- saturation: closed loop, senders keep at most `window` transactions submitted and not
  yet committed, so the cluster always has work and the mempool stays bounded.
Commit is what an observer of the last node sees (a backup in view 0, so the primary,
which works hardest, serves no reads): it long-polls `/v1/blocks/<h>/raw?wait_s=...` for
the next height, which the node answers the moment the block is stored, so
per-transaction latency = seen - due is exact to the request's round trip and watching
costs the node one request per block (polling /v1/status every 20 ms cost ~7% of a core).
The nodes' own `alps_commit_latency_seconds` histogram (mempool entry to commit) is
printed beside it.

Every process started here is killed at the end, on error too (process groups).

Run: `python -m bench.cluster [--full] [--runs N] [--seconds S] [--write docs/benchmarks.md]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from bench.pipeline import measure_pipeline, print_pipeline, setup_steps, usage_rounds
from bench.procs import NodeProc, Testnet, wait_for
from node.config import NodeConfig
from node.ledger import codec, crypto
from node.ledger.calendar import period_of
from node.ledger.tx import Transaction

CHAIN = "alps-bench"
LONG_POLL_S = 0.25  # the observer's wait per request (a stop is noticed within it)


# -- configuration ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Knobs:
    """The node settings the benchmark runs with (config.toml [block], [consensus], [mempool])."""

    # (Checkpoint interval and watermark window are protocol constants, see
    # node/ledger/certificate.py; a NEW-VIEW now fits the codec whatever the block size.)
    block_max_txs: int = 2000
    block_interval_ms: int = 20
    tick_ms: int = 20
    timeout_ticks: int = 250  # 5 s: a shared 2-core machine stalls nodes for seconds
    mempool_size: int = 50_000
    in_flight_max: int = 2
    # 4+ validators share 2 cores here: LevelDB's snappy compression (a background
    # thread) would take ~15 us of CPU per usage record from them; off, a record takes
    # ~2x the disk (reported below). A node with a core to spare keeps the default.
    compression: str = "none"

    def apply(self, cfg: NodeConfig) -> NodeConfig:
        return dataclasses.replace(
            cfg,
            consensus=dataclasses.replace(
                cfg.consensus, tick_ms=self.tick_ms, view_change_timeout_ticks=self.timeout_ticks
            ),
            block=dataclasses.replace(
                cfg.block,
                max_txs=self.block_max_txs,
                interval_ms=self.block_interval_ms,
                in_flight_max=self.in_flight_max,
            ),
            mempool=dataclasses.replace(cfg.mempool, size_max=self.mempool_size),
            store=dataclasses.replace(cfg.store, compression=self.compression),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to run: quick by default, everything with --full."""

    validators: tuple[int, ...] = (4,)
    runs: int = 3
    seconds: float = 6.0
    steady_fraction: float = 0.5
    batch: int = 250
    devices: int = 2000
    catch_up_blocks: int = 300
    pipeline_blocks: int = 5
    pipeline_txs: int = 1000
    knobs: Knobs = Knobs()
    profile_dir: str = ""

    def __post_init__(self) -> None:
        if self.runs < 1 or self.seconds <= 0 or not self.validators:
            raise ValueError("runs >= 1, seconds > 0 and at least one cluster size")
        if not 0 < self.steady_fraction <= 1:
            raise ValueError("steady_fraction in (0, 1]")


QUICK = Plan()
FULL = Plan(validators=(4, 7, 10), runs=3, seconds=10.0, devices=4000, catch_up_blocks=10_000)
# On a busy 2-core machine the cluster makes ~5 small blocks/s, so 10,000 blocks take
# ~35 min to produce: `--catch-up-blocks` trades that for time.


# -- the load -------------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    txs: list[Transaction]
    body: bytes  # encoded before the clock starts

    @classmethod
    def of(cls, txs: list[Transaction]) -> Batch:
        return cls(txs, codec.encode({"txs": [tx.to_value() for tx in txs]}))


class Load:
    """Pre-signed usage reports from enrolled devices, queued per node: device i submits
    to node i % n, so each node's queue holds every device's reports in sequence order.
    A run takes batches off the front; what it did not send stays for the next run."""

    def __init__(self, chain_id: str, devices: Sequence[crypto.Signer], nodes: int, batch: int):
        self.chain_id = chain_id
        self.devices = list(devices)
        self.batch = batch
        self.queues: list[deque[Batch]] = [deque() for _ in range(nodes)]
        self.prev: dict[bytes, bytes] = {}
        self.ids: dict[tuple[bytes, int], bytes] = {}  # (signer, nonce) -> tx id
        self.next_seq = 1
        self.t_ms = int(time.time() * 1000)
        self.sent = 0

    def queued(self, node: int) -> int:
        return sum(len(b.txs) for b in self.queues[node])

    def ensure(self, per_node: int) -> None:
        """Sign whole rounds (every device's next report) until each queue holds `per_node`."""
        while min(self.queued(i) for i in range(len(self.queues))) < per_node:
            (txs,) = usage_rounds(
                self.chain_id, self.devices, 1, self.t_ms, self.prev, self.next_seq
            )
            self.next_seq += 1
            self.ids.update(((tx.signer, tx.nonce), tx.tx_id) for tx in txs)
            n = len(self.queues)
            for node, queue in enumerate(self.queues):
                mine = txs[node::n]
                for start in range(0, len(mine), self.batch):
                    queue.append(Batch.of(mine[start : start + self.batch]))

    def rebatch(self, batch: int) -> None:
        """Re-cut what is queued into batches of `batch` (same order)."""
        self.batch = batch
        for queue in self.queues:
            txs = [tx for b in queue for tx in b.txs]
            queue.clear()
            for start in range(0, len(txs), batch):
                queue.append(Batch.of(txs[start : start + batch]))


def devices_for(count: int) -> list[crypto.Signer]:
    return [crypto.Signer(crypto.sha256(b"cluster-device-%d" % i)) for i in range(count)]


# -- talking to nodes ---------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection to a node's API."""

    def __init__(self, api: str, timeout: float = 30) -> None:
        host, port = api.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """(status, JSON answer or None)."""
        status, data = self.raw(method, path, body)
        return status, (json.loads(data) if data else None)

    def raw(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/msgpack"} if body is not None else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # reconnect once (the server may close idle connections)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


class Observer(threading.Thread):
    """Follows one node's new blocks (long polls); records when each transaction was first
    seen.

    It reads each block's stored bytes (`/v1/blocks/<h>/raw`, no decoding on the node)
    and finds the load's transactions in it by (signer, nonce) with plain msgpack, so
    watching costs the observed node (which shares the cores with the others) little:
    asking for the JSON block made node 0 decode every block and hash every transaction
    again (~7% of its CPU in the profiles)."""

    def __init__(self, node: NodeProc, ids: dict[tuple[bytes, int], bytes]) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.ids = ids
        self.seen: dict[bytes, float] = {}
        self.blocks: list[tuple[int, float, int]] = []  # (height, seen, tx_count)
        self.height = node.height()
        self.tx_total = 0
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        client = Client(self.node.api)
        try:
            while not self.stop_event.is_set():
                # long poll: the node answers the moment the block is stored
                path = f"/v1/blocks/{self.height + 1}/raw?wait_s={LONG_POLL_S}"
                status, raw = client.raw("GET", path)
                if status == 404:
                    continue  # not stored within the wait
                if status != 200:
                    raise RuntimeError(f"observer: {path} answered {status}")
                now = time.monotonic()
                self.height += 1
                txs = msgpack.unpackb(msgpack.unpackb(raw)["block"])["txs"]
                with self.lock:
                    for tx in txs:
                        tx_id = self.ids.get((tx["signer"], tx["nonce"]))
                        if tx_id is not None:
                            self.seen.setdefault(tx_id, now)
                    self.blocks.append((self.height, now, len(txs)))
                    self.tx_total += len(txs)
        except BaseException as exc:  # reported by the caller
            self.error = exc
        finally:
            client.close()

    def committed(self, tx_ids: Sequence[bytes]) -> int:
        with self.lock:
            return sum(1 for t in tx_ids if t in self.seen)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
        if self.error is not None:
            raise RuntimeError(f"observer failed: {self.error!r}")


@dataclass(slots=True)
class Submitted:
    due: dict[bytes, float] = field(default_factory=dict)
    rejected: int = 0
    refusals_429: int = 0
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sender(
    node: NodeProc,
    queue: deque[Batch],
    schedule: Callable[[int], float],
    gate: Callable[[], bool],
    out: Submitted,
    deadline: float,
) -> None:
    """Submit batches off `queue` in order: a batch not before schedule(transactions sent
    before it) (0: at once),
    and only while gate(); a batch is taken off the queue once the node accepted it.
    Open loop: every batch due before the deadline is sent, late if the node was slow to
    answer the previous one (the delay counts in its latency), none due after it.
    Closed loop (due 0): batches go while the clock is before the deadline."""
    client = Client(node.api)
    try:
        sent = 0
        while queue:
            batch = queue[0]
            due = schedule(sent)
            if due >= deadline:
                return
            while time.monotonic() < deadline and (time.monotonic() < due or not gate()):
                time.sleep(0.002)
            if not due and time.monotonic() >= deadline:
                return
            due = due or time.monotonic()
            while True:
                status, answer = client.request("POST", "/v1/txs", batch.body)
                if status == 429 and time.monotonic() < deadline:
                    with out.lock:
                        out.refusals_429 += 1
                    time.sleep(0.05)
                    continue
                break
            if status == 429:
                return
            if status != 200:
                raise RuntimeError(f"node {node.index} answered {status}: {answer}")
            queue.popleft()
            sent += len(batch.txs)
            bad = sum(1 for r in answer["results"] if r["status"] == "rejected")
            with out.lock:
                out.rejected += bad
                out.count += len(batch.txs)
                for tx in batch.txs:
                    out.due[tx.tx_id] = due
    finally:
        client.close()


# -- one measured run ------------------------------------------------------------------


def _stat_cpu(path: Path) -> float:
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(node: NodeProc) -> float:
    """User + system CPU seconds the node process has used (Linux /proc)."""
    if node.proc is None:
        return 0.0
    return _stat_cpu(Path(f"/proc/{node.proc.pid}/stat"))


def loop_cpu_seconds(node: NodeProc) -> float:
    """CPU seconds of the node's main thread (the trio event loop: network, API,
    consensus); the rest of `cpu_seconds` is worker threads (execution, signatures,
    LevelDB) and exited threads."""
    if node.proc is None:
        return 0.0
    return _stat_cpu(Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/stat"))


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _scrape(nodes: Sequence[NodeProc]) -> tuple[dict[float, float], dict[str, float]]:
    """From the nodes' /metrics, summed over nodes: the alps_commit_latency_seconds buckets
    (le -> cumulative count) and alps_worker_cpu_seconds_total by job."""
    buckets: dict[float, float] = {}
    worker: dict[str, float] = {}
    for node in nodes:
        if not node.alive():
            continue
        client = Client(node.api)
        try:
            _, data = client.raw("GET", "/metrics")
        finally:
            client.close()
        for line in data.decode().splitlines():
            if line.startswith("alps_commit_latency_seconds_bucket{"):
                le = line.split('le="')[1].split('"')[0]
                bound = float("inf") if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
            elif line.startswith("alps_worker_cpu_seconds_total{"):
                job = line.split('job="')[1].split('"')[0]
                worker[job] = worker.get(job, 0.0) + float(line.rsplit(" ", 1)[1])
    return buckets, worker


def _histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The Prometheus-style quantile of the counts added between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank, lower, prev = q * counts[-1], 0.0, 0.0
    for bound, cum in zip(bounds, counts, strict=True):
        if cum >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - prev) / max(cum - prev, 1e-9)
        lower, prev = bound, cum
    return lower


def _committed_rate(blocks: Sequence[tuple[int, float, int]], start: float, end: float) -> float:
    """tx/s committed while the load was on: the transactions of the blocks seen in
    (first block seen after `start`, last block seen before `end`], over that span (block
    boundaries, so a block's worth of rounding does not skew short runs)."""
    inside = [(seen, count) for _, seen, count in blocks if start <= seen <= end]
    if len(inside) < 2:
        return sum(c for _, c in inside) / max(end - start, 1e-9)
    return sum(c for _, c in inside[1:]) / (inside[-1][0] - inside[0][0])


def run_load(
    net: Testnet,
    load: Load,
    *,
    rate: float | None,
    seconds: float,
    window: int = 4000,
    peak: float = 0.0,
    drain_s: float = 60,
) -> dict[str, Any]:
    """One run: a steady open-loop load at `rate` tx/s, or (rate None) a closed loop with
    at most `window` transactions outstanding (`peak`: the most it could take, tx/s, to
    sign enough ahead). Returns committed tx/s and latencies."""
    n = len(net.nodes)
    load.ensure(int((rate or peak) * seconds * 1.2 / n) + load.batch)
    hist_before, worker_before = _scrape(net.nodes)
    cpu_before = [cpu_seconds(node) for node in net.nodes]
    loop_before = [loop_cpu_seconds(node) for node in net.nodes]
    observer = Observer(net.nodes[-1], load.ids)
    observer.start()
    out = Submitted()
    t0 = time.monotonic() + 0.2
    end = t0 + seconds
    period = load.batch / rate if rate is not None else 0.0

    def schedule_for(node: int) -> Callable[[int], float]:
        """When the batch after `sent` transactions is due at this node (rate / n each;
        nodes start staggered by a batch's time). Batch sizes differ (a round of device
        reports splits unevenly), so the schedule counts transactions, not batches."""
        if rate is None:
            return lambda _sent: 0.0
        return lambda sent: t0 + node * period + sent * n / rate

    def gate() -> bool:
        return rate is not None or out.count - observer.tx_total < window

    errors: list[BaseException] = []

    def send_to(i: int) -> None:
        try:
            _sender(net.nodes[i], load.queues[i], schedule_for(i), gate, out, end)
        except Exception as exc:  # re-raised by the caller below
            errors.append(exc)

    threads = [threading.Thread(target=send_to, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        with out.lock:
            due = dict(out.due)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and observer.committed(list(due)) < len(due):
            time.sleep(0.05)
    except BaseException as exc:
        errors.append(exc)
    finally:
        observer.stop()
    dead = [node.index for node in net.nodes if not node.alive()]
    if dead:
        tail = net.nodes[dead[0]].log_text()[-1500:]
        raise RuntimeError(f"node(s) {dead} exited during the run; log tail:\n{tail}")
    if errors:
        raise errors[0]
    hist_after, worker_after = _scrape(net.nodes)
    cpu_used = sum(cpu_seconds(node) for node in net.nodes) - sum(cpu_before)
    loop_used = sum(loop_cpu_seconds(node) for node in net.nodes) - sum(loop_before)
    committed_all = sum(c for _, _, c in observer.blocks)
    load.sent += len(due)
    latencies = [observer.seen[t] - d for t, d in due.items() if t in observer.seen]
    committed_rate = _committed_rate(observer.blocks, t0 + min(2.0, seconds / 3), end)
    views = [int(node.get("/v1/status")["view"]) for node in net.nodes if node.alive()]
    return {
        "submitted": len(due),
        "offered_tx_s": len(due) / seconds,
        "committed_tx_s": committed_rate,
        "p50_s": _percentile(latencies, 0.5),
        "p99_s": _percentile(latencies, 0.99),
        "uncommitted": len(due) - len(latencies),
        "rejected": out.rejected,
        "refused_429": out.refusals_429,
        "node_p50_s": _histogram_quantile(hist_before, hist_after, 0.5),
        "node_p99_s": _histogram_quantile(hist_before, hist_after, 0.99),
        "blocks": len(observer.blocks),
        "view": max(views, default=-1),
        "node_cpu_us_per_tx": cpu_used / n / max(committed_all, 1) * 1e6,
        "loop_cpu_us_per_tx": loop_used / n / max(committed_all, 1) * 1e6,
        "worker_cpu_us_per_tx": {
            job: (worker_after[job] - worker_before.get(job, 0.0)) / n / max(committed_all, 1) * 1e6
            for job in sorted(worker_after)
        },
    }


# -- the cluster's lifecycle -------------------------------------------------------------


@contextmanager
def cluster(root: Path, n: int, plan: Plan) -> Iterator[Testnet]:
    """n validators running and connected; every process killed on exit. Ports are picked
    at random (best effort on a shared machine): a start that fails is retried twice."""
    net = _start_cluster(root, n, plan)
    try:
        yield net
    finally:
        if plan.profile_dir:  # a clean stop writes the profiles
            for node in net.nodes:
                if node.alive():
                    try:
                        node.stop(30)
                    except subprocess.TimeoutExpired:
                        pass
        net.kill_all()


def _start_cluster(root: Path, n: int, plan: Plan, attempts: int = 3) -> Testnet:
    k = plan.knobs
    for attempt in range(attempts):
        net = Testnet(
            root / f"try-{attempt}",
            n,
            tick_ms=k.tick_ms,
            timeout_ticks=k.timeout_ticks,
            chain_id=CHAIN,
            tune=k.apply,
        )
        if plan.profile_dir:
            for node in net.nodes:
                node.env["ALPS_PROFILE"] = str(Path(plan.profile_dir) / f"n{n}-node-{node.index}")
        try:
            net.start_all()
            wait_for("all peers connected", lambda net=net: _all_connected(net), 60)
            return net
        except BaseException:
            net.kill_all()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _all_connected(net: Testnet) -> bool:
    n = len(net.nodes)
    return all(len(node.get("/v1/status")["peers"]) >= n - 1 for node in net.nodes)


def _commit_steps(net: Testnet, steps: Sequence[Sequence[Transaction]]) -> None:
    """Submit each setup step and wait until it is committed and accepted."""
    node = net.nodes[0]
    for step in steps:
        for start in range(0, len(step), 1000):
            chunk = step[start : start + 1000]
            answer = node.post_txs(chunk)
            bad = [r for r in answer["results"] if r["status"] == "rejected"]
            if bad:
                raise RuntimeError(f"setup transaction rejected: {bad[:2]}")
        last = step[-1].tx_id.hex()
        wait_for("setup step committed", lambda last=last: _committed(node, last), 120, 0.05)
        receipt = node.get(f"/v1/txs/{step[0].tx_id.hex()}")["receipt"]
        if not receipt["accepted"]:
            raise RuntimeError(f"setup transaction failed: {receipt}")


def _committed(node: NodeProc, tx_id_hex: str) -> bool:
    return bool(node.get(f"/v1/txs/{tx_id_hex}")["status"] == "committed")


def licensed_load(net: Testnet, plan: Plan) -> Load:
    devices = devices_for(plan.devices)
    start = period_of("quarter", int(time.time() * 1000)).start_ms
    steps = setup_steps(CHAIN, net.member("codec"), net.member("oem"), devices, start)
    _commit_steps(net, steps)
    return Load(CHAIN, devices, len(net.nodes), plan.batch)


def catch_up(net: Testnet, load: Load, blocks: int) -> dict[str, Any]:
    """Stop a backup (SIGTERM), let the others commit `blocks` blocks of a few usage reports
    each, restart it, and time it from start until its height reaches the head."""
    primary = net.primary()
    lagger = next(node for node in reversed(net.nodes) if node is not primary)
    others = [node for node in net.nodes if node is not lagger]
    lagger.stop(30)
    start_height = others[0].height()
    target = start_height + blocks
    load.rebatch(5)  # many small blocks
    clients = [Client(node.api) for node in others]
    deadline = time.monotonic() + max(300.0, blocks / 2)
    sent = 0
    try:
        while time.monotonic() < deadline:
            if sent % 50 == 0 and others[0].height() >= target:
                break
            if min(len(q) for q in load.queues) < 10:
                load.ensure(50)
            for node, queue in enumerate(load.queues):  # lagger's devices go elsewhere
                batch = queue.popleft()
                status, answer = clients[node % len(clients)].request("POST", "/v1/txs", batch.body)
                if status != 200:
                    raise RuntimeError(f"catch-up load refused: {status} {answer}")
                load.sent += len(batch.txs)
            sent += 1
            time.sleep(0.01)
    finally:
        for client in clients:
            client.close()
    wait_for(
        "mempools drained",
        lambda: all(o.get("/v1/status")["mempool"] == 0 for o in others),
        120,
    )
    head = max(o.height() for o in others)
    started = time.monotonic()
    lagger.start()
    wait_for("restarted node API", lambda: lagger.get("/health") is not None, 180, 0.05)
    api_up = time.monotonic() - started
    wait_for("restarted node at the head", lambda: lagger.height() >= head, 3600, 0.05)
    took = time.monotonic() - started
    missed = head - start_height
    return {
        "missed_blocks": missed,
        "seconds": took,
        "api_up_s": api_up,
        "blocks_per_s": missed / took,
        "blocks_per_s_after_api": missed / max(took - api_up, 1e-9),
    }


def disk_per_record(node: NodeProc, usage_records: int) -> dict[str, Any]:
    """The node's LevelDB directory (blocks, receipts, index, state, certificates) per
    committed usage report (the bulk of the chain)."""
    data = node.home / "data" / "chain"
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    return {"bytes": size, "usage_records": usage_records, "per_record": size / usage_records}


# -- putting it together ----------------------------------------------------------------

SUMMARY_KEYS = (
    "offered_tx_s",
    "committed_tx_s",
    "p50_s",
    "p99_s",
    "node_p50_s",
    "node_p99_s",
    "node_cpu_us_per_tx",
    "loop_cpu_us_per_tx",
)


def spread(values: Sequence[float]) -> dict[str, float]:
    clean = [v for v in values if v == v]  # drop NaN
    if not clean:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean)}


def bench_cluster(n: int, plan: Plan, one_core_tx_s: float, cores: int) -> dict[str, Any]:
    """Steady and saturation runs (and, for the first size, catch-up and disk) for n nodes."""
    limit = one_core_tx_s * cores / n
    steady_rate = plan.steady_fraction * limit
    # saturation: enough outstanding for every block in flight and the next one to be
    # full, so the cluster, not the window, is the limit (latency there is queueing)
    k = plan.knobs
    window = (k.in_flight_max + 2) * k.block_max_txs + plan.batch * n
    out: dict[str, Any] = {"validators": n, "limit_tx_s": limit, "steady_rate": steady_rate}
    with tempfile.TemporaryDirectory(prefix=f"alps-bench-{n}-") as tmp:
        with cluster(Path(tmp), n, plan) as net:
            load = licensed_load(net, plan)
            run_load(net, load, rate=steady_rate, seconds=min(2.0, plan.seconds))  # warm-up
            for mode, rate in (("steady", steady_rate), ("saturation", None)):
                runs = [
                    run_load(
                        net, load, rate=rate, seconds=plan.seconds, window=window, peak=2 * limit
                    )
                    for _ in range(plan.runs)
                ]
                out[mode] = {
                    "runs": runs,
                    **{key: spread([r[key] for r in runs]) for key in SUMMARY_KEYS},
                    "rejected": sum(r["rejected"] for r in runs),
                    "uncommitted": sum(r["uncommitted"] for r in runs),
                }
            if n == plan.validators[0] and plan.catch_up_blocks > 0:
                try:
                    out["catch_up"] = catch_up(net, load, plan.catch_up_blocks)
                except Exception as exc:  # keep the other figures; keep the logs to read
                    kept = Path(tempfile.gettempdir()) / f"alps-bench-catch-up-{os.getpid()}"
                    shutil.copytree(net.root, kept, ignore=shutil.ignore_patterns("data"))
                    out["catch_up_error"] = f"{type(exc).__name__}: {exc} (logs: {kept})"
                net.kill_all()
                out["disk"] = disk_per_record(net.nodes[0], load.sent)
    return out


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """(Re)compute each mode's medians and min-max from its runs."""
    for c in result["clusters"]:
        for mode in ("steady", "saturation"):
            if mode in c:
                runs = c[mode]["runs"]
                c[mode].update(
                    {k: spread([r[k] for r in runs]) for k in SUMMARY_KEYS if k in runs[0]}
                )
    return result


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 1,
        "cpu": cpu,
        "python": platform.python_version(),
        "load_before": os.getloadavg(),
    }


def run_all(plan: Plan) -> dict[str, Any]:
    info = machine()
    pipeline = measure_pipeline(plan.pipeline_blocks, plan.pipeline_txs)
    one_core = pipeline["tx_per_s_one_core"]["median"]
    clusters = []
    for n in plan.validators:
        try:
            clusters.append(bench_cluster(n, plan, one_core, info["cores"]))
        except Exception as exc:  # one size failing still reports the others
            if n == plan.validators[0] and len(plan.validators) == 1:
                raise
            clusters.append({"validators": n, "error": f"{type(exc).__name__}: {exc}"})
    info["load_after"] = os.getloadavg()
    return {
        "machine": info,
        "plan": dataclasses.asdict(plan),
        "pipeline": pipeline,
        "clusters": clusters,
    }


# -- printing ------------------------------------------------------------------------------


def _fmt(s: dict[str, float], scale: float = 1.0, digits: int = 0) -> str:
    return (
        f"{s['median'] * scale:,.{digits}f} ({s['min'] * scale:,.{digits}f}-"
        f"{s['max'] * scale:,.{digits}f})"
    )


def _stages(runs: Sequence[dict[str, Any]]) -> str:
    """Median per-node CPU per committed transaction, by where it was spent: the event
    loop, and each kind of worker-thread job (verify, build, judge, commit, hard_state)."""
    runs = [r for r in runs if "worker_cpu_us_per_tx" in r]
    if not runs:
        return ""
    parts = {"loop": statistics.median(r["loop_cpu_us_per_tx"] for r in runs)}
    for job in sorted({j for r in runs for j in r["worker_cpu_us_per_tx"]}):
        parts[job] = statistics.median(r["worker_cpu_us_per_tx"].get(job, 0.0) for r in runs)
    total = statistics.median(r["node_cpu_us_per_tx"] for r in runs)
    parts["other threads"] = total - sum(parts.values())
    return ", ".join(f"{k} {v:,.0f}" for k, v in parts.items())


def _loop(mode: dict[str, Any]) -> str:
    loop = mode.get("loop_cpu_us_per_tx")  # absent from results recorded before it existed
    return f" [loop {loop['median']:,.0f}]" if loop else ""


def table(result: dict[str, Any]) -> list[str]:
    """The results as Markdown lines."""
    p = result["pipeline"]
    one_core = p["tx_per_s_one_core"]
    lines = [
        f"Pipeline (one validator, {p['txs_per_block']:,}-report blocks): "
        f"{p['total_us_per_tx']['median']:.0f} µs "
        f"CPU per tx, one core {_fmt(one_core)} tx/s; "
        f"limit for n validators on {result['machine']['cores']} cores = one-core rate x "
        f"{result['machine']['cores']} / n. Node CPU µs/tx: CPU seconds used by the node "
        "processes per committed transaction, per node (compare with the pipeline's µs/tx), "
        "and in brackets the part spent on the event loop (network, API, consensus); "
        "view: the highest PBFT view at the end (0: no view change).",
        "",
        "| validators | load | limit tx/s | offered tx/s | committed tx/s | ratio to limit "
        "| p50 ms | p99 ms | node p50/p99 ms | node CPU µs/tx | rejected | uncommitted | view |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in result["clusters"]:
        if "error" in c:
            lines.append(f"| {c['validators']} | failed: {c['error'][:120]} " + "|" * 12)
            continue
        for mode in ("steady", "saturation"):
            m = c[mode]
            ratio = {k: v / c["limit_tx_s"] for k, v in m["committed_tx_s"].items()}
            lines.append(
                f"| {c['validators']} | {mode} | {c['limit_tx_s']:,.0f} | "
                f"{_fmt(m['offered_tx_s'])} | {_fmt(m['committed_tx_s'])} | "
                f"{_fmt(ratio, digits=2)} | {_fmt(m['p50_s'], 1000)} | {_fmt(m['p99_s'], 1000)} | "
                f"{m['node_p50_s']['median'] * 1000:,.0f}/{m['node_p99_s']['median'] * 1000:,.0f}"
                f" | {_fmt(m['node_cpu_us_per_tx'])}{_loop(m)}"
                f" | {m['rejected']} | {m['uncommitted']}"
                f" | {max(r['view'] for r in m['runs'])} |"
            )
    for c in result["clusters"]:
        for mode in ("steady", "saturation"):
            stages = _stages(c.get(mode, {}).get("runs", []))
            if stages:
                lines += [
                    "",
                    f"Node CPU by stage, {c['validators']} validators, {mode} (µs/tx): {stages}.",
                ]
    for c in result["clusters"]:
        if "catch_up_error" in c:
            lines += ["", f"Catch-up ({c['validators']} validators) failed: {c['catch_up_error']}"]
        if "disk" in c and "catch_up" not in c:
            d = c["disk"]
            lines.append(f"Disk: {d['per_record']:,.0f} bytes per usage record.")
        if "catch_up" in c:
            cu, disk = c["catch_up"], c["disk"]
            lines += [
                "",
                f"Catch-up ({c['validators']} validators): a node that missed "
                f"{cu['missed_blocks']:,} blocks reached the head {cu['seconds']:.1f} s after "
                f"its restart ({cu['blocks_per_s']:,.0f} blocks/s; API up after "
                f"{cu['api_up_s']:.1f} s, {cu['blocks_per_s_after_api']:,.0f} blocks/s from then).",
                f"Disk: {disk['bytes'] / 1e6:,.1f} MB of LevelDB for {disk['usage_records']:,} "
                f"usage reports = {disk['per_record']:,.0f} bytes per usage record "
                "(blocks, receipts, tx index, state, certificates).",
            ]
    return lines


def print_result(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    print_pipeline(result["pipeline"], out)
    out("== cluster: real node processes on 127.0.0.1, signed usage load ==")
    for line in table(result):
        out("  " + line if line else "")


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (
        f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}; load average "
        f"before {m['load_before'][0]:.2f}, after {m['load_after'][0]:.2f} "
        "(1-minute averages; 'after' counts the benchmark's own nodes, 'before' any other "
        "work sharing the cores)."
    )


def write_markdown(result: dict[str, Any], path: Path, command: str) -> None:
    lines = ["# Benchmarks", "", machine_line(result), "", f"Command: `{command}`", ""]
    path.write_text("\n".join([*lines, *table(result), ""]))


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main(args: list[str] | None = None) -> dict[str, Any]:
    """Run (or --render) and print; the result is returned to `python -m bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster")
    parser.add_argument("--full", action="store_true", help="4, 7 and 10 validators, longer")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--validators", type=int, nargs="+")
    parser.add_argument("--catch-up-blocks", type=int)
    parser.add_argument("--steady-fraction", type=float, help="steady load / limit (0.5)")
    parser.add_argument("--in-flight", type=int, help="[block] in_flight_max of the nodes (2)")
    parser.add_argument("--block-interval-ms", type=int, help="[block] interval_ms (20)")
    parser.add_argument("--write", type=Path, help="write a Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--profile-dir", default="", help="ALPS_PROFILE prefix directory")
    parser.add_argument("--render", type=Path, help="re-render a --json result; run nothing")
    parser.add_argument("--command", default="", help="with --render: the command it came from")
    opts = parser.parse_args(args or [])
    if opts.render:
        result = summarise(json.loads(opts.render.read_text()))
        print_result(result)
        if opts.write:
            write_markdown(result, opts.write, opts.command)
        return result
    plan = FULL if opts.full else QUICK
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("runs", opts.runs),
            ("seconds", opts.seconds),
            ("validators", tuple(opts.validators) if opts.validators else None),
            ("catch_up_blocks", opts.catch_up_blocks),
            ("steady_fraction", opts.steady_fraction),
            ("profile_dir", opts.profile_dir or None),
        )
        if v is not None
    }
    knobs = {
        k: v
        for k, v in (
            ("in_flight_max", opts.in_flight),
            ("block_interval_ms", opts.block_interval_ms),
        )
        if v
    }
    if knobs:
        changes["knobs"] = dataclasses.replace(plan.knobs, **knobs)
    plan = dataclasses.replace(plan, **changes)
    # SIGTERM (and SIGINT, which a background job ignores) unwind through the `finally`
    # blocks that kill the node processes
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    result = run_all(plan)
    print_result(result)
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=1, default=str))
    if opts.write:
        command = "python -m bench.cluster " + " ".join(args or [])
        write_markdown(result, opts.write, command.strip())
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
