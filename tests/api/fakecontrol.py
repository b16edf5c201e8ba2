"""A twin of the driver behind the `NodeControl` seam: a real ChainStore, a mempool that
is a set, and knobs for the answers the API must handle (a full mempool)."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from node.ledger.tx import Transaction
from node.runtime.interface import MempoolFull, SubmitResult
from node.store.chain import ChainStore

POLL_S = 0.01


class FakeControl:
    def __init__(self, store: ChainStore, chain_id: str) -> None:
        self._store = store
        self._chain_id = chain_id
        self.submitted: list[list[Transaction]] = []  # every batch that reached submit()
        self.pending: dict[bytes, Transaction] = {}
        self.mempool_full_retry_s: int | None = None
        self.peers = ["ab" * 32]
        self.metrics = b"# TYPE alps_height gauge\nalps_height 15\n"
        self.syncing = False

    @property
    def chain_id(self) -> str:
        return self._chain_id

    @property
    def store(self) -> ChainStore:
        return self._store

    async def submit(self, txs: Sequence[Transaction]) -> list[SubmitResult]:
        self.submitted.append(list(txs))
        if self.mempool_full_retry_s is not None:
            raise MempoolFull(self.mempool_full_retry_s)
        return [self._one(tx) for tx in txs]

    def _one(self, tx: Transaction) -> SubmitResult:
        location = self._store.tx_location(tx.tx_id)
        if location is not None:
            return SubmitResult(tx.tx_id, "committed", "ok", "", location[0])
        if tx.chain_id != self._chain_id:
            return SubmitResult(tx.tx_id, "rejected", "wrong_chain", tx.chain_id)
        if not tx.signature_valid():
            return SubmitResult(tx.tx_id, "rejected", "bad_signature")
        self.pending[tx.tx_id] = tx
        return SubmitResult(tx.tx_id, "pending", "ok")

    def is_pending(self, tx_id: bytes) -> bool:
        return tx_id in self.pending and self._store.tx_location(tx_id) is None

    async def wait_height(self, height: int, timeout_s: float) -> bool:
        def reached() -> bool:
            head = self._store.head()
            return head is not None and head.height >= height

        with trio.move_on_after(timeout_s):
            while not reached():
                await trio.sleep(POLL_S)
        return reached()

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> int | None:
        with trio.move_on_after(timeout_s):
            while True:
                location = self._store.tx_location(tx_id)
                if location is not None:
                    return location[0]
                await trio.sleep(POLL_S)
        return None

    def status(self) -> dict[str, object]:
        head = self._store.head()
        return {
            "chain_id": self._chain_id,
            "height": head.height if head else -1,
            "view": 0,
            "primary": "00" * 32,
            "validators": ["11" * 32, "22" * 32],
            "peers": self.peers,
            "mempool": len(self.pending),
            "mempool_max": 10_000,
            "syncing": self.syncing,
            "genesis_hash": "33" * 32,
        }

    def metrics_text(self) -> bytes:
        return self.metrics
