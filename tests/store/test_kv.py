"""The KV protocol behaves the same on LevelDB and in memory."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from node.store.kv import KV, LevelDBKV, MemoryKV, StoreError


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield store
    store.close()


def test_batch_put_delete_get(kv: KV) -> None:
    kv.write([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    kv.write([(b"b", None), (b"c", b"33"), (b"missing", None)])
    assert [kv.get(k) for k in (b"a", b"b", b"c", b"missing")] == [b"1", None, b"33", None]


def test_scan_prefix_forward_reverse_and_from_start(kv: KV) -> None:
    kv.write([(b"p/" + bytes([i]), bytes([i])) for i in range(5)] + [(b"q/x", b"q"), (b"o", b"o")])
    keys = [k for k, _ in kv.scan(b"p/")]
    assert keys == [b"p/" + bytes([i]) for i in range(5)]
    assert [k for k, _ in kv.scan(b"p/", reverse=True)] == list(reversed(keys))
    assert [k for k, _ in kv.scan(b"p/", start=b"p/\x02")] == keys[2:]
    assert [k for k, _ in kv.scan(b"p/", start=b"p/\x02", reverse=True)] == keys[2::-1]
    assert [k for k, _ in kv.scan(b"")] == [b"o", *keys, b"q/x"]


def test_memory_crash_loses_only_unsynced_writes() -> None:
    kv = MemoryKV()
    kv.write([(b"a", b"1")], sync=True)
    kv.write([(b"b", b"2")], sync=False)
    kv.crash()
    assert kv.get(b"a") == b"1" and kv.get(b"b") is None
    assert [k for k, _ in kv.scan(b"")] == [b"a"]


def test_leveldb_open_error_is_typed(tmp_path: pathlib.Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(StoreError):
        LevelDBKV(not_a_dir / "db")


@pytest.mark.parametrize("compression", ["snappy", "none"])
def test_leveldb_tables_with_and_without_compression_read_back(
    tmp_path: pathlib.Path, compression: str
) -> None:
    """config.toml [store] compression: both settings store and reopen the same data (a
    store written with one can be reopened with the other: LevelDB marks each table)."""
    kv = LevelDBKV(tmp_path / "db", compression=compression)
    ops = [(b"k%05d" % i, bytes([i % 251]) * 300) for i in range(5000)]
    kv.write(ops, sync=True)
    kv.close()
    other = "none" if compression == "snappy" else "snappy"
    reopened = LevelDBKV(tmp_path / "db", compression=other)
    assert [reopened.get(k) for k, _ in ops[::97]] == [v for _, v in ops[::97]]
    reopened.close()
    with pytest.raises(StoreError):
        LevelDBKV(tmp_path / "other", compression="zstd")
