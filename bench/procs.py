"""Real node processes on 127.0.0.1: a testnet made with `alps testnet`, each node
started as `python -m cli node start`, driven over HTTP. Used by the end-to-end tests
(tests/e2e) and the cluster benchmark (bench/cluster.py).

Every process started here runs in its own process group, is tracked, and is killed at
teardown (the group, so nothing it spawned survives); every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cli.demo_procs import free_block
from node.config import NodeConfig, load_config, write_config
from node.keys import load_signer
from node.ledger import codec
from node.ledger.crypto import Signer
from node.ledger.tx import Transaction, make_tx

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port_block(count: int) -> int:
    """A base port with `count` consecutive ports free right now (best effort), below the
    ephemeral range (cli.demo_procs.free_block says why)."""
    return free_block(count, None, os.getpid() ^ time.time_ns())


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status, self.body = status, body


def http(
    url: str,
    data: bytes | None = None,
    content_type: str = "application/msgpack",
    timeout: float = 10,
) -> Any:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise HttpError(exc.code, exc.read()) from None
    return json.loads(body) if body else None


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
            last = None
        except (OSError, HttpError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" ({last})" if last else "")
    )


@dataclasses.dataclass
class NodeProc:
    index: int
    home: pathlib.Path
    api: str
    key: bytes
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # extra, e.g. ALPS_PROFILE

    @property
    def log_path(self) -> pathlib.Path:
        return self.home / "node.log"

    def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Start the node in its own process group (signals reach the whole group)."""
        assert self.proc is None or self.proc.poll() is not None
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env, **(extra_env or {})}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "node", "start", "--home", str(self.home)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a group
        )
        log.close()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9 the node's process group (a no-op once it has exited)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, timeout: float = 10) -> Any:
        return http(self.api + path, timeout=timeout)

    def post_txs(self, txs: Sequence[Transaction], wait_s: float | None = None) -> Any:
        body = codec.encode({"txs": [tx.to_value() for tx in txs]})
        query = f"?wait_s={wait_s}" if wait_s is not None else ""
        return http(self.api + "/v1/txs" + query, body, timeout=30 + (wait_s or 0))

    def height(self) -> int:
        return int(self.get("/v1/status")["height"])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Testnet:
    __test__ = False  # not a test class (pytest collects Test*)

    """n validators from `alps testnet`, with fast consensus timing for tests; `tune` may
    change each node's config further (the benchmark's [block] and [mempool] knobs)."""

    def __init__(
        self,
        root: pathlib.Path,
        n: int = 4,
        tick_ms: int = 20,
        timeout_ticks: int = 50,
        *,
        chain_id: str = "alps-e2e",
        tune: Callable[[NodeConfig], NodeConfig] | None = None,
    ) -> None:
        self.root = root
        base = free_port_block(3 * n)  # one block, so libp2p and API ports cannot overlap
        api_base = base + n
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "testnet",
                "--validators",
                str(n),
                "--dir",
                str(root),
                "--base-port",
                str(base),
                "--api-base-port",
                str(api_base),
                "--chain-id",
                chain_id,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        self.nodes: list[NodeProc] = []
        for i in range(n):
            home = root / f"node-{i}"
            cfg = load_config(home)
            cfg = dataclasses.replace(
                cfg,
                consensus=dataclasses.replace(
                    cfg.consensus, tick_ms=tick_ms, view_change_timeout_ticks=timeout_ticks
                ),
                block=dataclasses.replace(cfg.block, interval_ms=20),
            )
            write_config(tune(cfg) if tune is not None else cfg)
            host, port = cfg.api.listen_host_port
            self.nodes.append(
                NodeProc(i, home, f"http://{host}:{port}", load_signer(cfg.key_path).public_key)
            )
        self.chain_id = load_config(root / "node-0").node.chain_id

    def member(self, name: str) -> Signer:
        return load_signer(self.root / "members" / f"{name}.json")

    def start_all(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            wait_for(
                f"node {node.index} API", lambda node=node: node.get("/health") is not None, 30
            )

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def primary(self) -> NodeProc:
        for node in self.nodes:
            if node.alive():
                try:
                    status = node.get("/v1/status", timeout=2)
                except (OSError, HttpError):
                    continue
                key = bytes.fromhex(status["primary"])
                return next(n for n in self.nodes if n.key == key)
        raise AssertionError("no live node answers")

    def deposits(self, member: str, first_nonce: int, count: int) -> list[Transaction]:
        signer = self.member(member)
        return [
            make_tx(
                signer,
                self.chain_id,
                "account.deposit",
                {
                    "deposit_id": f"{member}-{n}",
                    "currency": "EUR",
                    "amount": 100,
                    "reference": "",
                    "counterparty": b"",
                },
                n,
            )
            for n in range(first_nonce, first_nonce + count)
        ]

    def state_digest(self, node: NodeProc, height: int) -> str:
        return str(node.get(f"/v1/blocks/{height}")["state_digest"])
