"""A small HTTP client for the node API (docs/api.md), and signed submission.

Rules kept here:
- Standard library only (http.client, one keep-alive connection per client): the CLI
  needs no HTTP dependency, like the device agent.
- Every failure is a `NodeError` (a one-line click error, exit 1) that says which kind it
  is: the node is unreachable or timed out, it refused the request (4xx, with the node's
  error code and detail), it failed (5xx), or it answered something that is not the
  contract. Answers are read up to `ANSWER_BYTES_MAX`.
- A transaction is signed with the member's key, for the node's own chain id, with nonce
  = the member's last executed nonce + 1 as the node reports it (GET /v1/members/<key>),
  and submitted with `wait_s` so the caller learns whether it committed and how.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

import click

from node.ledger import codec, crypto
from node.ledger.tx import Transaction, make_tx

DEFAULT_NODE = "http://127.0.0.1:8700"
DEFAULT_TIMEOUT_S = 10.0
ANSWER_BYTES_MAX = 16 * 1024 * 1024
WAIT_S_MAX = 60.0


class NodeError(click.ClickException):
    """A node that cannot be reached, refuses, fails, or breaks the contract.

    `kind`: unreachable | timeout | refused | server_error | bad_answer | busy;
    `status`: the HTTP status (0 when there was no answer); `code`: the node's error code.
    """

    def __init__(self, kind: str, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code


def node_url(url: str | None) -> str:
    """The node URL: the argument, else $ALPS_NODE, else the local default."""
    chosen = url or os.environ.get("ALPS_NODE") or DEFAULT_NODE
    parts = urllib.parse.urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{chosen!r} is not an http(s)://host:port URL", param_hint="--node"
        )
    return chosen.rstrip("/")


class NodeClient:
    """One node endpoint. Not thread-safe; `close()` (or `with`) ends the connection."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = node_url(url)
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._chain_id: str | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port or (443 if self._https else 80)

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- transport ---------------------------------------------------------------------

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=timeout_s)
        self._conn.timeout = timeout_s
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout_s)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of one exchange; NodeError if there was none.
        A request is retried once on a kept-alive connection the server had closed (GETs
        are idempotent; resubmitting a transaction is harmless: same id, deduplicated)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        target = self._prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json, application/msgpack"}
        if body is not None:
            headers["Content-Type"] = "application/msgpack"
        attempts = 2
        for attempt in range(attempts):
            conn = self._connection(timeout_s or self.timeout_s)
            try:
                conn.request(method, target, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read(ANSWER_BYTES_MAX + 1)
                return answer.status, answer.getheader("Content-Type") or "", data
            except TimeoutError as exc:
                self.close()
                raise NodeError(
                    "timeout",
                    f"the node at {self.url} did not answer {method} {path} "
                    f"within {timeout_s or self.timeout_s:g} s",
                ) from exc
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt + 1 < attempts:
                    continue
                raise self._unreachable(exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc) from exc
        raise AssertionError("unreachable")

    def _unreachable(self, exc: BaseException) -> NodeError:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return NodeError(
            "unreachable", f"cannot reach the node at {self.url}: {why} (set --node or $ALPS_NODE)"
        )

    def _checked(self, method: str, path: str, status: int, data: bytes) -> bytes:
        if len(data) > ANSWER_BYTES_MAX:
            raise NodeError("bad_answer", f"{method} {path}: answer over {ANSWER_BYTES_MAX} bytes")
        if status == 200:
            return data
        code, detail = _error_fields(data)
        if status == 429:
            raise NodeError("busy", f"the node is busy ({code or 'HTTP 429'}); retry shortly", 429)
        if status >= 500:
            raise NodeError(
                "server_error",
                f"the node at {self.url} failed on {method} {path}: HTTP {status}"
                + (f" {code}: {detail}" if code else ""),
                status,
                code,
            )
        raise NodeError(
            "refused",
            f"{code or f'HTTP {status}'}: {detail or method + ' ' + path}",
            status,
            code,
        )

    # -- JSON and msgpack --------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON answer of GET `path`; NodeError for anything but 200 with JSON."""
        status, _, data = self.request("GET", path, params)
        return _json(self._checked("GET", path, status, data), path)

    def get_optional(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Like `get`, but None for 404 not_found."""
        try:
            return self.get(path, params)
        except NodeError as exc:
            if exc.status == 404 and exc.code == "not_found":
                return None
            raise

    def get_msgpack(self, path: str) -> Any:
        status, ctype, data = self.request("GET", path)
        body = self._checked("GET", path, status, data)
        if "msgpack" not in ctype:
            raise NodeError("bad_answer", f"GET {path}: expected msgpack, got {ctype or 'none'}")
        try:
            return codec.decode(body)
        except Exception as exc:
            raise NodeError("bad_answer", f"GET {path}: undecodable msgpack ({exc})") from exc

    def pages(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a paged list (`limit`/`after`/`next`), at most 1,000 pages."""
        items: list[Any] = []
        after: str | None = None
        for _ in range(1000):
            doc = self.get(path, {**(params or {}), "limit": 1000, "after": after})
            items.extend(_field(doc, key, list, path))
            after = doc.get("next")
            if after is None:
                return items
        raise NodeError("bad_answer", f"GET {path}: more than 1,000 pages")

    def post_txs(self, txs: list[Transaction], wait_s: float) -> list[dict[str, Any]]:
        """Submit a batch; one result dict per transaction (docs/api.md, Submit)."""
        path = "/v1/txs"
        body = codec.encode({"txs": [tx.to_value() for tx in txs]})
        params = {"wait_s": f"{wait_s:g}"} if wait_s > 0 else None
        status, _, data = self.request(
            "POST", path, params, body, timeout_s=self.timeout_s + wait_s
        )
        doc = _json(self._checked("POST", path, status, data), path)
        results = _field(doc, "results", list, path)
        if len(results) != len(txs) or any(
            not isinstance(r, dict) or r.get("tx_id") != tx.tx_id.hex()
            for r, tx in zip(results, txs, strict=False)
        ):
            raise NodeError("bad_answer", "POST /v1/txs: results do not match the batch")
        return list(results)

    # -- the few answers every command needs -------------------------------------------

    def chain_id(self) -> str:
        if self._chain_id is None:
            self._chain_id = str(_field(self.get("/v1/status"), "chain_id", str, "/v1/status"))
        return self._chain_id

    def member(self, key: bytes) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.get_optional(f"/v1/members/{key.hex()}")
        return found


def _json(data: bytes, path: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise NodeError("bad_answer", f"{path}: the node's answer is not JSON") from exc


def _field(doc: Any, key: str, kind: type, path: str) -> Any:
    if not isinstance(doc, dict) or not isinstance(doc.get(key), kind):
        raise NodeError("bad_answer", f"{path}: answer has no {key!r} {kind.__name__}")
    return doc[key]


def _error_fields(data: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(data)
    except ValueError:
        return "", data[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        return str(doc.get("error", "")), str(doc.get("detail", ""))
    return "", ""


# -- submitting ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a submitted transaction."""

    tx_id: str
    tx_type: str
    status: str  # committed | rejected | pending
    code: str  # "ok" or the receipt's / the node's rejection code
    detail: str
    height: int | None

    @property
    def ok(self) -> bool:
        return self.status == "committed" and self.code == "ok"

    def describe(self) -> str:
        where = f" at height {self.height}" if self.height is not None else ""
        if self.ok:
            return f"{self.tx_type} committed{where} (tx {self.tx_id})"
        if self.status == "pending":
            return (
                f"{self.tx_type} not committed yet (tx {self.tx_id}); "
                f"check later with: alps tx {self.tx_id}"
            )
        verb = "rejected" + where if self.status == "committed" else "refused by the node"
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.tx_type} {verb}: {self.code}{detail} (tx {self.tx_id})"


class Submitter:
    """Signs transactions with one member key and submits them to one node."""

    def __init__(self, client: NodeClient, signer: crypto.Signer, key_label: str = "") -> None:
        self.client = client
        self.signer = signer
        self.key_label = key_label or signer.public_key.hex()
        self._next_nonce: int | None = None

    def next_nonce(self) -> int:
        if self._next_nonce is None:
            record = self.client.member(self.signer.public_key)
            if record is None:
                raise NodeError(
                    "refused",
                    f"key {self.key_label} ({self.signer.public_key.hex()[:16]}...) is not a "
                    f"member of chain {self.client.chain_id()}",
                    404,
                    "not_a_member",
                )
            nonce = record.get("nonce")
            if type(nonce) is not int or nonce < 0:
                raise NodeError("bad_answer", "GET /v1/members/<key>: no nonce")
            self._next_nonce = nonce + 1
        return self._next_nonce

    def sign(self, tx_type: str, body: dict[str, Any]) -> Transaction:
        tx = make_tx(self.signer, self.client.chain_id(), tx_type, body, self.next_nonce())
        self._next_nonce = tx.nonce + 1
        return tx

    def submit(self, tx_type: str, body: dict[str, Any], wait_s: float) -> Outcome:
        return submit_tx(self.client, self.sign(tx_type, body), wait_s)


def submit_tx(client: NodeClient, tx: Transaction, wait_s: float) -> Outcome:
    (result,) = client.post_txs([tx], min(wait_s, WAIT_S_MAX))
    height = result.get("height")
    return Outcome(
        tx_id=tx.tx_id.hex(),
        tx_type=tx.tx_type,
        status=str(result.get("status", "")),
        code=str(result.get("code", "")),
        detail=str(result.get("detail", "")),
        height=height if type(height) is int else None,
    )
