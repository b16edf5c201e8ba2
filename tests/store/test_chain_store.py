"""The chain store appends blocks atomically and reopens to the same chain."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import threading

import pytest

from node.ledger.state import digest_of
from node.store.chain import _MISSING, SCHEMA_KEY, ChainStore, _StateCache
from node.store.kv import LevelDBKV, MemoryKV, StoreError
from tests.factory import build_chain, expected_state

ROOT = pathlib.Path(__file__).resolve().parents[2]


def commit(store: ChainStore, built) -> None:  # type: ignore[no-untyped-def]
    store.commit_block(
        built.block, built.receipts, built.certificate, built.changes, built.accumulator
    )


def assert_store_is_prefix(store: ChainStore, chain: list) -> int:  # type: ignore[type-arg]
    """The store holds exactly blocks 0..head, with the state of that prefix."""
    head = store.head()
    if head is None:
        assert list(store.block_heights()) == []
        return -1
    h = head.height
    assert list(store.block_heights()) == list(range(h + 1))
    assert head.block_hash == chain[h].block.hash()
    for height in range(h + 1):
        assert store.block(height) == chain[height].block
        assert store.receipts(height) == chain[height].receipts
        assert store.certificate(height) == chain[height].certificate
    state = dict(store.scan_state(b""))
    assert state == expected_state(h)
    assert store.accumulator().digest() == digest_of(state) == chain[h].block.header.state_digest
    return h


def test_commit_and_reopen(tmp_path: pathlib.Path) -> None:
    chain = build_chain(12)
    store = ChainStore(LevelDBKV(tmp_path / "db"))
    for built in chain:
        commit(store, built)
    store.close()
    reopened = ChainStore(LevelDBKV(tmp_path / "db"))
    assert assert_store_is_prefix(reopened, chain) == 11
    tx = chain[7].block.txs[1]
    assert reopened.tx_location(tx.tx_id) == (7, 1)
    assert reopened.tx_location(b"\x00" * 32) is None
    reopened.close()


def test_only_the_next_block_extends_the_chain() -> None:
    chain = build_chain(4)
    store = ChainStore(MemoryKV())
    with pytest.raises(StoreError) as info:
        commit(store, chain[1])
    assert info.value.code == "not_next"
    commit(store, chain[0])
    commit(store, chain[1])
    other_fork = build_chain(4)[2]
    object.__setattr__(other_fork.block.header, "parent_hash", b"\x07" * 32)
    with pytest.raises(StoreError) as info:
        commit(store, other_fork)
    assert info.value.code == "wrong_parent"
    assert assert_store_is_prefix(store, chain) == 1


def test_incompatible_schema_is_refused(tmp_path: pathlib.Path) -> None:
    kv = LevelDBKV(tmp_path / "db")
    ChainStore(kv)
    kv.write([(SCHEMA_KEY, b"alps-chain-store/999")])
    with pytest.raises(StoreError) as info:
        ChainStore(kv)
    assert info.value.code == "incompatible_schema"
    assert "999" in str(info.value)
    kv.close()


def test_data_without_schema_is_refused() -> None:
    kv = MemoryKV()
    kv.write([(b"b/\x00", b"junk")])
    with pytest.raises(StoreError):
        ChainStore(kv)


def test_kill_9_during_commits_leaves_an_exact_prefix(tmp_path: pathlib.Path) -> None:
    """kill -9 the writer at random moments; after each restart the store is a prefix of
    the chain with exactly that prefix's state: no half-applied block."""
    chain = build_chain(400)
    path = tmp_path / "db"
    rng = random.Random(20261125)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    heights = []
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_writer", str(path)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(1, 25)):  # let it commit a few blocks, then kill mid-way
            if not proc.stdout.readline():
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        store = ChainStore(LevelDBKV(path))
        heights.append(assert_store_is_prefix(store, chain))
        store.close()
    assert heights == sorted(heights) and heights[-1] > 0


def _all_keys(upto: int) -> list[bytes]:
    return [f"k{i}".encode() for i in range(7)] + [f"h{h}".encode() for h in range(upto + 2)]


def test_cached_state_reads_follow_every_commit() -> None:
    """Reads between commits (values, absent keys, deleted keys) are cached, and every
    commit's changes reach the cache: get_state always answers what the KV holds."""
    chain = build_chain(30)
    store = ChainStore(MemoryKV())
    for height, built in enumerate(chain):
        commit(store, built)
        expected = expected_state(height)
        for _ in range(2):  # the second round is answered from the cache
            for key in _all_keys(height):
                assert store.get_state(key) == expected.get(key)
        assert len(store._state) > 0


def test_a_read_that_raced_a_commit_is_not_cached() -> None:
    chain = build_chain(2)
    store = ChainStore(MemoryKV())
    commit(store, chain[0])
    cache = store._state
    epoch = cache.epoch()
    stale = store.kv.get(b"s/k1")  # read before the commit...
    commit(store, chain[1])  # ...which changes k1
    cache.remember(b"k1", stale, epoch)  # ...remembered after it: refused
    assert store.get_state(b"k1") == expected_state(1)[b"k1"] != stale


def test_the_state_cache_is_bounded() -> None:
    class Small(_StateCache):
        MAX_ENTRIES = 4
        MAX_BYTES = 10
        MAX_VALUE_BYTES = 6

    cache = Small()
    for i in range(20):
        cache.remember(b"k%d" % i, b"v" * (i % 8), cache.epoch())
        assert len(cache) <= 2 * Small.MAX_ENTRIES
        assert cache._young_bytes <= Small.MAX_BYTES
    assert cache.lookup(b"k7") is _MISSING  # 7 bytes: never kept
    assert cache.lookup(b"k19") == b"vvv"


def test_cached_reads_under_concurrent_commits_end_coherent() -> None:
    """API threads read state while the node commits: whatever they cached, every read
    after the commits answers what the KV holds."""
    chain = build_chain(40)
    store = ChainStore(MemoryKV())
    commit(store, chain[0])
    keys = _all_keys(len(chain))
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for key in keys:
                store.get_state(key)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for built in chain[1:]:
            commit(store, built)
            expected = expected_state(built.block.header.height)
            assert [store.get_state(k) for k in keys] == [expected.get(k) for k in keys]
    finally:
        done.set()
        for thread in threads:
            thread.join()
    expected = expected_state(len(chain) - 1)
    assert [store.get_state(k) for k in keys] == [expected.get(k) for k in keys]
