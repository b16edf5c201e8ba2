"""The driver: one trio task owns the PBFT replica and applies each `Ready` in order.

Rules kept here (consensus/__init__.py is the contract):
- Only `_drive` steps the replica. Inputs arrive on one bounded channel (peer messages,
  ticks, wake-ups); follow-up inputs (verdicts, `Executed`, `ServeBlocks`) are fed before
  the next channel event.
- Per `Ready`: persist the hard state with fsync BEFORE sending; send; queue proposals
  to judge; execute committed blocks and answer `Executed` only after the block is
  durable; release verdicts; log misbehaviour; serve lagging peers from the store.
- Pipelining (`blocks_in_flight`): one *execution lane* builds (primary) or judges
  (backup) one block at a time in a worker thread while the driver keeps stepping the
  replica. The primary builds block N+1 on top of its executed, uncommitted block N; a
  backup judges N+1 on top of the N it judged, and releases that verdict (PREPARE) only
  once N is committed with the hash N+1 names as parent (else it judges again on the
  committed chain). A prepared N+1 thus always has a committed predecessor, so a view
  change never carries a block whose parent will not be the committed one.
- Blocking work (LevelDB writes, block execution, signature checks) runs in worker
  threads; the event loop keeps serving the network and the API meanwhile.
- Transactions: the API and peers feed the mempool (signatures checked once, in a
  thread); locally submitted ones are forwarded in batches to every validator, so a new
  primary after a view change already holds them. The primary proposes when the lane is
  free, its parent is executed here, and either a full block is waiting or
  `block_interval_ms` passed; an empty heartbeat block every `heartbeat_ms` (only when
  nothing is in flight) keeps block time moving for period closes.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from consensus import (
    Committed,
    Config,
    Executed,
    FetchedBlock,
    Input,
    ProposalVerdict,
    Propose,
    Ready,
    Receive,
    Replica,
    ServeBlocks,
    Tick,
    ToValidate,
)
from consensus.messages import PAYLOAD_BYTES_LIMIT
from node.ledger import codec, crypto
from node.ledger.certificate import CHECKPOINT_INTERVAL, WATERMARK_WINDOW
from node.ledger.errors import LedgerError
from node.ledger.genesis import Genesis
from node.ledger.tx import MAX_TX_BYTES, Transaction
from node.runtime.interface import MempoolFull, PeerNetwork, SubmitResult
from node.runtime.ledger_shell import Built, Judged, LedgerShell, SignatureCache
from node.runtime.mempool import Mempool
from node.store.chain import ChainStore
from node.store.kv import KV

HARD_STATE_KEY = b"n/replica-hard-state"
MSG_CONSENSUS = 0x01
MSG_TXS = 0x02
WORK_SIGNAL = b"work"  # a backup's Propose only arms its view-change timer (§4.4)
PAYLOAD_BYTES_MAX = PAYLOAD_BYTES_LIMIT  # a block is one msgpack bin in a PRE-PREPARE
INGEST_BATCHES_MAX = 64  # forwarded batches verified in one worker job
BLOCK_ENVELOPE_BYTES = 4096  # a block's header and map/array framing around its txs

log = logging.getLogger("alps.node")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime knobs (config.toml [consensus], [mempool], [block])."""

    tick_ms: int = 50
    view_change_timeout_ticks: int = 40
    mempool_max: int = 50_000
    forward_batch_max: int = 1000
    forward_interval_ms: int = 20
    block_max_txs: int = 2000
    block_interval_ms: int = 50
    heartbeat_ms: int = 2000
    clock_drift_ms: int = 10_000
    events_max: int = 4096
    tx_batches_max: int = 256
    waiters_max: int = 20_000
    mempool_ttl_s: int = 600
    blocks_in_flight: int = 2  # proposals not yet committed (pipelining; 1 = none)

    def __post_init__(self) -> None:
        for name in (
            "tick_ms",
            "mempool_max",
            "forward_batch_max",
            "block_max_txs",
            "blocks_in_flight",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


def _decode_tx_batch(body: bytes) -> list[Transaction]:
    """A peer's forwarded batch: a list of transaction encodings. Raises LedgerError."""
    items = codec.decode(body)
    if not isinstance(items, list) or not all(isinstance(i, bytes) for i in items):
        raise LedgerError("malformed", "transaction batch is not a list of bytes")
    return [Transaction.decode_tx(item) for item in items]


class _Wake:
    """Something changed outside the replica (transactions arrived, a timer fired)."""


WAKE = _Wake()


@dataclass(slots=True)
class _LaneJob:
    """Work in the execution lane: build the block at `seq` (primary) or judge the
    proposal `item` (backup)."""

    kind: str  # "build" | "judge"
    seq: int
    view: int
    item: ToValidate | None = None
    picked: tuple[bytes, ...] = ()  # build: the mempool transactions it was given
    done: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True, slots=True)
