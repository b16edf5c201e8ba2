"""HTTP client for the node API (docs/api.md), standard library only.

Rule kept here: every answer is checked against the contract before the agent acts on it.
Anything else becomes a typed NodeError: NodeUnavailable (refused, reset, timeout, 5xx),
NodeBusy (429 with Retry-After), NodeGarbage (bad JSON, wrong shape, ids that are not
the ones we sent). Answers are read up to a bound; the server's `Date` header gives the
clock skew, which the caller logs.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from device_agent.errors import NodeBusy, NodeGarbage, NodeUnavailable
from node.ledger import codec
from node.ledger.tx import Transaction

ANSWER_BYTES_MAX = 1024 * 1024
TX_STATUSES = ("pending", "committed", "rejected")
LOOKUP_STATUSES = ("pending", "committed", "unknown")


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_id: bytes
    status: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    enrolled: bool
    revoked: bool
    last_seq: int
    last_hash: bytes


class NodeClient:
    """One node endpoint (`http://host:port` or https). A new connection per request."""

    def __init__(self, endpoint: str, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bad endpoint {endpoint!r}")
        self.endpoint = endpoint
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.skew_s: float | None = None  # server clock minus ours, from the Date header

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> tuple[int, Any]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout_s)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/msgpack"
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise NodeUnavailable("unreachable", f"{self.endpoint}: {exc!r}") from exc
        if before_send is not None:
            try:
                before_send()  # only now can the node receive anything
            except BaseException:
                conn.close()
                raise
        try:
            conn.request(method, self._prefix + path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read(ANSWER_BYTES_MAX + 1)
            status, retry_after, date = (
                answer.status,
                answer.getheader("Retry-After"),
                answer.getheader("Date"),
            )
        except (OSError, http.client.HTTPException) as exc:
            raise NodeUnavailable("unreachable", f"{self.endpoint}: {exc!r}") from exc
        finally:
            conn.close()
        self._note_date(date)
        if status == 429:
            raise NodeBusy("busy", f"{self.endpoint}: 429", _retry_after(retry_after))
        if status >= 500:
            raise NodeUnavailable("server_error", f"{self.endpoint}: HTTP {status}")
        if len(data) > ANSWER_BYTES_MAX:
            raise NodeGarbage("oversize", f"{self.endpoint}: answer over {ANSWER_BYTES_MAX} B")
        if status == 404:
            return status, None
        if status != 200:
            raise NodeGarbage("http_status", f"{self.endpoint}: HTTP {status}: {data[:200]!r}")
        try:
            return status, json.loads(data)
        except ValueError as exc:
            raise NodeGarbage("bad_json", f"{self.endpoint}: {data[:80]!r}") from exc

    def _note_date(self, date: str | None) -> None:
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        self.skew_s = server - time.time()

    def submit(
        self, txs: list[Transaction], before_send: Callable[[], None] | None = None
    ) -> list[TxResult]:
        """POST a batch; `before_send` runs once connected, before any byte is sent."""
        body = codec.encode({"txs": [tx.to_value() for tx in txs]})
        _, doc = self._request("POST", "/v1/txs", body, before_send)
        results = _field(doc, "results", list, self.endpoint)
        if len(results) != len(txs):
            raise NodeGarbage("shape", f"{self.endpoint}: {len(results)} results for {len(txs)}")
        out = []
        for tx, r in zip(txs, results, strict=True):
            status = _field(r, "status", str, self.endpoint)
            if _hex(_field(r, "tx_id", str, self.endpoint)) != tx.tx_id:
                raise NodeGarbage("wrong_id", f"{self.endpoint}: result ids do not match batch")
            if status not in TX_STATUSES:
                raise NodeGarbage("shape", f"{self.endpoint}: unknown status {status[:40]!r}")
            code = r.get("code") if isinstance(r.get("code"), str) else ""
            detail = r.get("detail") if isinstance(r.get("detail"), str) else ""
            out.append(TxResult(tx.tx_id, status, code, detail))
        return out

    def lookup(self, tx_id: bytes) -> str:
        """pending | committed | unknown"""
        status_code, doc = self._request("GET", f"/v1/txs/{tx_id.hex()}")
        if status_code == 404:
            return "unknown"
        status: str = _field(doc, "status", str, self.endpoint)
        if status not in LOOKUP_STATUSES:
            raise NodeGarbage("shape", f"{self.endpoint}: unknown status {status[:40]!r}")
        if "tx_id" in doc and doc["tx_id"] != tx_id.hex():
            raise NodeGarbage("wrong_id", f"{self.endpoint}: lookup answered another id")
        return status

    def device(self, device: bytes) -> DeviceInfo:
        status_code, doc = self._request("GET", f"/v1/devices/{device.hex()}")
        if status_code == 404:
            return DeviceInfo(False, False, 0, b"\x00" * 32)
        if _field(doc, "device", str, self.endpoint) != device.hex():
            raise NodeGarbage("wrong_id", f"{self.endpoint}: device lookup answered another key")
        last_hash = _hex(_field(doc, "last_hash", str, self.endpoint))
        last_seq = _field(doc, "last_seq", int, self.endpoint)
        if len(last_hash) != 32 or last_seq < 0:
            raise NodeGarbage("shape", f"{self.endpoint}: bad last_seq/last_hash")
        return DeviceInfo(
            _field(doc, "enrolled", bool, self.endpoint) is True,
            _field(doc, "revoked", bool, self.endpoint) is True,
            last_seq,
            last_hash,
        )


def _field(doc: Any, key: str, kind: type, endpoint: str) -> Any:
    if not isinstance(doc, dict) or key not in doc:
        raise NodeGarbage("shape", f"{endpoint}: answer lacks {key!r}")
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NodeGarbage("shape", f"{endpoint}: {key!r} is not {kind.__name__}")
    return value


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise NodeGarbage("shape", f"not hex: {text[:40]!r}") from exc


def _retry_after(header: str | None) -> float:
    try:
        return min(3600.0, max(0.0, float(header))) if header else 1.0
    except ValueError:
        return 1.0
