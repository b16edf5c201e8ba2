"""The execution context a transaction handler runs in, and the typed rejection.

Rule kept here: a handler reads and writes state only through its `Ctx` (an overlay over
the committed state), and signals a rejection by raising `Reject`; the block executor then
discards everything the handler wrote. Events are collected per transaction for its
receipt.

Records read through `Ctx.get` may be shared between transactions and blocks (a
`RecordCache` keyed by class and stored bytes: decoding is a pure function of the two, and
a licence or a member is read by every transaction that touches it); `Ctx.put` seeds it
with the record it encodes, so bytes this process wrote are never decoded again, and
`Ctx.put_vouched` writes a record back unencoded until its bytes are read. Records are
values: never mutate a dict or list inside one in place; build a new value and `replace`
it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from node.ledger import codec
from node.ledger.errors import LedgerError
from node.ledger.records import Record
from node.ledger.state import Overlay, Pending

R = TypeVar("R", bound=Record)


class Reject(LedgerError):
    """A transaction the ledger refuses; its receipt carries `code` and `detail`."""


class ScanReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key with `prefix`, in ascending key order."""
        ...


@dataclass(frozen=True, slots=True)
class BlockInfo:
    chain_id: str
    height: int
    time_ms: int


class BlockReads:
    """The committed state as one block's execution sees it: each key is read from the
    base once per block (a licence, a bill of IP or an accrual is read by every report,
    and `Overlay.changes()` reads the old value of every written key once more).

    Coherent because the base does not change while a block executes (the shell has one
    writer, which commits only after execution). Bounded by the keys one block touches.
    Scans go straight to the base.
    """

    __slots__ = ("_base", "_values")

    def __init__(self, base: ScanReader) -> None:
        self._base = base
        self._values: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        values = self._values
        if key in values:
            return values[key]
        value = values[key] = self._base.get(key)
        return value

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._base.scan_state(prefix)


class ScanOverlay(Overlay):
    """An overlay that can also list keys by prefix (committed keys merged with writes).

    The listing is a lazy merge of the base's listing (which must be in key order) with
    this overlay's writes, so a caller that stops after n keys reads about n keys of the
    base, not the whole prefix (bounded work per block over large indexes).
    """

    __slots__ = ()

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        writes = sorted((k, v) for k, v in self._writes.items() if k.startswith(prefix))
        base = self._base
        committed: Iterator[tuple[bytes, bytes]] = (
            base.scan_state(prefix) if hasattr(base, "scan_state") else iter(())
        )
        i, n = 0, len(writes)
        for key, value in committed:
            while i < n and writes[i][0] <= key:
                written_key, written = writes[i]
                i += 1
                if written is not None:
                    yield written_key, _raw(written)
                if written_key == key:
                    break
            else:
                yield key, value
        for written_key, written in writes[i:]:
            if written is not None:
                yield written_key, _raw(written)

    def child(self) -> ScanOverlay:
        return ScanOverlay(self)


def _raw(value: bytes | Pending) -> bytes:
    return value.encode() if isinstance(value, Pending) else value