class _LaneDone:
    job: _LaneJob
    outcome: Built | Judged | None  # None: the parent went away before the build ran


Event = Input | _Wake | _LaneDone


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("alps_height", "Height of the last committed block", registry=r)
        self.view = Gauge("alps_view", "Current PBFT view", registry=r)
        self.peers = Gauge("alps_peers_connected", "Validators connected", registry=r)
        self.mempool = Gauge("alps_mempool_size", "Transactions waiting", registry=r)
        self.blocks = Counter("alps_blocks_committed", "Blocks committed", registry=r)
        self.txs = Counter("alps_txs_committed", "Transactions committed", registry=r)
        self.rejected = Counter("alps_txs_refused", "Transactions refused", ["code"], registry=r)
        self.misbehaviour = Counter(
            "alps_peer_misbehaviour", "Misbehaviour seen", ["code"], registry=r
        )
        self.view_changes = Counter("alps_view_changes", "Views entered", registry=r)
        self.latency = Histogram(
            "alps_commit_latency_seconds",
            "Submission to commit, transactions submitted to this node",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
            registry=r,
        )
        self.execute = Histogram(
            "alps_block_execute_seconds", "Executing and storing one block", registry=r
        )
        self.loop_lag = Histogram(
            "alps_event_loop_lag_seconds",
            "How late the ticker woke up (event loop congestion)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
            registry=r,
        )
        self.gc_seconds = Counter(
            "alps_gc_seconds", "Time in Python's cyclic garbage collector", registry=r
        )
        self.proposals = Counter(
            "alps_proposals",
            "Blocks this node proposed, by whether their parent was committed yet",
            ["parent"],
            registry=r,
        )
        self.rejudged = Counter(
            "alps_proposals_judged_again",
            "Proposals judged on an uncommitted parent that then committed differently",
            registry=r,
        )
        self.worker_jobs = Counter(
            "alps_worker_jobs", "Jobs run in worker threads, by job", ["job"], registry=r
        )
        self.worker_cpu = Counter(
            "alps_worker_cpu_seconds",
            "CPU time of work done in worker threads, by job",
            ["job"],
            registry=r,
        )


