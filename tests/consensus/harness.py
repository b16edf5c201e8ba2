"""A tiny synchronous harness for table-driven core tests: real Ed25519 keys, perfect
delivery in FIFO order, an application that accepts every block and hashes state."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus import (
    Committed,
    Config,
    Executed,
    FetchedBlock,
    ProposalVerdict,
    Ready,
    Receive,
    Replica,
    ServeBlocks,
    Tick,
)
from consensus.messages import Envelope, body_of, seal
from node.ledger import codec, crypto
from node.ledger.certificate import ValidatorSet

CHAIN = "alps-test"


def signers(n: int) -> list[crypto.Signer]:
    return [crypto.Signer(hashlib.sha256(f"key-{i}".encode()).digest()) for i in range(n)]


@dataclass
class Net:
    n: int = 4
    k: int = 4
    window: int = 8
    timeout: int = 10
    outstanding: int = 1
    keys: list[crypto.Signer] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    queue: deque[tuple[int, bytes, bytes]] = field(default_factory=deque)
    committed: list[list[Committed]] = field(default_factory=list)
    state: list[bytes] = field(default_factory=list)
    readys: list[list[Ready]] = field(default_factory=list)
    down: set[int] = field(default_factory=set)
    valid: bool = True
    drop: Callable[[bytes], bool] | None = None  # network filter for scripted losses
    reconfig: dict[int, ValidatorSet] = field(default_factory=dict)  # seq -> new set

    def __post_init__(self) -> None:
        self.keys = signers(self.n)
        self.vset = ValidatorSet(tuple(s.public_key for s in self.keys))
        self.replicas = [Replica(self.config(i)) for i in range(self.n)]
        self.committed = [[] for _ in range(self.n)]
        self.state = [b"" for _ in range(self.n)]
        self.readys = [[] for _ in range(self.n)]

    def config(self, i: int) -> Config:
        return Config(
            CHAIN,
            self.keys[i],
            self.vset,
            checkpoint_interval=self.k,
            watermark_window=self.window,
            view_change_timeout_ticks=self.timeout,
            retransmit_ticks=3,
            max_outstanding=self.outstanding,
        )

    def index(self, key: bytes) -> int:
        return [s.public_key for s in self.keys].index(key)

    def step(self, i: int, event: object) -> Ready:
        ready = self.replicas[i].step(event)  # type: ignore[arg-type]
        self.readys[i].append(ready)
        me = self.keys[i].public_key
        for out in ready.outbound:
            targets = [self.index(out.destination)] if out.destination else range(self.n)
            for t in targets:
                if t != i:
                    self.queue.append((t, me, out.data))
        for item in ready.to_validate:
            self.step(i, ProposalVerdict(item.view, item.seq, item.digest, self.valid))
        for c in ready.committed:
            self.committed[i].append(c)
            self.state[i] = crypto.sha256(self.state[i] + c.payload)
            self.step(i, Executed(c.seq, self.state[i], self.reconfig.get(c.seq)))
        for req in ready.to_serve:
            blocks = tuple(
                FetchedBlock(c.seq, c.payload, c.certificate)
                for c in self.committed[i]
                if req.from_seq <= c.seq <= req.to_seq
            )
            if blocks:
                self.step(i, ServeBlocks(req.requester, blocks))
        return ready

    def run(self, limit: int = 100_000) -> None:
        while self.queue and limit:
            limit -= 1
            t, sender, data = self.queue.popleft()
            if t not in self.down and not (self.drop and self.drop(data)):
                self.step(t, Receive(sender, data))
        assert limit, "message loop did not settle"

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for i in range(self.n):
                if i not in self.down:
                    self.step(i, Tick())
            self.run()

    def forge(self, i: int, body: object, payload: bytes = b"") -> bytes:
        env = seal(CHAIN, self.keys[i].public_key, self.keys[i].sign_raw, body, payload)  # type: ignore[arg-type]
        return codec.encode(env.to_value())


def decode(data: bytes) -> tuple[Envelope, object]:
    env = Envelope.from_value(codec.decode(data))
    return env, body_of(env)
