"""Blocks, receipts and their hashes.

Rule kept here: a block header commits to everything a third party needs to check a
result without the node's help: the transactions (tx_root over tx_count), their outcomes
(receipt_root over receipt_count receipts: one per transaction in order, then the
end-of-block receipts carrying the events of the block's time-driven work, with ids
`system_receipt_id(height, i)`), the state after executing the block (state_digest) and
the validator set after it (validator_set_hash; a change governs consensus from
`consensus.activation_seq` on, see certificate.py). The block hash is the SHA-256 of the
header's canonical encoding, and that is what the commit certificate signs. The header
commits to its own execution results, so a proposer executes a block before proposing it
and validators re-execute it to judge the proposal.

A receipt of events made by `Event.normalised` (the executor's) is encoded by splicing the
attribute encodings the codec's fast path produced and vouched for; anything else is
encoded by `Record.encode`. Either way the bytes are the canonical encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from node.ledger import codec, crypto, merkle
from node.ledger.errors import LedgerError, ProofError
from node.ledger.records import Record, require, require_bytes, require_uint
from node.ledger.tx import Transaction, check_chain_id, decode_tx_fast

MAX_BLOCK_TXS = 10_000
# Events per receipt. A transaction whose events would exceed it is rejected (app.py;
# e.g. a deposit settling very many overdue statements); end-of-block events are split
# into receipts of SYSTEM_RECEIPT_EVENTS each.
MAX_EVENTS = 1024
SYSTEM_RECEIPT_EVENTS = 64
# Transaction receipts plus the end-of-block (system) receipts; a sanity bound only, the
# work of one block is bounded by the ledger (see periods.MAX_*_PER_BLOCK).
MAX_BLOCK_RECEIPTS = 1 << 20
ZERO_HASH = b"\x00" * 32
SYSTEM_RECEIPT_TAG = b"alps/end-of-block/v1"


# Where a receipt holds an event's attributes: receipt map -> events list -> event map
# -> attrs, the depth the codec must vouch for them at to splice their bytes in.
_ATTRS_DEPTH = 3
_EVENT_KEYS = (codec.encode("attrs"), codec.encode("kind"))
_RECEIPT_KEYS = tuple(codec.encode(k) for k in ("accepted", "code", "detail", "events", "tx_id"))


@dataclass(frozen=True, slots=True)
class Event(Record):
    """Something a transaction did, e.g. kind="transfer" with from/to/amount/currency."""

    kind: str
    attrs: dict[str, Any]
    # Cache (not a field): the canonical encoding of `attrs`, when the codec's fast path
    # vouched for it inside a receipt (`Event.normalised`); the receipt splices it in.
    _attrs_wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require(0 < len(self.kind) <= 64, "event kind length")

    @classmethod
    def normalised(cls, kind: str, attrs: dict[str, Any]) -> Event:
        """`Event(kind, codec.decode(codec.encode(attrs)))` (keys in canonical order, tuples
        as lists), without the round trip when the codec's fast path vouches, and then
        remembering the attributes' encoding for the receipt's."""
        data, tree = codec.encode_value(attrs, _ATTRS_DEPTH)
        if tree is None:
            return cls(kind, codec.decode(data))
        event = cls(kind, tree)
        object.__setattr__(event, "_attrs_wire", data)
        return event


@dataclass(frozen=True, slots=True)
class Receipt(Record):
    """The outcome of one transaction: accepted, or rejected with a stable code."""

    tx_id: bytes
    accepted: bool
    code: str
    detail: str
    events: tuple[Event, ...]
    # Cache (not a field): encoded once for the receipt root and once more for the store.
    _wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_bytes(self.tx_id, crypto.HASH_BYTES, "tx_id")
        require(len(self.code) <= 64 and len(self.detail) <= 1024, "code/detail length")
        require(len(self.events) <= MAX_EVENTS, "too many events")
        require(self.accepted == (self.code == "ok"), "accepted iff code is 'ok'")

    def encode(self) -> bytes:
        data = self._wire
        if data is None:
            data = self._spliced() or Record.encode(self)
            object.__setattr__(self, "_wire", data)
        return data

    def _spliced(self) -> bytes | None:
        """The encoding joined from the events' attribute encodings (`Event.normalised`)
        and the fields' own: the map `Record.encode` writes, keys in canonical order.
        None unless the codec's fast path vouched for every part, so the reference path
        would accept the whole and write these very bytes."""
        if not _SPLICE_FIELDS_MATCH:
            return None
        events = []
        for event in self.events:
            attrs, kind = event._attrs_wire, codec.encode_scalar(event.kind)
            if attrs is None or kind is None:
                return None
            events.append(_EVENT_HEAD + _EVENT_KEYS[0] + attrs + _EVENT_KEYS[1] + kind)
        accepted, code, detail, tx_id = (
            codec.encode_scalar(v) for v in (self.accepted, self.code, self.detail, self.tx_id)
        )
        if accepted is None or code is None or detail is None or tx_id is None:
            return None
        k_accepted, k_code, k_detail, k_events, k_tx_id = _RECEIPT_KEYS
        data = b"".join(
            (
                _RECEIPT_HEAD,
                *(k_accepted, accepted, k_code, code, k_detail, detail),
                *(k_events, codec.join_array(events), k_tx_id, tx_id),
            )
        )
        return data if len(data) <= codec.MAX_ENCODED_BYTES else None


_EVENT_HEAD = codec.map_header(2)
_RECEIPT_HEAD = codec.map_header(5)
# The splice writes these fields in this order: a field added to either record turns it
# off (and fails a test) until the splice writes it too.
_SPLICE_FIELDS_MATCH = Event._schema_of().encode_order == ("attrs", "kind") and (
    Receipt._schema_of().encode_order == ("accepted", "code", "detail", "events", "tx_id")
)


@dataclass(frozen=True, slots=True)
class BlockHeader(Record):
    chain_id: str
    height: int
    parent_hash: bytes
    proposer: bytes
    timestamp_ms: int
    tx_count: int
    receipt_count: int  # tx_count transaction receipts, then the end-of-block receipts
    tx_root: bytes
    receipt_root: bytes
    state_digest: bytes
    validator_set_hash: bytes

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        require_uint(self.height, "height")
        require_bytes(self.parent_hash, crypto.HASH_BYTES, "parent_hash")
        require_bytes(self.proposer, crypto.PUBLIC_KEY_BYTES, "proposer")
        require_uint(self.timestamp_ms, "timestamp_ms")
        require_uint(self.tx_count, "tx_count", MAX_BLOCK_TXS)
        require_uint(self.receipt_count, "receipt_count", MAX_BLOCK_RECEIPTS)
        require(self.receipt_count >= self.tx_count, "receipt_count below tx_count")
        for name in ("tx_root", "receipt_root", "state_digest", "validator_set_hash"):
            require_bytes(getattr(self, name), crypto.HASH_BYTES, name)

    def hash(self) -> bytes:
        return crypto.sha256(self.encode())


@dataclass(frozen=True, slots=True)
class Block(Record):
    header: BlockHeader
    txs: tuple[Transaction, ...]
    _body_root: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require(len(self.txs) == self.header.tx_count, "tx_count does not match the body")

    def body_root(self) -> bytes:
        """The Merkle root of the transactions as they are (computed once per object)."""
        root = self._body_root
        if root is None:
            root = tx_root(self.txs)
            object.__setattr__(self, "_body_root", root)
        return root

    def hash(self) -> bytes:
        return self.header.hash()

    def encode(self) -> bytes:
        """The canonical encoding, spliced from the transactions' own (cached) encodings."""
        txs = codec.join_array([tx.encode() for tx in self.txs])
        return codec.join_map({"header": self.header.encode(), "txs": txs})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = codec.MAX_ENCODED_BYTES) -> Self:
        """Strictly decode (CodecError or SchemaError). Fast path first: the block cut into
        its parts, each transaction by `decode_tx_fast` as an item two levels down (it
        caches the transaction's encoding and signed bytes); whatever that does not vouch
        for goes to `Record.decode`, which alone decides rejections and their codes."""
        block = cls._spliced(data, _tx_in_block) if len(data) <= max_bytes else None
        return block if block is not None else cls.from_value(codec.decode(data, max_bytes))

    @classmethod
    def decode_reusing(cls, payload: bytes, known: Callable[[bytes], Transaction | None]) -> Self:
        """`Block.decode(payload)`, reusing transactions already decoded: `known(raw)` is
        the Transaction whose encoding is `raw`, if the caller holds one (a node: its
        mempool). Only the header and unknown transactions are decoded (decode_tx); the
        block re-joined from the parts must equal `payload` byte for byte (so a wrong
        `known` answer only costs time). Whatever does not pass goes to `Block.decode`."""
        block = cls._spliced(payload, lambda raw: known(raw) or Transaction.decode_tx(raw))
        return block if block is not None else cls.decode(payload)

    @classmethod
    def _spliced(cls, payload: bytes, tx_of: Callable[[bytes], Transaction | None]) -> Self | None:
        """The block cut out of `payload` (codec.split_map): the header decoded strictly,
        each transaction by `tx_of(raw)`, if all are there and the block re-joined from
        them equals `payload` byte for byte; else None (this rejects nothing)."""
        parts = codec.split_map(payload, frozenset({"txs"}))
        if parts is None or set(parts) != {"header", "txs"} or not isinstance(parts["txs"], list):
            return None
        try:
            header = BlockHeader.decode(parts["header"])
            txs = []
            for raw in parts["txs"]:
                tx = tx_of(raw)
                if tx is None:
                    return None
                txs.append(tx)
            block = cls(header, tuple(txs))
        except (LedgerError, ValueError):
            return None
        return block if block.encode() == payload else None

    def tx_leaves(self) -> list[bytes]:
        return [tx.encode() for tx in self.txs]

    def check_body(self) -> None:
        """Raise ProofError unless the transactions are the ones the header commits to."""
        if self.body_root() != self.header.tx_root:
            raise ProofError("tx_root", "block body does not match its header's tx_root")
        for tx in self.txs:
            if tx.chain_id != self.header.chain_id:
                raise ProofError("chain_id", "transaction from another chain")