class Node:
    """A validator node's core. Implements `NodeControl` for the HTTP API."""

    def __init__(
        self,
        *,
        settings: Settings,
        signer: crypto.Signer,
        genesis: Genesis,
        store: ChainStore,
        kv: KV,
        net: PeerNetwork,
        inbound: trio.MemoryReceiveChannel[tuple[bytes, bytes]],
        clock_ns: Callable[[], int] = time.time_ns,
        genesis_hash: str = "",
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.me = signer.public_key
        self.genesis = genesis
        self.genesis_hash = genesis_hash
        self._store = store
        self.kv = kv
        self.net = net
        self.inbound = inbound
        self.clock_ns = clock_ns
        self.sigs = SignatureCache()
        self.mempool = Mempool(settings.mempool_max)
        self.shell = LedgerShell(store, genesis, self.sigs, self.mempool.by_wire)
        self.metrics = Metrics()
        self._gc_started = 0.0
        self.verify_limiter = trio.CapacityLimiter(2)
        self._events_tx, self._events_rx = trio.open_memory_channel[Event](settings.events_max)
        self._txs_tx, self._txs_rx = trio.open_memory_channel[tuple[bytes, bytes]](
            settings.tx_batches_max
        )
        self._forward: deque[bytes] = deque()
        self._forward_ready = trio.Event()
        self._waiters: dict[bytes, trio.Event] = {}
        self._new_block = trio.Event()  # set (and replaced) whenever a block is stored
        self._pending_validation: dict[int, ToValidate] = {}  # to judge, by seq
        self._verdicts: dict[int, tuple[ToValidate, Judged]] = {}  # judged, not released
        self._lane: _LaneJob | None = None
        self._nursery: trio.Nursery | None = None
        self._signaled = False
        self._last_proposal_ns = 0
        self._last_block_ns = clock_ns()
        self._view_seen = -1
        self.started = trio.Event()
        self.replica = Replica(self._consensus_config(), kv.get(HARD_STATE_KEY))
        self.validators = self.shell.validator_set()

    # -- set-up ------------------------------------------------------------------------

    def _consensus_config(self) -> Config:
        s = self.settings
        return Config(
            chain_id=self.genesis.chain_id,
            signer=self.signer,
            validators=self.genesis.validator_set,
            checkpoint_interval=CHECKPOINT_INTERVAL,
            watermark_window=WATERMARK_WINDOW,
            view_change_timeout_ticks=s.view_change_timeout_ticks,
            retransmit_ticks=max(2, s.view_change_timeout_ticks // 4),
            payload_bytes_max=PAYLOAD_BYTES_MAX,
            max_outstanding=s.blocks_in_flight,
            digest=self._digest,
            genesis_state_digest=self.genesis.block()[0].header.state_digest,
        )

    def _digest(self, payload: bytes) -> bytes:
        try:
            return self.shell.digest(payload)
        except LedgerError:  # garbage never matches a real digest: reported as bad_payload
            return crypto.sha256(b"alps/undecodable-payload" + payload)

    async def _replay_executed(self) -> None:
        """After a restart: tell the replica what the store executed beyond its hard state
        (the store commits block and state in one batch, so nothing else is missing)."""
        prev = self._store.block(self.replica.executed_seq)
        prev_hash = prev.header.validator_set_hash if prev is not None else b""
        for height in range(self.replica.executed_seq + 1, self.shell.height + 1):
            block = self._store.block(height)
            assert block is not None
            changed = None
            if block.header.validator_set_hash != prev_hash and height > 1:
                current = self.shell.validator_set()
                if current.hash() == block.header.validator_set_hash:
                    changed = current
            prev_hash = block.header.validator_set_hash
            await self._step(Executed(height, block.header.state_digest, changed))

    # -- the tasks -----------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        log.info(
            "node starting",
            extra={"height": self.shell.height, "view": self.replica.view, "me": self.me.hex()},
        )
        await self._replay_executed()
        gc.callbacks.append(self._on_gc)
        try:
            await self._run_tasks(task_status)
        finally:
            gc.callbacks.remove(self._on_gc)

    async def _run_tasks(self, task_status: Any) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ticker)
            nursery.start_soon(self._pump_network)
            nursery.start_soon(self._ingest_peer_txs)
            nursery.start_soon(self._forwarder)
            self.started.set()
            task_status.started()
            await self._drive()

    async def _drive(self) -> None:
        while True:
            event = await self._events_rx.receive()
            if isinstance(event, _LaneDone):
                await self._lane_done(event)
            elif not isinstance(event, _Wake):
                await self._step(event)
            if self._lane is None:
                self._maybe_judge()
            if self._lane is None:
                await self._maybe_propose()

    async def _ticker(self) -> None:
        period = self.settings.tick_ms / 1000
        lag = self.metrics.loop_lag
        while True:
            started = time.perf_counter()
            await trio.sleep(period)
            lag.observe(max(0.0, time.perf_counter() - started - period))
            try:
                self._events_tx.send_nowait(Tick())
            except trio.WouldBlock:
                pass  # the driver is behind; a late tick only delays timeouts

    async def _pump_network(self) -> None:
        """Peer messages to the driver. Drains what is queued without a checkpoint per
        message (a trio checkpoint costs more than the message itself)."""
        while True:
            batch = [await self.inbound.receive()]
            while len(batch) < 512:
                try:
                    batch.append(self.inbound.receive_nowait())
                except trio.WouldBlock:
                    break
            for sender, data in batch:
                await self._route(sender, data)

    async def _route(self, sender: bytes, data: bytes) -> None:
        if not data:
            return
        kind, body = data[0], data[1:]
        if kind == MSG_CONSENSUS:
            event = Receive(sender, body)
            try:
                self._events_tx.send_nowait(event)
            except trio.WouldBlock:
                await self._events_tx.send(event)  # back-pressure on the network
        elif kind == MSG_TXS:
            try:
                self._txs_tx.send_nowait((sender, body))
            except trio.WouldBlock:
                self.metrics.rejected.labels("peer_batch_dropped").inc()
        else:
            self._misbehaving(sender, "unknown_message_kind", str(kind))

    async def _forwarder(self) -> None:
        """Send locally submitted transactions to every validator, in batches."""
        s = self.settings
        while True:
            await self._forward_ready.wait()
            await trio.sleep(s.forward_interval_ms / 1000)
            while self._forward:
                batch: list[bytes] = []
                while self._forward and len(batch) < s.forward_batch_max:
                    batch.append(self._forward.popleft())
                data = bytes([MSG_TXS]) + codec.encode(batch)
                for peer in self.replica.broadcast_peers:
                    self.net.send(peer, data)
            self._forward_ready = trio.Event()

    async def _ingest_peer_txs(self) -> None:
        """Transactions forwarded by peers into the mempool. Whatever batches are queued
        are taken together, so their signatures are checked in one worker job (each job
        costs a thread hand-off and GIL switches, ~50-100 µs of CPU)."""
        while True:
            queued = [await self._txs_rx.receive()]
            while len(queued) < INGEST_BATCHES_MAX:
                try:
                    queued.append(self._txs_rx.receive_nowait())
                except trio.WouldBlock:
                    break
            fresh: dict[bytes, tuple[bytes, Transaction]] = {}  # tx id -> (sender, tx)
            for sender, body in queued:
                try:
                    txs = _decode_tx_batch(body)
                except LedgerError as exc:
                    self._misbehaving(sender, "bad_tx_batch", exc.code)
                    continue
                for tx in txs:
                    if tx.chain_id == self.chain_id:
                        tx_id = tx.tx_id
                        if tx_id not in self.mempool and tx_id not in fresh:
                            fresh[tx_id] = (sender, tx)
            ok, bad = await self._verify([(tx_id, tx) for tx_id, (_, tx) in fresh.items()])
            for sender in sorted({fresh[tx_id][0] for tx_id, _ in bad}):
                count = sum(1 for tx_id, _ in bad if fresh[tx_id][0] == sender)
                self._misbehaving(sender, "bad_tx_signature", f"{count} transactions")
            committed = {i for i, _ in ok if self._store.tx_location(i) is not None}
            try:
                self.mempool.add_batch(
                    [p for p in ok if p[0] not in committed], self.clock_ns(), local=False
                )
            except MempoolFull:
                self.metrics.rejected.labels("mempool_full_peer").inc()
            self._wake()

    def _wake(self) -> None:
        try:
            self._events_tx.send_nowait(WAKE)
        except trio.WouldBlock:
            pass  # the driver is busy; it looks at the mempool after every event

    # -- one input and its consequences ----------------------------------------------------

    async def _step(self, first: Input) -> None:
        pending: deque[Input] = deque([first])
        while pending:
            ready = self.replica.step(pending.popleft())
            pending.extend(await self._apply(ready))
        view = self.replica.view
        if view != self._view_seen:
            if self._view_seen >= 0:
                self.metrics.view_changes.inc()
                log.warning(
                    "view changed",
                    extra={"view": view, "primary": self.validators.primary(view).hex()[:16]},
                )
            self._view_seen = view
            self.metrics.view.set(view)
            self.mempool.unmark()  # blocks proposed in an older view may never commit

    async def _apply(self, ready: Ready) -> list[Input]:
        follow: list[Input] = []
        if ready.hard_state is not None:
            data = ready.hard_state
            await self._in_worker("hard_state", self.kv.write, [(HARD_STATE_KEY, data)], True)
        for out in ready.outbound:
            data = bytes([MSG_CONSENSUS]) + out.data
            targets = (out.destination,) if out.destination else self.replica.broadcast_peers
            for peer in targets:
                self.net.send(peer, data)
        for item in ready.to_validate:
            self._pending_validation[item.seq] = item
            self._verdicts.pop(item.seq, None)  # a newer proposal for that seq
        for committed in ready.committed:
            follow.append(await self._commit(committed))
        follow.extend(self._release_verdicts())
        for bad in ready.misbehaviour:
            self._misbehaving(bad.peer, bad.code, bad.detail)
        for request in ready.to_serve:
            blocks = []
            for height in range(request.from_seq, request.to_seq + 1):
                served = self.shell.served_payload(height)
                if served is None:
                    break
                blocks.append(FetchedBlock(height, served[0], served[1]))
            if blocks:
                follow.append(ServeBlocks(request.requester, tuple(blocks)))
        return follow

    # -- the execution lane ------------------------------------------------------------

    def _start_lane(self, job: _LaneJob, fn: Callable[..., Built | Judged], *args: Any) -> None:
        assert self._nursery is not None and self._lane is None
        self._lane = job
        log.debug("lane start", extra={"seq": job.seq, "view": job.view, "job": job.kind})
        self._nursery.start_soon(self._run_lane, job, fn, args)

    async def _run_lane(
        self, job: _LaneJob, fn: Callable[..., Built | Judged], args: tuple[Any, ...]
    ) -> None:
        try:
            outcome: Built | Judged | None = await self._in_worker(job.kind, fn, *args)
        except LedgerError as exc:
            if exc.code != "not_executed":
                raise
            outcome = None  # the parent was committed away under the build: try again
        finally:
            job.done.set()
        await self._events_tx.send(_LaneDone(job, outcome))

    def _maybe_judge(self) -> None:
        """Start judging the lowest pending proposal whose parent is executed here."""
        head = self.shell.height
        for seq in sorted(self._pending_validation):
            item = self._pending_validation[seq]
            if seq <= head or item.view < self.replica.view:
                del self._pending_validation[seq]  # committed, or its view is over
                continue
            if seq > head + 1:
                try:
                    parent = self.shell.decode_block(item.payload).header.parent_hash
                except LedgerError:
                    parent = b""  # garbage: judged (invalid) once its seq is next
                if not self.shell.executed(parent):
                    return  # wait: its parent is not executed (or judged) yet
            del self._pending_validation[seq]
            primary = self.validators.primary(item.view)
            now_ms = self.clock_ns() // 1_000_000
            job = _LaneJob("judge", seq, item.view, item)
            drift = self.settings.clock_drift_ms
            self._start_lane(job, self.shell.judge, seq, item.payload, primary, now_ms, drift)
            return

    async def _lane_done(self, event: _LaneDone) -> None:
        job, outcome = event.job, event.outcome
        self._lane = None
        log.debug("lane done", extra={"seq": job.seq, "view": job.view, "job": job.kind})
        if job.kind == "judge":
            assert job.item is not None and isinstance(outcome, Judged)
            item, seq = job.item, job.seq
            newer = seq in self._pending_validation or seq in self._verdicts
            if seq <= self.shell.height or newer:
                return  # committed meanwhile, or a newer proposal for seq arrived
            if not outcome.ready:
                self._pending_validation[seq] = item
                return
            self._verdicts[seq] = (item, outcome)
            for verdict in self._release_verdicts():
                await self._step(verdict)
        else:
            assert isinstance(outcome, Built | None)
            await self._propose_built(job, outcome)

    def _release_verdicts(self) -> list[Input]:
        """Verdicts on proposals whose parent is now the committed head; a verdict judged
        on a parent that was not committed is dropped and the proposal judged again."""
        out: list[Input] = []
        head = self.shell.height
        for seq in sorted(self._verdicts):
            if seq > head + 1:
                break
            item, judged = self._verdicts.pop(seq)
            if seq <= head:
                continue
            if judged.parent_hash != self.shell.head_hash():
                self.metrics.rejudged.inc()
                self._pending_validation.setdefault(seq, item)
                continue
            if judged.why:
                log.warning(
                    "invalid proposal", extra={"view": item.view, "seq": seq, "why": judged.why}
                )
            log.debug("verdict", extra={"seq": seq, "view": item.view})
            out.append(ProposalVerdict(item.view, item.seq, item.digest, not judged.why))
        return out

    async def _commit(self, committed: Committed) -> Input:
        seq = committed.seq
        if seq <= self.shell.height:  # executed before a restart: report, do not redo
            stored = self._store.block(seq)
            assert stored is not None
            return Executed(seq, stored.header.state_digest)
        lane = self._lane
        if (
            lane is not None
            and lane.seq == seq
            and lane.item is not None
            and lane.item.digest == committed.certificate.block_hash
        ):
            await lane.done.wait()  # judging this very block: reuse its execution
        started = time.perf_counter()
        block, result = await self._in_worker(
            "commit", self.shell.commit, seq, committed.payload, committed.certificate
        )
        self.metrics.execute.observe(time.perf_counter() - started)
        now = self.clock_ns()
        tx_ids = [tx.tx_id for tx in block.txs]
        if seq % 64 == 0:
            self.mempool.expire(now, self.settings.mempool_ttl_s * 1_000_000_000)
        for entry in self.mempool.remove(tx_ids):
            if entry.local:
                self.metrics.latency.observe((now - entry.entered_ns) / 1e9)
        for tx_id in tx_ids:
            waiter = self._waiters.pop(tx_id, None)
            if waiter is not None:
                waiter.set()
        self._new_block.set()
        self._new_block = trio.Event()
        self._signaled = False
        self._last_block_ns = now
        self.metrics.height.set(seq)
        self.metrics.blocks.inc()
        self.metrics.txs.inc(len(tx_ids))
        self.metrics.mempool.set(len(self.mempool))
        log.info(
            "committed",
            extra={"view": committed.certificate.view, "seq": seq, "txs": len(tx_ids)},
        )
        changed = result.validator_set if result.validator_set != self.validators else None
        if changed is not None:
            log.warning("validator set changed", extra={"seq": seq, "n": changed.n})
            self.validators = changed
        return Executed(seq, result.state_digest, changed)

    # -- proposing -----------------------------------------------------------------------

    def _parent_for(self, seq: int) -> bytes | None:
        """The block the primary's block `seq` builds on: the head, or the block it
        accepted for seq-1 in this view if that is executed here (pipelining)."""
        head = self.shell.height
        if seq == head + 1:
            return self.shell.head_hash()
        if seq > head + 1:
            digest = self.replica.accepted_digest(seq - 1)
            if digest is not None and self.shell.executed(digest):
                return digest
        return None

    async def _maybe_propose(self) -> None:
        replica = self.replica
        if not replica.is_primary:  # cheap test first: this runs after every event
            if len(self.mempool) and not self._signaled:
                self._signaled = True
                await self._step(Propose(WORK_SIGNAL))
            return
        if not replica.can_propose:
            return
        seq = replica.next_seq
        parent = self._parent_for(seq)
        if parent is None:
            return  # the previous block is not executed here yet
        s, now = self.settings, self.clock_ns()
        waiting = self.mempool.available()
        in_flight = seq - 1 > self.shell.height
        if waiting == 0 and (in_flight or now - self._last_block_ns < s.heartbeat_ms * 1e6):
            return
        if waiting < s.block_max_txs and now - self._last_proposal_ns < s.block_interval_ms * 1e6:
            return
        self._last_proposal_ns = now
        # Choose by size, so a block is executed once: the payload is the header plus the
        # transactions' own encodings (Block.encode splices them).
        picked = self.mempool.take(s.block_max_txs, PAYLOAD_BYTES_MAX - BLOCK_ENVELOPE_BYTES)
        ids = tuple(tx_id for tx_id, _ in picked)
        self.mempool.mark_proposed(ids)
        job = _LaneJob("build", seq, replica.view, picked=ids)
        txs = [tx for _, tx in picked]
        self._start_lane(job, self.shell.build, txs, self.me, now // 1_000_000, parent)

    async def _propose_built(self, job: _LaneJob, built: Built | None) -> None:
        replica = self.replica
        if built is None:
            self.mempool.unmark(job.picked)
            return
        self.mempool.defer(tx.tx_id for tx in built.deferred)
        header = built.block.header
        still = (
            replica.can_propose
            and replica.view == job.view
            and replica.next_seq == header.height
            and self._parent_for(header.height) == header.parent_hash
            and len(built.payload) <= PAYLOAD_BYTES_MAX
        )
        empty_early = (
            not built.block.txs
            and job.picked
            and self.clock_ns() - self._last_block_ns < self.settings.heartbeat_ms * 1e6
        )
        if not still or empty_early:  # the view or the chain moved, or all was deferred
            self.mempool.unmark(job.picked)
            return
        log.debug("proposing", extra={"seq": header.height, "txs": len(built.block.txs)})
        parent = "committed" if header.height == self.shell.height + 1 else "uncommitted"
        self.metrics.proposals.labels(parent).inc()
        await self._step(Propose(built.payload))

    # -- misc --------------------------------------------------------------------------------

    def _on_gc(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.metrics.gc_seconds.inc(time.perf_counter() - self._gc_started)

    async def _in_worker(
        self,
        job: str,
        fn: Callable[..., T],
        *args: Any,
        limiter: trio.CapacityLimiter | None = None,
    ) -> T:
        """Run blocking `fn(*args)` in a worker thread; its CPU time counts under `job`
        (`alps_worker_cpu_seconds_total`), so the event loop's share is the rest."""
        counter = self.metrics.worker_cpu.labels(job)
        self.metrics.worker_jobs.labels(job).inc()

        def timed() -> T:
            started = time.thread_time()
            try:
                return fn(*args)
            finally:
                counter.inc(time.thread_time() - started)

        return await trio.to_thread.run_sync(timed, limiter=limiter)

    def _misbehaving(self, peer: bytes, code: str, detail: str = "") -> None:
        self.metrics.misbehaviour.labels(code).inc()
        log.warning(
            "peer misbehaviour", extra={"peer": peer.hex()[:16], "code": code, "detail": detail}
        )

    async def _verify(
        self, pairs: Sequence[tuple[bytes, Transaction]]
    ) -> tuple[list[tuple[bytes, Transaction]], list[tuple[bytes, Transaction]]]:
        if not pairs:
            return [], []

        def check() -> list[bool]:
            return [self.sigs.check(tx, tx_id) for tx_id, tx in pairs]

        verdicts = await self._in_worker("verify", check, limiter=self.verify_limiter)
        ok = [p for p, v in zip(pairs, verdicts, strict=True) if v]
        bad = [p for p, v in zip(pairs, verdicts, strict=True) if not v]
        return ok, bad

    # -- NodeControl -----------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def store(self) -> ChainStore:
        return self._store

    async def submit(self, txs: Sequence[Transaction]) -> list[SubmitResult]:
        results: list[SubmitResult | None] = [None] * len(txs)
        candidates: list[tuple[int, bytes, Transaction]] = []
        seen: set[bytes] = set()
        for i, tx in enumerate(txs):
            tx_id = tx.tx_id
            if tx.chain_id != self.chain_id:
                results[i] = SubmitResult(tx_id, "rejected", "wrong_chain", tx.chain_id)
            elif len(tx.encode()) > MAX_TX_BYTES:
                results[i] = SubmitResult(tx_id, "rejected", "too_large")
            elif tx_id in seen:
                results[i] = SubmitResult(tx_id, "pending", "ok")
            else:
                # the store first: a block is stored before its txs leave the mempool
                found = self.shell.receipt(tx_id)
                if found is not None and found[2].accepted:
                    results[i] = SubmitResult(tx_id, "committed", "ok", "", found[0])
                elif tx_id in self.mempool:
                    results[i] = SubmitResult(tx_id, "pending", "ok")
                else:
                    seen.add(tx_id)
                    candidates.append((i, tx_id, tx))
        if len(candidates) > self.mempool.room():
            self.metrics.rejected.labels("mempool_full").inc(len(candidates))
            raise MempoolFull(retry_after_s=1)
        ok, bad = await self._verify([(tx_id, tx) for _, tx_id, tx in candidates])
        bad_ids = {tx_id for tx_id, _ in bad}
        self.mempool.add_batch(ok, self.clock_ns(), local=True)  # may raise MempoolFull
        for i, tx_id, _tx in candidates:
            if tx_id in bad_ids:
                results[i] = SubmitResult(tx_id, "rejected", "bad_signature")
                self.metrics.rejected.labels("bad_signature").inc()
            else:
                results[i] = SubmitResult(tx_id, "pending", "ok")
        if ok:
            self._forward.extend(tx.encode() for _, tx in ok)
            self._forward_ready.set()
            self.metrics.mempool.set(len(self.mempool))
            self._wake()
        return [r for r in results if r is not None]

    async def wait_height(self, height: int, timeout_s: float) -> bool:
        with trio.move_on_after(timeout_s):
            while self.shell.height < height:
                await self._new_block.wait()
        return self.shell.height >= height

    def is_pending(self, tx_id: bytes) -> bool:
        return tx_id in self.mempool

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> int | None:
        loc = self._store.tx_location(tx_id)
        if loc is None and len(self._waiters) < self.settings.waiters_max:
            waiter = self._waiters.setdefault(tx_id, trio.Event())
            with trio.move_on_after(timeout_s):
                await waiter.wait()
            loc = self._store.tx_location(tx_id)
        return loc[0] if loc is not None else None

    def status(self) -> dict[str, Any]:
        replica = self.replica
        peers = self.net.connected()
        self.metrics.peers.set(len(peers))
        return {
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "node": self.me.hex(),
            "height": self.shell.height,
            "view": replica.view,
            "primary": self.validators.primary(replica.view).hex(),
            "is_primary": replica.is_primary,
            "validators": [v.hex() for v in self.validators.validators],
            "peers": sorted(p.hex() for p in peers),
            "mempool": len(self.mempool),
            "mempool_max": self.mempool.size_max,
            "syncing": replica.executed_seq < replica.catch_up_target,
        }

    def metrics_text(self) -> bytes:
        self.metrics.peers.set(len(self.net.connected()))
        self.metrics.mempool.set(len(self.mempool))
        return generate_latest(self.metrics.registry)