class RecordCache:
    """Decoded records by (record class, stored bytes): `decode(cls, raw)` is always
    `cls.decode(raw)`, computed at most once while the entry is kept.

    `seed(cls, raw, tree, at)` records that `raw` was just produced by encoding a record of
    `cls` and that `tree` is the value `codec.decode(raw)` returns (`codec.encode_value`);
    a later `decode(cls, raw)` then builds the record with `cls.from_value(tree)`, which is
    what `cls.decode` does after decoding the bytes, so the answer (or the SchemaError) is
    the same without decoding bytes this process wrote. A hot record (a block's accrual, a
    device written in one block and read in the next) is thus never decoded. Only classes
    the ledger reads through the cache are seeded (a usage leaf is written, never read).

    The answer is a pure function of the key, so one cache may serve many blocks and any
    fork of the chain (the shell keeps one). Seeds of the block being executed are kept
    apart; `end_block` keeps those that became the block's final values (not a version a
    later transaction replaced, nor a rejected transaction's write) and drops the rest
    (also those of a block whose execution raised, at the next `end_block`). Bounded: two
    generations of at most MAX_ENTRIES entries and MAX_BYTES of stored bytes each; when
    the young one is full it becomes the old one and the old one is dropped; an old entry
    that is used moves back to the young generation.
    """

    __slots__ = ("_block", "_old", "_read", "_written", "_young", "_young_bytes")
    MAX_ENTRIES = 8192
    MAX_BYTES = 4 * 1024 * 1024

    def __init__(self) -> None:
        # a Record, or the decoded tree (a dict) of a seeded record not yet built
        self._young: dict[tuple[type[Record], bytes], Record | dict[str, Any]] = {}
        self._old: dict[tuple[type[Record], bytes], Record | dict[str, Any]] = {}
        self._block: dict[tuple[type[Record], bytes], Record | dict[str, Any]] = {}
        self._read: set[type[Record]] = set()
        self._written: dict[bytes, tuple[type[Record], bytes]] = {}  # state key -> its seed
        self._young_bytes = 0

    def decode(self, cls: type[R], raw: bytes) -> R:
        key = (cls, raw)
        found = self._young.get(key)
        if found is None:
            found = self._block.get(key)
            if found is not None:
                if type(found) is dict:
                    found = self._block[key] = cls.from_value(found)
                return found  # type: ignore[return-value]
            found = self._old.pop(key, None)
            if found is None:
                self._read.add(cls)
                found = cls.decode(raw)
            self._keep(key, found)
        if type(found) is dict:
            found = self._young[key] = cls.from_value(found)
        return found  # type: ignore[return-value]

    def seed(self, cls: type[Record], raw: bytes, tree: dict[str, Any], at: bytes) -> None:
        """`raw`, the encoding of a record of `cls` with decoded tree `tree`, was just
        written under the state key `at`; the seed of the value it replaced there in this
        block is dropped (a version the next transaction replaces, like a block's accrual,
        is not kept to the end of the block; were it needed again, after a rejection, it
        would just be decoded)."""
        key = (cls, raw)
        if cls in self._read and key not in self._young:
            replaced = self._written.get(at)
            if replaced is not None and replaced != key:
                self._block.pop(replaced, None)
            self._written[at] = key
            self._block.setdefault(key, tree)

    def end_block(self, changes: Mapping[bytes, tuple[bytes | None, bytes | None]]) -> None:
        """Keep the seeds that are final values of the block just executed (`changes`)."""
        block, self._block = self._block, {}
        self._written = {}
        final = {new for _, new in changes.values()}
        for key, entry in block.items():
            if key[1] in final and key not in self._young:
                self._keep(key, entry)

    def _keep(self, key: tuple[type[Record], bytes], entry: Record | dict[str, Any]) -> None:
        young, size = self._young, len(key[1])
        if len(young) >= self.MAX_ENTRIES or self._young_bytes + size > self.MAX_BYTES:
            self._old, self._young, self._young_bytes = young, {}, 0
            young = self._young
        young[key] = entry
        self._young_bytes += size

    def __len__(self) -> int:
        return len(self._young) + len(self._old) + len(self._block)


_SEEDABLE: dict[type[Record], bool] = {}
_RECORD_DECODE = getattr(Record.decode, "__func__", None)


def _seedable(cls: type[Record]) -> bool:
    """True iff `cls` encodes and decodes as `Record` does (no override), so the tree of
    its `to_value()` is what `cls.decode` builds the record from."""
    found = _SEEDABLE.get(cls)
    if found is None:
        decode = getattr(cls.decode, "__func__", None)
        found = _SEEDABLE[cls] = cls.encode is Record.encode and decode is _RECORD_DECODE
    return found


@dataclass(slots=True)
class Ctx:
    """Handler context: state overlay, block info, the signer, and collected events."""

    state: ScanOverlay
    block: BlockInfo
    signer: bytes
    tx_id: bytes = b""
    nonce: int = 0
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    records: RecordCache | None = None

    def get(self, key: bytes, cls: type[R]) -> R | None:
        found = self.state.lookup(key)
        if found is None:
            return None
        if isinstance(found, Pending):
            if type(found.value) is cls:
                return found.value
            found = found.encode()
        cache = self.records
        return cls.decode(found) if cache is None else cache.decode(cls, found)

    def must(self, key: bytes, cls: type[R], code: str, detail: str) -> R:
        found = self.get(key, cls)
        if found is None:
            raise Reject(code, detail)
        return found

    def put(self, key: bytes, record: Record) -> None:
        cache = self.records
        cls = type(record)
        if cache is None or not _seedable(cls):
            self.state.put(key, record.encode())
            return
        raw, tree = record.encode_value()
        self.state.put(key, raw)
        if tree is not None:
            cache.seed(cls, raw, tree, key)

    def put_vouched(self, key: bytes, record: Record) -> None:
        """`put`, written back: the record is encoded only when its bytes are first read
        (at the latest by `changes()`), so a version the next transaction replaces is
        never encoded. The caller vouches that encoding it cannot fail and gives at most
        MAX_VALUE_BYTES, and that `record` is exactly what decoding those bytes gives
        (every map in canonical key order); a typed read returns it as it is. Without a
        record cache (the reference path, `share_records=False`) this is `put`."""
        if self.records is None:
            self.put(key, record)
        else:
            self.state.put_pending(key, Pending(record))

    def get_value(self, key: bytes) -> Any:
        raw = self.state.get(key)
        return None if raw is None else codec.decode(raw)

    def put_value(self, key: bytes, value: Any) -> None:
        self.state.put(key, codec.encode(value))

    def delete(self, key: bytes) -> None:
        self.state.delete(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.state.scan_state(prefix)

    def emit(self, kind: str, **attrs: Any) -> None:
        self.events.append((kind, attrs))
