"""The chain store appends blocks atomically and reopens to the same chain."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest

from node.ledger.state import digest_of
from node.store.chain import SCHEMA_KEY, ChainStore
from node.store.kv import LevelDBKV, MemoryKV, StoreError
from tests.factory import build_chain, expected_state, state_changes_for

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


class CountingKV(MemoryKV):
    """MemoryKV that counts state reads and can run a hook in the middle of one."""

    def __init__(self) -> None:
        super().__init__()
        self.state_gets = 0
        self.during_get = None  # called after the value is read, before it is returned

    def get(self, key: bytes) -> bytes | None:
        value = super().get(key)
        if key.startswith(b"s/"):
            self.state_gets += 1
            hook, self.during_get = self.during_get, None
            if hook is not None:
                hook()
        return value


ALL_KEYS = sorted({k for h in range(40) for k in expected_state(h)} | {b"never"})


@pytest.mark.parametrize("cache_bytes", [64 * 1024 * 1024, 400])
def test_state_reads_through_the_cache_equal_the_committed_state(cache_bytes: int) -> None:
    """Every read between commits equals the state of the prefix (values, empty values,
    deleted and never-written keys), whatever the cache holds or evicts; with room for
    everything a second pass reads nothing from the KV."""
    chain = build_chain(40)
    kv = CountingKV()
    store = ChainStore(kv, state_cache_bytes=cache_bytes)
    for h, built in enumerate(chain):
        commit(store, built)
        state = expected_state(h)
        for _ in range(2):
            assert {k: store.get_state(k) for k in ALL_KEYS} == {k: state.get(k) for k in ALL_KEYS}
        assert store._cache_bytes <= cache_bytes
    before = kv.state_gets
    assert [store.get_state(k) for k in ALL_KEYS] == [expected_state(39).get(k) for k in ALL_KEYS]
    assert (kv.state_gets == before) == (cache_bytes > 10_000)


def test_a_read_overtaken_by_a_commit_does_not_cache_the_old_value() -> None:
    """A reader gets a value from the KV, then (another thread) a commit changes that key
    before the reader fills the cache: the reader's old value must not shadow the new one."""
    chain = build_chain(3)
    kv = CountingKV()
    store = ChainStore(kv)
    commit(store, chain[0])
    commit(store, chain[1])
    key = b"k2"  # written by block 2 (rotating counter k<h % 7>)
    assert key in state_changes_for(2) and store.get_state(key) is None
    store._cache.clear()
    kv.during_get = lambda: commit(store, chain[2])
    assert store.get_state(key) is None  # the reader's value, read before the commit
    assert store.get_state(key) == expected_state(2)[key]
