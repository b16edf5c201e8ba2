"""cli/client.py against a scripted HTTP server on loopback: each kind of failure is one
typed NodeError with a message that says what happened (and `alps` prints it as one
line), and answers are checked against the contract."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cli.client import NodeClient, NodeError, node_url
from tests.cli.helpers import one_line_error, run

Script = dict[str, tuple[int, str, bytes, float]]  # path -> (status, type, body, delay s)


@contextmanager
def scripted(script: Script) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per answer (flushed per request): no Nagle stalls

        def do_GET(self) -> None:
            status, ctype, body, delay = script.get(
                self.path.split("?")[0], (404, "application/json", b'{"error":"not_found"}', 0)
            )
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def error(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


JSON = "application/json"
SCRIPT: Script = {
    "/v1/status": (200, JSON, b'{"chain_id": "c", "height": 3}', 0),
    "/v1/licences/GONE": (404, JSON, error("not_found", "licence GONE not found"), 0),
    "/v1/licences/bad!": (400, JSON, error("bad_id", "licence_id 'bad!' is not a valid id"), 0),
    "/v1/broken": (500, JSON, error("internal", "store_inconsistent"), 0),
    "/v1/busy": (429, JSON, error("mempool_full", "full"), 0),
    "/v1/garbage": (200, JSON, b"<html>", 0),
    "/v1/slow": (200, JSON, b"{}", 2.0),
    "/v1/licences": (200, JSON, b'{"licences": [], "next": null}', 0),
}


def test_each_failure_kind_is_typed_and_says_what_happened() -> None:
    with scripted(SCRIPT) as url, NodeClient(url, timeout_s=0.5) as client:
        assert client.chain_id() == "c"
        assert client.get_optional("/v1/licences/GONE") is None
        cases = {
            "/v1/licences/GONE": ("refused", "not_found: licence GONE not found"),
            "/v1/licences/bad!": ("refused", "bad_id: licence_id 'bad!' is not a valid id"),
            "/v1/broken": ("server_error", "HTTP 500 internal: store_inconsistent"),
            "/v1/busy": ("busy", "busy"),
            "/v1/garbage": ("bad_answer", "not JSON"),
            "/v1/slow": ("timeout", "did not answer GET /v1/slow within 0.5 s"),
        }
        for path, (kind, text) in cases.items():
            with pytest.raises(NodeError) as caught:
                client.get(path)
            assert caught.value.kind == kind and text in caught.value.format_message(), path
        assert client.get("/v1/status")["height"] == 3  # usable again after a timeout


def test_unreachable_and_bad_url() -> None:
    with (
        NodeClient("http://127.0.0.1:9", timeout_s=2) as client,
        pytest.raises(NodeError) as caught,
    ):
        client.get("/v1/status")
    assert caught.value.kind == "unreachable"
    assert "cannot reach the node at http://127.0.0.1:9" in caught.value.format_message()
    with pytest.raises(Exception, match="is not an http"):
        node_url("ftp://x")


def test_cli_prints_server_failures_as_one_line() -> None:
    script = {**SCRIPT, "/v1/licences": SCRIPT["/v1/broken"]}
    with scripted(script) as url:
        line = one_line_error(run("licence", "list", "--node", url))
        assert "failed on GET /v1/licences: HTTP 500 internal: store_inconsistent" in line
        line = one_line_error(run("block", "7", "--node", url))
        assert line == "Error: no block 7"


def test_env_var_selects_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    with scripted(SCRIPT) as url:
        monkeypatch.setenv("ALPS_NODE", url)
        result = run("licence", "list", "-o", "json")
        assert result.exit_code == 0 and json.loads(result.stdout) == {"licences": []}
