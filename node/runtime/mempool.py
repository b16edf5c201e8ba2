"""The mempool: transactions waiting for a block.

Rules kept here:
- Bounded: `size_max` transactions; a batch that does not fit is refused whole
  (`MempoolFull`), never partly taken, so a client can simply retry it.
- Deduplicated by transaction id; only signature-checked transactions enter (the caller
  verifies before `add`), so the proposer never verifies twice.
- FIFO: a block takes the oldest transactions first, which keeps one signer's nonces in
  the order they were submitted. A transaction the proposer deferred (nonce not yet
  reachable) goes back to the end; after `deferrals_max` deferrals it is dropped, and
  anything older than the node's TTL is dropped on every node (`expire`).
- A transaction the primary put in a block that is not committed yet is *proposed*:
  `take` skips it, so the next block (built on top of the uncommitted one) does not
  carry it again. It is forgotten when its block commits; `unmark` (a block that was
  dropped, a view change) returns it to the pool.
- Also indexed by each transaction's encoding (`by_wire`), so a proposal's transactions
  are taken from here instead of being decoded again (node/ledger/block.py
  `Block.decode_reusing`). That lookup may run in a worker thread while the event loop
  changes the pool: a plain dict read, atomic under the GIL; a stale answer only costs a
  decode.
- No I/O and no clock of its own: entry times are passed in (for the commit-latency
  metric).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node.ledger.tx import Transaction
from node.runtime.interface import MempoolFull


@dataclass(slots=True)
class Entry:
    tx: Transaction
    entered_ns: int
    local: bool  # submitted to this node's API (counts toward its commit latency)
    deferrals: int = 0


class Mempool:
    def __init__(self, size_max: int = 50_000, deferrals_max: int = 50) -> None:
        if size_max < 1:
            raise ValueError("size_max must be >= 1")
        self.size_max = size_max
        self.deferrals_max = deferrals_max
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._wires: dict[bytes, bytes] = {}  # encoding -> tx id
        self._proposed: set[bytes] = set()  # in a block not committed yet
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def available(self) -> int:
        """Waiting transactions not in an uncommitted block."""
        return len(self._entries) - len(self._proposed)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    def room(self) -> int:
        return self.size_max - len(self._entries)

    def add_batch(
        self, txs: Sequence[tuple[bytes, Transaction]], now_ns: int, *, local: bool
    ) -> list[bytes]:
        """Add (tx_id, tx) pairs not already present; all or nothing. Returns the ids added."""
        fresh: dict[bytes, Transaction] = {}
        for tx_id, tx in txs:
            if tx_id not in self._entries:
                fresh.setdefault(tx_id, tx)
        if len(fresh) > self.room():
            raise MempoolFull(retry_after_s=1)
        for tx_id, tx in fresh.items():
            self._entries[tx_id] = Entry(tx, now_ns, local)
            self._wires[tx.encode()] = tx_id
        return list(fresh)

    def by_wire(self, raw: bytes) -> Transaction | None:
        """The waiting transaction whose encoding is `raw`, if any."""
        tx_id = self._wires.get(raw)
        entry = self._entries.get(tx_id) if tx_id is not None else None
        return entry.tx if entry is not None else None

    def _forget(self, tx_id: bytes) -> Entry | None:
        entry = self._entries.pop(tx_id, None)
        if entry is not None:
            self._wires.pop(entry.tx.encode(), None)
            self._proposed.discard(tx_id)
        return entry

    def take(self, count_max: int, bytes_max: int | None = None) -> list[tuple[bytes, Transaction]]:
        """The oldest transactions, at most `count_max` of them whose encodings add up to
        at most `bytes_max` (left in place until committed). Stops at the first one that
        does not fit, so the block keeps FIFO order."""
        out: list[tuple[bytes, Transaction]] = []
        room = bytes_max
        proposed = self._proposed
        for tx_id, entry in self._entries.items():
            if len(out) >= count_max:
                break
            if tx_id in proposed:
                continue
            if room is not None:
                room -= len(entry.tx.encode())
                if room < 0:
                    break
            out.append((tx_id, entry.tx))
        return out

    def mark_proposed(self, tx_ids: Iterable[bytes]) -> None:
        self._proposed.update(t for t in tx_ids if t in self._entries)

    def unmark(self, tx_ids: Iterable[bytes] | None = None) -> None:
        """Return proposed transactions (all of them if `tx_ids` is None) to the pool."""
        if tx_ids is None:
            self._proposed.clear()
        else:
            self._proposed.difference_update(tx_ids)

    def defer(self, tx_ids: Iterable[bytes]) -> None:
        for tx_id in tx_ids:
            self._proposed.discard(tx_id)
            entry = self._entries.pop(tx_id, None)
            if entry is None:
                continue
            entry.deferrals += 1
            if entry.deferrals > self.deferrals_max:
                self._wires.pop(entry.tx.encode(), None)
                self.dropped += 1
                continue
            self._entries[tx_id] = entry

    def expire(self, now_ns: int, ttl_ns: int) -> int:
        """Drop transactions waiting longer than `ttl_ns` (e.g. a nonce gap that never
        fills: the primary defers it, the other validators only ever see it wait)."""
        old = [tx_id for tx_id, e in self._entries.items() if now_ns - e.entered_ns > ttl_ns]
        for tx_id in old:
            self._forget(tx_id)
        self.dropped += len(old)
        return len(old)

    def remove(self, tx_ids: Iterable[bytes]) -> list[Entry]:
        """Forget committed transactions; returns their entries (for latency metrics)."""
        out = []
        for tx_id in tx_ids:
            entry = self._forget(tx_id)
            if entry is not None:
                out.append(entry)
        return out