def _tx_in_block(raw: bytes) -> Transaction | None:
    return decode_tx_fast(raw, depth=2)  # block -> txs -> transaction


def tx_root(txs: Sequence[Transaction]) -> bytes:
    return merkle.root([tx.encode() for tx in txs])


def system_receipt_id(height: int, index: int) -> bytes:
    """The id of block `height`'s end-of-block receipt number `index` (0, 1, ...): the
    first is sha256(tag + height), the following ones add the index as 4 bytes."""
    suffix = b"" if index == 0 else index.to_bytes(4, "big")
    return crypto.sha256(SYSTEM_RECEIPT_TAG + height.to_bytes(8, "big") + suffix)


def system_receipts(height: int, events: Sequence[Event]) -> tuple[Receipt, ...]:
    """The end-of-block work's events as receipts of at most SYSTEM_RECEIPT_EVENTS events
    each, in emission order (none when the work emitted nothing)."""
    n = SYSTEM_RECEIPT_EVENTS
    chunks = [events[i : i + n] for i in range(0, len(events), n)]
    return tuple(
        Receipt(system_receipt_id(height, i), True, "ok", "", tuple(chunk))
        for i, chunk in enumerate(chunks)
    )


def receipt_root(receipts: Sequence[Receipt]) -> bytes:
    return merkle.root([r.encode() for r in receipts])


def encode_receipts(receipts: Sequence[Receipt]) -> bytes:
    """`codec.encode([r.to_value() for r in receipts])`, from the receipts' cached encodings."""
    return codec.join_array([r.encode() for r in receipts])
