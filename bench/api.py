"""HTTP API benchmark: requests per second through real Hypercorn on 127.0.0.1.

Run: `make bench` or `.venv/bin/python -m bench.api`. The client is the stdlib
http.client in a worker thread of the same process (it shares the GIL with the server),
one keep-alive connection, requests one after another: per-request costs of the API
itself, not a capacity figure for a node. The node behind
the API is the test twin over a real LevelDB chain (tests/api/chain.py); its submit
accepts without checking signatures, so the submit figure is the API's decode and
validation cost alone.
"""

from __future__ import annotations

import http.client
import pathlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from functools import partial

import trio

from node.api.serve import ApiAddresses, serve_api
from node.ledger import codec
from node.ledger.tx import Transaction
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report
from node.runtime.interface import SubmitResult
from tests.api.chain import build_chain
from tests.api.fakecontrol import FakeControl
from tests.ledger.harness import CHAIN

RUNS = 3
RUN_S = 0.5
BATCH = 100


class TakeAll(FakeControl):
    async def submit(self, txs: Sequence[Transaction]) -> list[SubmitResult]:
        return [SubmitResult(tx.tx_id, "pending", "ok") for tx in txs]


def _client_loop(host: str, port: int, method: str, path: str, body: bytes | None) -> float:
    """Requests per second for RUN_S on one keep-alive connection (stdlib client)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/msgpack"} if body is not None else {}
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < RUN_S or calls == 0:
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, (path, answer.status)
        calls += 1
    conn.close()
    return calls / elapsed


async def _rate(
    address: str, method: str, path: str, body: bytes | None = None
) -> tuple[float, float, float]:
    host, port = address.rsplit(":", 1)
    rates = [
        await trio.to_thread.run_sync(_client_loop, host, int(port), method, path, body)
        for _ in range(RUNS)
    ]
    return statistics.median(rates), min(rates), max(rates)


def _line(name: str, figures: tuple[float, float, float], unit: str) -> None:
    median, lo, hi = figures
    print(f"  {name:<44} {median:>12,.0f} {unit}  (min {lo:,.0f}, max {hi:,.0f})", flush=True)


async def _bench(path: pathlib.Path) -> None:
    chain = build_chain(path)
    node = TakeAll(chain.store, CHAIN)
    tx_id = chain.usage_txs[0].tx_id.hex()
    gateway = chain.gateways[0]
    reports = [
        make_usage_report(
            gateway, CHAIN, seq, UsageReport("cam-1", "DE", seq, GENESIS_PREV, {"units": seq})
        )
        for seq in range(100, 100 + BATCH)
    ]
    body = codec.encode({"txs": [tx.to_value() for tx in reports]})
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            addresses: ApiAddresses = await nursery.start(
                partial(serve_api, node, "127.0.0.1:0", admin_listen="127.0.0.1:0")
            )
            at = addresses.public
            for name, path in (
                ("GET /health", "/health"),
                ("GET /v1/txs/<id> (committed)", f"/v1/txs/{tx_id}"),
                ("GET /v1/txs/<id>/proof", f"/v1/txs/{tx_id}/proof"),
                ("GET /v1/statements?period=2026-Q1", "/v1/statements?period=2026-Q1"),
            ):
                _line(name, await _rate(at, "GET", path), "req/s")
            per_batch = await _rate(at, "POST", "/v1/txs", body)
            _line(
                f"POST /v1/txs, {BATCH} usage reports per batch",
                (per_batch[0] * BATCH, per_batch[1] * BATCH, per_batch[2] * BATCH),
                "tx/s",
            )
            nursery.cancel_scope.cancel()
    chain.store.close()


def main() -> None:
    print("== api: Hypercorn + FastAPI on trio, loopback, one connection ==")
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(_bench, pathlib.Path(tmp) / "db")


if __name__ == "__main__":
    main()
