"""The execution context a transaction handler runs in, and the typed rejection.

Rule kept here: a handler reads and writes state only through its `Ctx` (an overlay over
the committed state), and signals a rejection by raising `Reject`; the block executor then
discards everything the handler wrote. Events are collected per transaction for its
receipt.

Records read through `Ctx.get` may be shared between the transactions of one block (a
`RecordCache` keyed by class and stored bytes: decoding is a pure function of the two, and
a licence or a member is read by every transaction that touches it). Records are values:
never mutate a dict or list inside one in place; build a new value and `replace` it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from node.ledger import codec
from node.ledger.errors import LedgerError
from node.ledger.records import Record
from node.ledger.state import Overlay

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
                    yield written_key, written
                if written_key == key:
                    break
            else:
                yield key, value
        for written_key, written in writes[i:]:
            if written is not None:
                yield written_key, written

    def child(self) -> ScanOverlay:
        return ScanOverlay(self)


class RecordCache:
    """Decoded records by (record class, stored bytes), for the transactions of one block."""

    __slots__ = ("_entries",)
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: dict[tuple[type[Record], bytes], Record] = {}

    def decode(self, cls: type[R], raw: bytes) -> R:
        key = (cls, raw)
        found = self._entries.get(key)
        if found is None:
            found = cls.decode(raw)
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = found
        return found  # type: ignore[return-value]


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
        raw = self.state.get(key)
        if raw is None:
            return None
        cache = self.records
        return cls.decode(raw) if cache is None else cache.decode(cls, raw)

    def must(self, key: bytes, cls: type[R], code: str, detail: str) -> R:
        found = self.get(key, cls)
        if found is None:
            raise Reject(code, detail)
        return found

    def put(self, key: bytes, record: Record) -> None:
        self.state.put(key, record.encode())

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
