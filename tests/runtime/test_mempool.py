"""The mempool: bounded, all-or-nothing batches, FIFO, deferral and expiry."""

from __future__ import annotations

import pytest

from node.runtime.interface import MempoolFull
from node.runtime.mempool import Mempool
from tests.runtime.cluster import deposit, make_genesis

_, _, USER = make_genesis(1)
TXS = [(tx.tx_id, tx) for tx in (deposit(USER, n) for n in range(1, 9))]


def test_batches_are_all_or_nothing_and_deduplicated() -> None:
    pool = Mempool(size_max=5)
    assert pool.add_batch(TXS[:3], 0, local=True) == [t for t, _ in TXS[:3]]
    assert pool.add_batch(TXS[:3] + TXS[3:5], 1, local=True) == [t for t, _ in TXS[3:5]]
    with pytest.raises(MempoolFull):
        pool.add_batch(TXS[5:7], 2, local=True)
    assert len(pool) == 5 and TXS[5][0] not in pool


def test_take_is_fifo_and_defer_moves_to_the_back_then_drops() -> None:
    pool = Mempool(size_max=10, deferrals_max=1)
    pool.add_batch(TXS[:4], 0, local=False)
    assert [t for t, _ in pool.take(2)] == [TXS[0][0], TXS[1][0]]
    pool.defer([TXS[0][0]])
    assert [t for t, _ in pool.take(4)] == [TXS[1][0], TXS[2][0], TXS[3][0], TXS[0][0]]
    pool.defer([TXS[0][0]])  # second deferral: over the limit
    assert TXS[0][0] not in pool and pool.dropped == 1


def test_take_stops_at_the_first_transaction_over_the_byte_budget() -> None:
    pool = Mempool(size_max=10)
    pool.add_batch(TXS[:4], 0, local=False)
    sizes = [len(tx.encode()) for _, tx in TXS[:4]]
    two = sizes[0] + sizes[1]
    assert [t for t, _ in pool.take(10, two)] == [TXS[0][0], TXS[1][0]]
    assert [t for t, _ in pool.take(10, two + sizes[2] - 1)] == [TXS[0][0], TXS[1][0]]
    assert [t for t, _ in pool.take(1, 10**9)] == [TXS[0][0]]
    assert pool.take(10, sizes[0] - 1) == []


def test_expire_drops_only_old_entries_and_remove_returns_entries() -> None:
    pool = Mempool(size_max=10)
    pool.add_batch(TXS[:2], 0, local=True)
    pool.add_batch(TXS[2:4], 100, local=True)
    assert pool.expire(now_ns=150, ttl_ns=60) == 2
    assert [t for t, _ in pool.take(10)] == [TXS[2][0], TXS[3][0]]
    entries = pool.remove([TXS[2][0], TXS[7][0]])
    assert [e.tx for e in entries] == [TXS[2][1]] and len(pool) == 1


def test_transactions_are_found_by_their_encoding_while_they_wait() -> None:
    pool = Mempool(size_max=10, deferrals_max=0)
    pool.add_batch(TXS[:4], 0, local=True)
    assert [pool.by_wire(tx.encode()) for _, tx in TXS[:5]] == [tx for _, tx in TXS[:4]] + [None]
    pool.remove([TXS[0][0]])
    pool.expire(now_ns=10, ttl_ns=5)  # everything is older than 5 ns
    assert pool.by_wire(TXS[1][1].encode()) is None and len(pool) == 0
    pool.add_batch(TXS[4:6], 20, local=True)
    pool.defer([TXS[4][0]])  # over deferrals_max: dropped
    assert pool.by_wire(TXS[4][1].encode()) is None
    assert pool.by_wire(TXS[5][1].encode()) is TXS[5][1]
