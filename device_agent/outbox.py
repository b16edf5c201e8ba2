"""The durable outbox: signed usage reports waiting for a node to say they committed.

Rules kept here (SQLite, WAL mode, synchronous=FULL, one transaction per change):
- A report counts as taken only once its transaction has committed to disk. The report,
  the device's next sequence number, the head hash and the latest cumulative registers
  change in that same transaction, so a sequence number is never issued twice, even
  across power cuts.
- Rows are marked `sent` durably BEFORE they are handed to any node. Sent rows are always
  a prefix of the queue (uploads go oldest first).
- Bounded: at `records_max` rows, the unsent suffix is coalesced into ONE report carrying
  the latest cumulative registers, re-signed with the first unsent seq and that row's
  prev_hash (lossless: registers are cumulative). Sent rows are never rewritten, since a
  node may have committed them. If every row is sent, the registers are stored and the
  report is deferred until a slot frees.
- A row leaves only when a node says it committed, or into the `dead` table (kept, logged,
  shown by `status`) when the ledger rejects it for good. Nothing is silently dropped.
- Every row read back is checked (decodes, id, signer, seq); a damaged file raises
  OutboxCorrupt and the agent stops rather than guess.
"""

from __future__ import annotations

import json
import pathlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from device_agent.errors import OutboxCorrupt
from node.ledger.errors import LedgerError
from node.ledger.tx import Transaction
from node.ledger.usage import GENESIS_PREV

SCHEMA_VERSION = 1

# build(seq, prev_hash, registers) -> the signed usage.report transaction
Builder = Callable[[int, bytes, dict[str, int]], Transaction]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tx_id BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    tx BLOB NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    tx_id BLOB NOT NULL,
    tx BLOB NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    tx_id: bytes
    tx: Transaction
    sent: bool


@dataclass(frozen=True, slots=True)
class Taken:
    """What `record` did: appended, coalesced `replaced` unsent rows, or deferred."""

    seq: int | None
    replaced: int = 0
    deferred: bool = False


