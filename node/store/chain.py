"""The chain store: blocks, receipts, certificates, state and the transaction index.

Rule kept here: committing block h writes the block, its receipts, its commit
certificate, its state changes, the transaction index and the new head in ONE atomic,
fsynced batch, so after any crash the store holds exactly a prefix of the committed
chain with the state of that prefix. Records are keyed by height (sequential keys keep
LevelDB compaction cheap); only the transaction index is keyed by hash.

Key layout (all heights are 8-byte big-endian):
  m/schema        schema version string
  m/head          {height, block_hash, accumulator} of the last committed block
                  (height 0 is the genesis block, whose parent is the zero hash)
  b/<h>           block (header + transactions)
  r/<h>           receipts of block h: one per transaction in order, then its
                  end-of-block receipts (header.receipt_count in all)
  c/<h>           commit certificate of block h
  x/<tx_id>       <h><position as 4 bytes> (the accepted inclusion if there is one);
                  transactions only, never an end-of-block receipt
  y/<receipt id>  <h><position as 4 bytes> of an end-of-block receipt
  e/<statement_hash><h><receipt index 4><event index 2>
                  every event that carries a `statement_hash` (a statement's close and
                  payments), in chain order: what a statement proof is built from
  v/<h>           the validator set block h (h >= 1) changed to (its header's
                  validator_set_hash differs from its parent's)
  s/<key>         state value

State reads go through a bounded read cache (`_StateCache`) that `commit_block` keeps
coherent: the only writer of s/ keys, it updates the cached keys it changed right after
its batch is written, and a read that raced a commit does not enter the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from node.ledger import codec
from node.ledger.block import ZERO_HASH, Block, Receipt, encode_receipts
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.errors import LedgerError
from node.ledger.genesis import K_VALIDATORS
from node.ledger.state import StateAccumulator
from node.store.kv import KV, Op, StoreError

SCHEMA_KEY = b"m/schema"
SCHEMA_VERSION = b"alps-chain-store/2"
HEAD_KEY = b"m/head"
BLOCK, RECEIPTS, CERT, TXINDEX, STATE = b"b/", b"r/", b"c/", b"x/", b"s/"
EVENTS, VALIDATOR_CHANGES, SYSTEM_RECEIPTS = b"e/", b"v/", b"y/"
STATEMENT_EVENTS_MAX = 10_000  # events read for one statement (its close and payments)


@dataclass(frozen=True, slots=True)
class EventLocation:
    height: int
    receipt_index: int
    event_index: int


def height_key(prefix: bytes, height: int) -> bytes:
    return prefix + height.to_bytes(8, "big")


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    block_hash: bytes
    accumulator: StateAccumulator

    def encode(self) -> bytes:
        return codec.encode(
            {
                "height": self.height,
                "block_hash": self.block_hash,
                "accumulator": self.accumulator.to_bytes(),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Head:
        v = codec.decode(data)
        return cls(v["height"], v["block_hash"], StateAccumulator.from_bytes(v["accumulator"]))


_MISSING = object()


class _StateCache:
    """Recently read state values (None: the key is absent), for `ChainStore.get_state`.

    Every block reads the records it touches (a device, its billed-device marker), and
    the next block reads most of them again. Coherence: `updated` (called by the commit,
    after its batch is written) replaces the cached value of every changed key, forgets a
    cached absence (a new key is read once more, not kept by its writer) and starts a new
    epoch; a value read from the KV enters the cache only if no commit started meanwhile
    (`epoch()` before the read, `remember` after), so a value older than the KV's never
    enters it. One lock (not taken by a read the young generation answers); the KV read
    itself is outside it. Bounded: two generations of
    at most MAX_ENTRIES keys or MAX_BYTES of values each (values over MAX_VALUE_BYTES
    are not kept); a value used from the old generation moves back to the young one.
    """

    MAX_ENTRIES = 65536  # per generation: ~3 hot keys per device, 20k+ devices
    MAX_BYTES = 32 * 1024 * 1024
    MAX_VALUE_BYTES = 16 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._young: dict[bytes, bytes | None] = {}
        self._old: dict[bytes, bytes | None] = {}
        self._young_bytes = 0
        self._epoch = 0

    def lookup(self, key: bytes) -> object:
        """The cached value (bytes or None), or _MISSING. A young entry is read without
        the lock (a read concurrent with a commit may answer either side of it, as a read
        of the KV would); moving an old entry back to the young generation takes it."""
        found = self._young.get(key, _MISSING)
        if found is not _MISSING:
            return found
        with self._lock:
            found = self._young.get(key, _MISSING)
            if found is _MISSING:
                found = self._old.pop(key, _MISSING)
                if found is not _MISSING:
                    self._keep(key, found)  # type: ignore[arg-type]
            return found

    def epoch(self) -> int:
        return self._epoch

    def remember(self, key: bytes, value: bytes | None, epoch: int) -> None:
        with self._lock:
            if epoch == self._epoch and (value is None or len(value) <= self.MAX_VALUE_BYTES):
                self._keep(key, value)

    def updated(self, changes: Mapping[bytes, tuple[bytes | None, bytes | None]]) -> None:
        with self._lock:
            self._epoch += 1
            for generation in (self._young, self._old):
                for key, (_old, new) in changes.items():
                    if key in generation:
                        cached = generation[key]
                        if cached is None or new is None or len(new) > self.MAX_VALUE_BYTES:
                            del generation[key]
                        else:
                            generation[key] = new

    def _keep(self, key: bytes, value: bytes | None) -> None:
        size = 0 if value is None else len(value)
        if len(self._young) >= self.MAX_ENTRIES or self._young_bytes + size > self.MAX_BYTES:
            self._old, self._young, self._young_bytes = self._young, {}, 0
        self._young[key] = value
        self._young_bytes += size

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


class ChainStore:
    """Typed access to one node's chain over any KV."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._state = _StateCache()
        self._check_schema()
        raw = kv.get(HEAD_KEY)
        self._head: Head | None = Head.decode(raw) if raw is not None else None

    def _check_schema(self) -> None:
        version = self.kv.get(SCHEMA_KEY)
        if version is None:
            if next(iter(self.kv.scan(b"")), None) is not None:
                raise StoreError("incompatible_schema", "store has data but no schema version")
            self.kv.write([(SCHEMA_KEY, SCHEMA_VERSION)], sync=True)
        elif version != SCHEMA_VERSION:
            raise StoreError(
                "incompatible_schema",
                f"store was written as {version!r}; this version reads {SCHEMA_VERSION!r}",
            )

    # -- reads -----------------------------------------------------------------------

    def head(self) -> Head | None:
        return self._head

    @property
    def next_height(self) -> int:
        """The height the next committed block must have: 0 (genesis) on an empty store."""
        return self._head.height + 1 if self._head else 0

    def accumulator(self) -> StateAccumulator:
        return self._head.accumulator if self._head else StateAccumulator()

    def get_state(self, key: bytes) -> bytes | None:
        cache = self._state
        found = cache.lookup(key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        epoch = cache.epoch()
        value = self.kv.get(STATE + key)
        cache.remember(key, value, epoch)
        return value

    # StateReader protocol, so a ledger Overlay can read straight through the store.
    get = get_state

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        n = len(STATE)
        for key, value in self.kv.scan(STATE + prefix):
            yield key[n:], value

    def block(self, height: int) -> Block | None:
        raw = self.kv.get(height_key(BLOCK, height))
        return Block.decode(raw) if raw is not None else None

    def block_bytes(self, height: int) -> bytes | None:
        return self.kv.get(height_key(BLOCK, height))

    def receipts(self, height: int) -> list[Receipt] | None:
        raw = self.kv.get(height_key(RECEIPTS, height))
        if raw is None:
            return None
        return [Receipt.from_value(v) for v in codec.decode(raw)]

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self.kv.get(height_key(CERT, height))
        return CommitCertificate.decode(raw) if raw is not None else None

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self.kv.get(TXINDEX + tx_id)
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")

    def receipt_location(self, receipt_id: bytes) -> tuple[int, int] | None:
        """(height, position) of a transaction's receipt or of an end-of-block receipt."""
        found = self.tx_location(receipt_id)
        if found is not None:
            return found
        raw = self.kv.get(SYSTEM_RECEIPTS + receipt_id)
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")

    def statement_events(
        self, statement_hash: bytes, limit: int = STATEMENT_EVENTS_MAX
    ) -> list[EventLocation]:
        """Where the events about a statement (by the hash of its closed record) are, in
        chain order; at most `limit`."""
        prefix = EVENTS + statement_hash
        out: list[EventLocation] = []
        for key, _ in self.kv.scan(prefix):
            if len(out) == limit:
                break
            rest = key[len(prefix) :]
            out.append(
                EventLocation(
                    int.from_bytes(rest[:8], "big"),
                    int.from_bytes(rest[8:12], "big"),
                    int.from_bytes(rest[12:14], "big"),
                )
            )
        return out

    def validator_changes(self) -> list[tuple[int, ValidatorSet]]:
        """(height, new set) for every block that changed the validator set, in order."""
        return [
            (int.from_bytes(key[len(VALIDATOR_CHANGES) :], "big"), ValidatorSet.decode(value))
            for key, value in self.kv.scan(VALIDATOR_CHANGES)
        ]

    def block_heights(self) -> Iterator[int]:
        for key, _ in self.kv.scan(BLOCK):
            yield int.from_bytes(key[len(BLOCK) :], "big")

    # -- the one write path ------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        receipts: Sequence[Receipt],
        certificate: CommitCertificate | None,
        changes: Mapping[bytes, tuple[bytes | None, bytes | None]],
        accumulator: StateAccumulator,
        sync: bool = True,
    ) -> Head:
        """Atomically append `block` with its results; raises if it does not extend the head."""
        header = block.header
        expected_parent = self._head.block_hash if self._head else ZERO_HASH
        if header.height != self.next_height:
            raise StoreError("not_next", f"block {header.height}, expected {self.next_height}")
        if header.parent_hash != expected_parent:
            raise StoreError("wrong_parent", f"block {header.height} does not extend the head")
        if len(receipts) != header.receipt_count or any(
            r.tx_id != tx.tx_id for r, tx in zip(receipts, block.txs, strict=False)
        ):
            raise StoreError("receipts", "receipts are one per transaction, then end-of-block")
        if accumulator.digest() != header.state_digest:
            raise LedgerError("state_digest", "accumulator does not match the header")
        h = header.height
        block_hash = block.hash()
        ops: list[Op] = [
            (height_key(BLOCK, h), block.encode()),
            (height_key(RECEIPTS, h), encode_receipts(receipts)),
        ]
        if certificate is not None:
            ops.append((height_key(CERT, h), certificate.encode()))
        pos_prefix = h.to_bytes(8, "big")
        tx_receipts = receipts[: header.tx_count]
        for i, (tx, receipt) in enumerate(zip(block.txs, tx_receipts, strict=True)):
            # The index points at the inclusion that executed; a rejected re-inclusion of
            # an executed transaction (a replay) never hides it.
            tx_id = tx.tx_id
            if receipt.accepted or not self._executed(tx_id):
                ops.append((TXINDEX + tx_id, pos_prefix + i.to_bytes(4, "big")))
        for i in range(header.tx_count, header.receipt_count):
            ops.append((SYSTEM_RECEIPTS + receipts[i].tx_id, pos_prefix + i.to_bytes(4, "big")))
        ops.extend(_event_index(pos_prefix, receipts))
        ops.extend(_validator_change(header.height, header.validator_set_hash, changes))
        for key, (_old, new) in changes.items():
            ops.append((STATE + key, new))
        head = Head(h, block_hash, accumulator)
        ops.append((HEAD_KEY, head.encode()))
        self.kv.write(ops, sync=sync)
        self._state.updated(changes)
        self._head = head
        return head

    def _executed(self, tx_id: bytes) -> bool:
        loc = self.tx_location(tx_id)
        if loc is None:
            return False
        receipts = self.receipts(loc[0])
        return receipts is not None and receipts[loc[1]].accepted

    def put_certificate(self, certificate: CommitCertificate) -> None:
        """Attach a certificate learned after the block was stored (e.g. during catch-up)."""
        self.kv.write([(height_key(CERT, certificate.height), certificate.encode())], sync=True)

    def close(self) -> None:
        self.kv.close()


def _event_index(pos_prefix: bytes, receipts: Sequence[Receipt]) -> list[Op]:
    ops: list[Op] = []
    for r_index, receipt in enumerate(receipts):
        for e_index, event in enumerate(receipt.events):
            statement_hash = event.attrs.get("statement_hash")
            if isinstance(statement_hash, bytes) and len(statement_hash) == 32:
                position = r_index.to_bytes(4, "big") + e_index.to_bytes(2, "big")
                ops.append((EVENTS + statement_hash + pos_prefix + position, b""))
    return ops


def _validator_change(
    height: int,
    validator_set_hash: bytes,
    changes: Mapping[bytes, tuple[bytes | None, bytes | None]],
) -> list[Op]:
    change = changes.get(K_VALIDATORS)
    if height == 0 or change is None or change[1] is None:
        return []
    new = change[1]
    if ValidatorSet.decode(new).hash() != validator_set_hash:
        raise LedgerError("validator_set", "state change does not match the header's set")
    return [(height_key(VALIDATOR_CHANGES, height), new)]
