"""A fake node speaking the docs/api.md contract, for agent tests (stdlib http.server).

`FakeLedger` is the shared chain several `FakeNode`s front (like a consortium). It keeps
every transaction ever POSTed per (device, seq), so tests can check that no seq was ever
sent with two different contents. Each node has a `fault` knob: None, "500", "429",
"garbage", "wrong_ids", "hang" (answers after the client's timeout), "drop" (closes the
connection without answering). `stop()` takes a node away (connection refused).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from node.ledger import codec
from node.ledger.errors import LedgerError
from node.ledger.tx import Transaction
from node.ledger.usage import GENESIS_PREV, UsageReport, usage_report_of


@dataclass
class DeviceState:
    licensee: bytes
    revoked: bool = False
    last_seq: int = 0
    last_hash: bytes = GENESIS_PREV


@dataclass
class FakeLedger:
    chain_id: str = "alps-test"
    commit_mode: str = "immediate"  # "immediate" | "on_lookup" | "manual"
    lock: threading.Lock = field(default_factory=threading.Lock)
    devices: dict[bytes, DeviceState] = field(default_factory=dict)
    committed: dict[bytes, tuple[int, Transaction]] = field(default_factory=dict)
    pending: dict[bytes, Transaction] = field(default_factory=dict)
    seen: dict[tuple[bytes, int], set[bytes]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    height: int = 0

    def enrol(self, device: bytes, licensee: bytes = b"\x07" * 32) -> None:
        with self.lock:
            self.devices[device] = DeviceState(licensee)

    def submit(self, value: Any) -> dict[str, Any]:
        try:
            tx = Transaction.from_value(value)
        except LedgerError as exc:
            return {
                "tx_id": "00" * 32,
                "status": "rejected",
                "code": "malformed",
                "detail": str(exc),
            }
        result = {"tx_id": tx.tx_id.hex(), "height": None, "detail": ""}
        with self.lock:
            if tx.tx_id in self.committed:
                return {**result, "status": "committed", "code": "ok"}
            if not tx.signature_valid():
                return {**result, "status": "rejected", "code": "bad_signature"}
            try:
                usage_report_of(tx)
            except LedgerError as exc:
                return {**result, "status": "rejected", "code": "malformed", "detail": str(exc)}
            device = self.devices.get(tx.signer)
            if device is None:
                return {**result, "status": "rejected", "code": "unknown_device"}
            if device.revoked:
                return {**result, "status": "rejected", "code": "revoked_device"}
            self.seen.setdefault((tx.signer, tx.nonce), set()).add(tx.tx_id)
            if tx.nonce <= device.last_seq:
                return {**result, "status": "rejected", "code": "replay"}
            self.pending[tx.tx_id] = tx
            if self.commit_mode == "immediate":
                self._commit_locked()
                if tx.tx_id in self.committed:
                    return {**result, "status": "committed", "code": "ok"}
            return {**result, "status": "pending", "code": "ok"}

    def commit_pending(self) -> None:
        with self.lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        for tx in sorted(self.pending.values(), key=lambda t: (t.signer, t.nonce)):
            device = self.devices[tx.signer]
            if tx.nonce <= device.last_seq:
                continue  # a replay: dropped from the mempool, never committed
            report: UsageReport = usage_report_of(tx)
            if tx.nonce != device.last_seq + 1 or report.prev_hash != device.last_hash:
                self.anomalies.append(f"gap/fork at seq {tx.nonce}")
            self.height += 1
            self.committed[tx.tx_id] = (self.height, tx)
            device.last_seq, device.last_hash = tx.nonce, tx.tx_id
        self.pending.clear()

    def lookup(self, tx_id: bytes) -> dict[str, Any]:
        with self.lock:
            if self.commit_mode == "on_lookup":
                self._commit_locked()
            if tx_id in self.committed:
                status, height = "committed", self.committed[tx_id][0]
            elif tx_id in self.pending:
                status, height = "pending", None
            else:
                status, height = "unknown", None
        return {
            "tx_id": tx_id.hex(),
            "status": status,
            "height": height,
            "index": 0,
            "receipt": None,
        }

    def reports(self, device: bytes) -> list[tuple[int, UsageReport]]:
        """Committed reports of `device`, by seq."""
        with self.lock:
            txs = [tx for _, tx in self.committed.values() if tx.signer == device]
        return sorted((tx.nonce, usage_report_of(tx)) for tx in txs)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return super().date_time_string(time.time() + self.server.node.skew_s)

    def _answer(self, status: int, doc: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def _fault(self) -> bool:
        node = self.server.node
        node.requests += 1
        fault = node.fault
        if fault is None or fault == "wrong_ids":
            return False
        if fault == "500":
            self._answer(500, {"error": "boom"})
        elif fault == "429":
            self._answer(429, {"error": "mempool full"})
        elif fault == "garbage":
            self._answer(200, None, raw=b"\x00<html>not json")
        elif fault == "hang":
            time.sleep(node.hang_s)
            self._answer(500, {"error": "late"})
        elif fault == "drop":
            self.close_connection = True
            self.connection.close()
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(length)
        if self._fault():
            return
        node = self.server.node
        try:
            doc = codec.decode(data)
            values = doc["txs"]
        except (LedgerError, KeyError, TypeError):
            self._answer(400, {"error": "bad body"})
            return
        results = [node.ledger.submit(v) for v in values]
        if node.fault == "wrong_ids":
            for r in results:
                r["tx_id"] = "ab" * 32
        self._answer(200, {"results": results})

    def do_GET(self) -> None:
        if self._fault():
            return
        ledger = self.server.node.ledger
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v1", "txs"] and len(parts) == 3:
            self._answer(200, ledger.lookup(bytes.fromhex(parts[2])))
        elif parts[:2] == ["v1", "devices"] and len(parts) == 3:
            key = bytes.fromhex(parts[2])
            with ledger.lock:
                d = ledger.devices.get(key)
                doc = (
                    None
                    if d is None
                    else {
                        "device": key.hex(),
                        "licensee": d.licensee.hex(),
                        "sku": "cam-1",
                        "enrolled": True,
                        "revoked": d.revoked,
                        "last_seq": d.last_seq,
                        "last_hash": d.last_hash.hex(),
                    }
                )
            self._answer(404, {"error": "unknown"}) if doc is None else self._answer(200, doc)
        elif parts == ["v1", "status"]:
            self._answer(
                200,
                {
                    "chain_id": ledger.chain_id,
                    "height": ledger.height,
                    "view": 0,
                    "validators": 4,
                    "peers": 3,
                    "mempool": len(ledger.pending),
                },
            )
        else:
            self._answer(404, {"error": "no route"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    node: FakeNode


class FakeNode:
    def __init__(self, ledger: FakeLedger, port: int = 0) -> None:
        self.ledger = ledger
        self.fault: str | None = None
        self.hang_s = 1.0
        self.skew_s = 0.0
        self.requests = 0
        self._server: _Server | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.node = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