class Outbox:
    """One device's outbox in one SQLite file. Not thread-safe: one owner at a time."""

    def __init__(self, path: pathlib.Path, device: bytes, chain_id: str, records_max: int) -> None:
        self.path = path
        self.device = device
        self.chain_id = chain_id
        self.records_max = records_max
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._check_and_init()
        except sqlite3.DatabaseError as exc:
            raise OutboxCorrupt("unreadable", f"{path}: {exc}; the file was left as it is") from exc

    # --- opening -------------------------------------------------------------------------

    def _check_and_init(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if version == 0 and not tables:
            with self._tx():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._put("device", self.device.hex())
                self._put("chain_id", self.chain_id)
                self._put("next_seq", 1)
                self._put("head_hash", GENESIS_PREV.hex())
                self._put("registers", {})
            return
        if version != SCHEMA_VERSION:
            raise OutboxCorrupt("schema", f"{self.path}: schema version {version}, expected 1")
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise OutboxCorrupt("integrity", f"{self.path}: sqlite quick_check: {check}")
        if self._get("device") != self.device.hex():
            raise OutboxCorrupt("wrong_device", f"{self.path} belongs to another device key")
        if self._get("chain_id") != self.chain_id:
            raise OutboxCorrupt(
                "wrong_chain", f"{self.path} belongs to chain {self._get('chain_id')}"
            )
        self._check_counters()

    def _check_counters(self) -> None:
        next_seq = self.next_seq
        top = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
        if top is not None and top >= next_seq:
            raise OutboxCorrupt("seq", f"row seq {top} at or above next_seq {next_seq}")
        last = self._db.execute("SELECT MAX(seq) FROM outbox WHERE sent=1").fetchone()[0]
        first_unsent = self._db.execute("SELECT MIN(seq) FROM outbox WHERE sent=0").fetchone()[0]
        if last is not None and first_unsent is not None and last > first_unsent:
            raise OutboxCorrupt("sent_order", "sent rows are not a prefix of the queue")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            raise OutboxCorrupt("meta", f"{self.path}: meta key {key!r} missing")
        try:
            return json.loads(row[0])
        except ValueError as exc:
            raise OutboxCorrupt("meta", f"{self.path}: meta key {key!r} unreadable") from exc

    def _get_or(self, key: str, default: Any) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def _put(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def close(self) -> None:
        self._db.close()

    # --- reading -------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        value = self._get("next_seq")
        if type(value) is not int or value < 1:
            raise OutboxCorrupt("meta", "next_seq is not a positive integer")
        return value

    @property
    def registers(self) -> dict[str, int]:
        value = self._get("registers")
        if not isinstance(value, dict) or not all(type(v) is int for v in value.values()):
            raise OutboxCorrupt("meta", "registers are not a map of integers")
        return value

    @property
    def deferred(self) -> bool:
        return bool(self._get_or("deferred", False))

    def depth(self) -> int:
        n: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return n

    def _row(self, seq: int, tx_id: bytes, data: bytes, sent: int) -> Row:
        try:
            tx = Transaction.decode_tx(data)
        except LedgerError as exc:
            raise OutboxCorrupt("row", f"outbox row seq {seq} does not decode: {exc}") from exc
        if tx.tx_id != tx_id or tx.nonce != seq or tx.signer != self.device:
            raise OutboxCorrupt("row", f"outbox row seq {seq} does not match its id/seq/signer")
        return Row(seq, tx_id, tx, bool(sent))

    def oldest(self, limit: int) -> list[Row]:
        rows = self._db.execute(
            "SELECT seq, tx_id, tx, sent FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [self._row(*r) for r in rows]

    def dead_rows(self) -> list[tuple[int, str, str]]:
        return list(self._db.execute("SELECT seq, code, detail FROM dead ORDER BY seq"))

    # --- changing ------------------------------------------------------------------------

    def record(self, registers: dict[str, int], build: Builder) -> Taken:
        """Take a report of `registers` (durable when this returns)."""
        with self._tx():
            self._put("registers", registers)
            count = self.depth()
            if count < self.records_max:
                seq, prev, replaced = self.next_seq, bytes.fromhex(self._get("head_hash")), 0
            else:
                first = self._db.execute(
                    "SELECT seq, prev_hash FROM outbox WHERE sent=0 ORDER BY seq LIMIT 1"
                ).fetchone()
                if first is None:
                    self._put("deferred", True)
                    return Taken(None, deferred=True)
                seq, prev = first[0], bytes(first[1])
                replaced = self._db.execute("DELETE FROM outbox WHERE seq >= ?", (seq,)).rowcount
                self._put("coalesced", self._get_or("coalesced", 0) + replaced)
            tx = build(seq, prev, registers)
            self._db.execute(
                "INSERT INTO outbox(seq, tx_id, prev_hash, tx) VALUES (?, ?, ?, ?)",
                (seq, tx.tx_id, prev, tx.encode()),
            )
            self._put("next_seq", seq + 1)
            self._put("head_hash", tx.tx_id.hex())
            self._put("deferred", False)
        return Taken(seq, replaced=replaced)

    def adopt_chain_head(self, last_seq: int, last_hash: bytes) -> bool:
        """Continue after the chain's head when it is ahead of this outbox.

        Protects a device whose state was wiped but whose key survived from reusing seqs.
        Allowed only while no row was ever handed to a node: the unsent rows are dropped
        and `deferred` is set, so the next tick re-takes the latest registers (lossless,
        as in coalescing) at seq last_seq + 1.
        """
        with self._tx():
            if last_seq < self.next_seq:
                return False
            if self._db.execute("SELECT 1 FROM outbox WHERE sent=1 LIMIT 1").fetchone():
                return False
            dropped = self._db.execute("DELETE FROM outbox").rowcount
            self._put("next_seq", last_seq + 1)
            self._put("head_hash", last_hash.hex())
            if dropped:
                self._put("deferred", True)
                self._put("coalesced", self._get_or("coalesced", 0) + dropped)
        return True

    def mark_sent(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._tx():
            self._db.executemany(
                "UPDATE outbox SET sent=1, attempts=attempts+1 WHERE seq=?", [(s,) for s in seqs]
            )

    def committed(self, seqs: list[int]) -> int:
        """Remove rows a node confirmed committed; returns how many left."""
        if not seqs:
            return 0
        with self._tx():
            removed = 0
            for seq in seqs:
                removed += self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,)).rowcount
            self._put("last_committed_seq", max(self._get_or("last_committed_seq", 0), *seqs))
            self._put("committed_total", self._get_or("committed_total", 0) + removed)
        return removed

    def bury(self, seq: int, code: str, detail: str) -> None:
        """Move a row the ledger rejected for good into `dead` (kept for the operator)."""
        with self._tx():
            row = self._db.execute("SELECT tx_id, tx FROM outbox WHERE seq=?", (seq,)).fetchone()
            if row is None:
                return
            self._db.execute(
                "INSERT OR REPLACE INTO dead(seq, tx_id, tx, code, detail) VALUES (?, ?, ?, ?, ?)",
                (seq, row[0], row[1], code, detail[:500]),
            )
            self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))

    def set_status(self, **values: Any) -> None:
        """Operational facts for `alps-agent status` (last error, endpoint health...)."""
        with self._tx():
            for key, value in values.items():
                self._put(f"status.{key}", value)

    def status(self) -> dict[str, Any]:
        return read_status(self._db)


def open_readonly(path: pathlib.Path) -> sqlite3.Connection:
    """A read-only connection for `status` while the agent runs (WAL allows it)."""
    if not path.exists():
        raise OutboxCorrupt("missing", f"{path} does not exist (has the agent run yet?)")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.DatabaseError as exc:
        raise OutboxCorrupt("unreadable", f"{path}: {exc}") from exc


def read_status(db: sqlite3.Connection) -> dict[str, Any]:
    """Queue depth, last committed seq, last error, endpoint health... from an outbox file."""
    try:
        meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        rows = db.execute("SELECT COUNT(*), MIN(seq), MAX(seq), SUM(sent) FROM outbox").fetchone()
        status = {
            "device": meta.get("device"),
            "chain_id": meta.get("chain_id"),
            "queue_depth": rows[0],
            "queue_sent": rows[3] or 0,
            "oldest_seq": rows[1],
            "newest_seq": rows[2],
            "next_seq": meta.get("next_seq"),
            "last_committed_seq": meta.get("last_committed_seq", 0),
            "committed_total": meta.get("committed_total", 0),
            "coalesced_total": meta.get("coalesced", 0),
            "deferred": meta.get("deferred", False),
            "dead": db.execute("SELECT COUNT(*) FROM dead").fetchone()[0],
            "registers": meta.get("registers"),
        }
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise OutboxCorrupt("unreadable", f"outbox status: {exc}") from exc
    for key in sorted(meta):
        if key.startswith("status."):
            status[key.removeprefix("status.")] = meta[key]
    return status
