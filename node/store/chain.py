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
  r/<h>           receipts of block h, in transaction order
  c/<h>           commit certificate of block h
  x/<tx_id>       <h><position as 4 bytes> (the accepted inclusion if there is one)
  s/<key>         state value
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from node.ledger import codec
from node.ledger.block import ZERO_HASH, Block, Receipt, encode_receipts
from node.ledger.certificate import CommitCertificate
from node.ledger.errors import LedgerError
from node.ledger.state import StateAccumulator
from node.store.kv import KV, Op, StoreError

SCHEMA_KEY = b"m/schema"
SCHEMA_VERSION = b"alps-chain-store/1"
HEAD_KEY = b"m/head"
BLOCK, RECEIPTS, CERT, TXINDEX, STATE = b"b/", b"r/", b"c/", b"x/", b"s/"


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


class ChainStore:
    """Typed access to one node's chain over any KV."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv
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
        return self.kv.get(STATE + key)

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
        if len(receipts) != len(block.txs):
            raise StoreError("receipts", "one receipt per transaction is required")
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
        for i, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            # The index points at the inclusion that executed; a rejected re-inclusion of
            # an executed transaction (a replay) never hides it.
            tx_id = tx.tx_id
            if receipt.accepted or not self._executed(tx_id):
                ops.append((TXINDEX + tx_id, pos_prefix + i.to_bytes(4, "big")))
        for key, (_old, new) in changes.items():
            ops.append((STATE + key, new))
        head = Head(h, block_hash, accumulator)
        ops.append((HEAD_KEY, head.encode()))
        self.kv.write(ops, sync=sync)
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
