"""A real node API for the CLI tests: the HTTP servers of node.api.serve.serve_api over a
`NodeControl` (a cluster of real `Node`s, or a store behind the API's FakeControl), run
by trio in a background thread so the CLI's blocking HTTP client talks to it over
loopback exactly as it would to a daemon. Also: a controllable clock for the cluster
(block time decides period closes) and a tampering HTTP proxy for the audit tests."""

from __future__ import annotations

import http.server
import pathlib
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

import contracts_vm
from node.api.serve import ApiAddresses, serve_api
from node.keys import create_key_file
from node.ledger import crypto
from node.ledger.calendar import ms_of_date
from node.ledger.genesis import Genesis, Params
from node.ledger.model import Member
from node.runtime.driver import Node
from node.runtime.interface import NodeControl
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.runtime.cluster import FAST, Hub

CHAIN = "alps-cli-test"
T0_MS = ms_of_date(2026, 1, 1)
START_MS = ms_of_date(2026, 1, 10)
STARTUP_S = 60.0
MEMBERS = {"codec": ("licensor",), "oem": ("licensee",), "bank": ("bank",)}


def seed(name: str) -> bytes:
    return crypto.sha256(b"cli-test/" + name.encode())


class Clock:
    """Wall-clock time shifted to START_MS; `jump_to` moves it forward (never back)."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self._base = time.time_ns()
        self._offset = start_ms * 1_000_000
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        with self._lock:
            return self._offset + time.time_ns() - self._base

    def now_ms(self) -> int:
        return self.now_ns() // 1_000_000

    def jump_to(self, ms: int) -> None:
        with self._lock:
            now = self._offset + time.time_ns() - self._base
            self._offset += max(0, ms * 1_000_000 - now)


def make_genesis(n: int = 4) -> tuple[Genesis, list[crypto.Signer], dict[str, crypto.Signer]]:
    validators = [crypto.Signer(seed(f"validator-{i}")) for i in range(n)]
    signers = {name: crypto.Signer(seed(name)) for name in MEMBERS}
    members = [
        Member(f"validator-{i}", v.public_key, ("validator",)) for i, v in enumerate(validators)
    ]
    members += [Member(name, signers[name].public_key, roles) for name, roles in MEMBERS.items()]
    genesis = Genesis(
        CHAIN,
        T0_MS,
        tuple(members),
        tuple(v.public_key for v in validators),
        Params(contracts_vm.VM_VERSION, 2_000_000, 2_000),
    )
    return genesis, validators, signers


def write_member_keys(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Key files (mode 0600) for the genesis members plus one key that is no member."""
    paths = {}
    for name in (*MEMBERS, "stranger"):
        path = directory / f"{name}.json"
        create_key_file(path, seed(name))
        paths[name] = path
    return paths


class LiveCluster:
    """n real Nodes over an in-memory network with LevelDB stores, on one Clock."""

    def __init__(self, tmp: pathlib.Path, clock: Clock, n: int = 4) -> None:
        self.tmp, self.clock, self.n = tmp, clock, n
        self.genesis, self.validators, self.members = make_genesis(n)
        self.hub = Hub()
        self.kvs: list[LevelDBKV] = []
        self.nodes: list[Node] = []

    async def start(self, nursery: trio.Nursery) -> NodeControl:
        self.tmp.mkdir(parents=True, exist_ok=True)
        for i, signer in enumerate(self.validators):
            kv = LevelDBKV(self.tmp / f"node{i}")
            self.kvs.append(kv)
            net = self.hub.open(signer.public_key)
            node = Node(
                settings=FAST,
                signer=signer,
                genesis=self.genesis,
                store=ChainStore(kv),
                kv=kv,
                net=net,
                inbound=net.rx,
                clock_ns=self.clock.now_ns,
            )
            nursery.start_soon(node.run)
            await node.started.wait()
            self.nodes.append(node)
        return self.nodes[0]

    def close(self) -> None:
        for kv in self.kvs:
            kv.close()


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    admin_url: str


@contextmanager
def serve_in_thread(
    start: Callable[[trio.Nursery], Awaitable[NodeControl]],
    close: Callable[[], None] = lambda: None,
) -> Iterator[Served]:
    """Run `start` (which may start background tasks) and serve its NodeControl's API on
    free loopback ports until the block exits."""
    handoff: queue.Queue[Any] = queue.Queue()

    async def main() -> None:
        stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                control = await start(nursery)
                serve = partial(serve_api, control, "127.0.0.1:0", admin_listen="127.0.0.1:0")
                addresses: ApiAddresses = await nursery.start(serve)
                handoff.put((addresses, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            close()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test thread
            handoff.put(exc)

    thread = threading.Thread(target=run, name="alps-test-node", daemon=True)
    thread.start()
    item = handoff.get(timeout=STARTUP_S)
    if isinstance(item, BaseException):
        raise item
    addresses, token, stop = item
    try:
        yield Served(f"http://{addresses.public}", f"http://{addresses.admin}")
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the node thread did not stop"


# -- a tampering proxy ------------------------------------------------------------------------


Tamper = Callable[[str, bytes], bytes]  # (request path, upstream answer body) -> answer body


@contextmanager
def tampering_proxy(upstream: str, tamper: Tamper) -> Iterator[str]:
    """An HTTP server on a free loopback port that answers GETs from `upstream`, passing
    each body through `tamper` (a node that lies about some answers)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per answer (flushed per request): no Nagle stalls

        def do_GET(self) -> None:
            try:
                with urllib.request.urlopen(upstream + self.path, timeout=30) as answer:
                    status, body = answer.status, answer.read()
                    ctype = answer.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()
                ctype = exc.headers.get("Content-Type", "application/json")
            if status == 200:
                body = tamper(self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
