"""In-process clusters of real `Node`s (real replicas, real ledgers, real LevelDB in temp
dirs) over an in-memory peer network, for driver tests. Processes and libp2p are tested
end to end elsewhere (tests/e2e)."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import trio

import contracts_vm
from node.ledger import crypto
from node.ledger.genesis import Genesis, Params
from node.ledger.model import Member
from node.ledger.tx import Transaction, make_tx
from node.runtime.driver import Node, Settings
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV

CHAIN = "alps-runtime-test"
T0_MS = 1_767_225_600_000  # 2026-01-01


def seed(name: str) -> bytes:
    return crypto.sha256(name.encode())


class MemNet:
    """The minimal PeerNetwork twin: direct delivery, with cut links."""

    def __init__(self, hub: Hub, me: bytes) -> None:
        self.hub, self.me = hub, me
        self.tx, self.rx = trio.open_memory_channel[tuple[bytes, bytes]](10_000)

    def send(self, peer: bytes, data: bytes) -> bool:
        other = self.hub.nets.get(peer)
        if other is None or not self.hub.linked(self.me, peer):
            return False
        try:
            other.tx.send_nowait((self.me, data))
        except trio.WouldBlock:
            return False
        return True

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        pass

    def connected(self) -> list[bytes]:
        return [k for k in self.hub.nets if k != self.me and self.hub.linked(self.me, k)]


class Hub:
    def __init__(self) -> None:
        self.nets: dict[bytes, MemNet] = {}
        self.down: set[bytes] = set()

    def linked(self, a: bytes, b: bytes) -> bool:
        return a not in self.down and b not in self.down

    def open(self, key: bytes) -> MemNet:
        net = MemNet(self, key)
        self.nets[key] = net
        return net


def make_genesis(n: int = 4) -> tuple[Genesis, list[crypto.Signer], crypto.Signer]:
    validators = [crypto.Signer(seed(f"validator-{i}")) for i in range(n)]
    user = crypto.Signer(seed("member-user"))
    members = [
        Member(f"validator-{i}", v.public_key, ("validator",)) for i, v in enumerate(validators)
    ]
    members.append(Member("user", user.public_key, ("licensee",)))
    genesis = Genesis(
        CHAIN,
        T0_MS,
        tuple(members),
        tuple(v.public_key for v in validators),
        Params(contracts_vm.VM_VERSION, 2_000_000, 10_000),
    )
    return genesis, validators, user


def deposit(user: crypto.Signer, nonce: int) -> Transaction:
    body = {
        "deposit_id": f"d{nonce}",
        "currency": "EUR",
        "amount": 100,
        "reference": "",
        "counterparty": b"",
    }
    return make_tx(user, CHAIN, "account.deposit", body, nonce)


FAST = Settings(tick_ms=10, view_change_timeout_ticks=30, block_interval_ms=5, heartbeat_ms=500)


class Cluster:
    def __init__(self, tmp: pathlib.Path, n: int = 4, settings: Settings = FAST) -> None:
        self.tmp, self.settings = tmp, settings
        self.genesis, self.signers, self.user = make_genesis(n)
        self.hub = Hub()
        self.nodes: dict[int, Node] = {}
        self.scopes: dict[int, trio.CancelScope] = {}
        self.kvs: dict[int, LevelDBKV] = {}

    def key(self, i: int) -> bytes:
        return self.signers[i].public_key

    async def start(self, nursery: trio.Nursery, i: int) -> Node:
        kv = LevelDBKV(self.tmp / f"node{i}")
        self.kvs[i] = kv
        net = self.hub.open(self.key(i))
        self.hub.down.discard(self.key(i))
        node = Node(
            settings=self.settings,
            signer=self.signers[i],
            genesis=self.genesis,
            store=ChainStore(kv),
            kv=kv,
            net=net,
            inbound=net.rx,
        )
        scope = trio.CancelScope()
        self.scopes[i] = scope

        async def run() -> None:
            with scope:
                await node.run()

        nursery.start_soon(run)
        await node.started.wait()
        self.nodes[i] = node
        return node

    async def stop(self, i: int) -> None:
        """Like a crash of the process: its tasks stop, the store closes, its links drop."""
        self.hub.down.add(self.key(i))
        self.scopes[i].cancel()
        await trio.sleep(0.05)
        self.kvs[i].close()
        del self.nodes[i]

    async def wait_height(self, height: int, nodes: list[int] | None = None) -> None:
        which = nodes if nodes is not None else list(self.nodes)
        while not all(self.nodes[i].shell.height >= height for i in which):
            await trio.sleep(0.02)

    def digests_at(self, height: int) -> set[bytes]:
        out = set()
        for node in self.nodes.values():
            block = node.store.block(height)
            assert block is not None
            out.add(block.header.state_digest)
        return out
