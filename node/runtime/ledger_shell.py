"""The node's ledger: build, judge and commit blocks over the real ChainStore.

Rules kept here:
- Block height == consensus sequence number. A PBFT null request (§4.4, empty payload)
  becomes a deterministic *null block*: no transactions, the parent's timestamp, proposer
  `NULL_PROPOSER`; every replica derives the same one, and its certificate certifies
  `NULL_DIGEST` instead of the header hash. Serving it to a lagging peer sends the empty
  payload again.
- A proposer executes before proposing (the header commits to its own results); a
  validator re-executes to judge; the result of either is cached by block hash so the
  commit does not execute the block a third time.
- Blocks may be executed *speculatively* on top of an executed but not yet committed
  parent (pipelining: the primary builds N+1 while N is voted on; a backup judges N+1
  while N's votes arrive). The state under such a block is the store plus the changes
  of the uncommitted chain back to the head. A speculative result is only ever used if
  its parent is the committed head when it is needed (the driver releases a verdict on
  N+1 only once N is committed with the hash N+1 names as parent), so a result computed
  while another block was being committed under it is never used.
- Thread safety: `build`/`judge` (one at a time) may run in a worker thread while
  `commit` runs in another; the caches and the head are guarded by one lock, and a
  speculative execution reads the store only where the uncommitted chain did not write
  (keys a concurrent commit of that same chain changes read the same either way).
- Each transaction is decoded once per node: a proposal's transactions are taken from
  the mempool by their encoding (`known_tx`), and the proposer's own block is never
  decoded. Each transaction signature is verified once per node (`SignatureCache`): on entry to
  the mempool, or on first sight in a proposal.
- Everything here is synchronous and may block (LevelDB, the VM); the driver runs it in a
  worker thread. Only the driver task calls it, so there is one writer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.messages import NULL_DIGEST
from node.ledger import crypto
from node.ledger.app import BlockInvalid, BlockResult, check_result, execute_block
from node.ledger.block import Block, BlockHeader, Receipt
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.context import BlockInfo, RecordCache, ScanOverlay, ScanReader
from node.ledger.errors import LedgerError
from node.ledger.genesis import K_VALIDATORS, Genesis
from node.ledger.state import Pending, StateAccumulator
from node.ledger.tx import Transaction
from node.store.chain import ChainStore, Head

NULL_PROPOSER = b"\x00" * 32
# Codes that mean "not yet" rather than "never": the proposer leaves such a transaction in
# the mempool instead of burning it into a block as a rejection.
RETRY_LATER_CODES = frozenset({"bad_nonce"})
SPECULATIVE_MAX = 16  # executed, uncommitted blocks kept (a few per view in flight)
DECODED_MAX = 8  # decoded proposals kept (consensus digests a payload, then it is judged)


class SignatureCache:
    """tx_id -> signature that verified. Bounded (oldest forgotten first)."""

    def __init__(self, size_max: int = 200_000) -> None:
        self._ok: OrderedDict[bytes, bytes] = OrderedDict()
        self._size_max = size_max

    def remember(self, tx_id: bytes, signature: bytes) -> None:
        self._ok[tx_id] = signature
        if len(self._ok) > self._size_max:
            self._ok.popitem(last=False)

    def known(self, tx_id: bytes, signature: bytes) -> bool:
        return self._ok.get(tx_id) == signature

    def check(self, tx: Transaction, tx_id: bytes | None = None) -> bool:
        tx_id = tx.tx_id if tx_id is None else tx_id
        if self.known(tx_id, tx.signature):
            return True
        if not tx.signature_valid():
            return False
        self.remember(tx_id, tx.signature)
        return True

    def __len__(self) -> int:
        return len(self._ok)


@dataclass(frozen=True, slots=True)
class Judged:
    """A proposal's verdict: `why` is "" if it is a valid child of `parent_hash`.
    `ready` is False when its parent is neither committed nor executed here yet (ask
    again later); then `why` says so and means nothing about the proposal."""

    why: str
    parent_hash: bytes = b""
    ready: bool = True

    @property
    def valid(self) -> bool:
        return self.ready and not self.why


@dataclass(frozen=True, slots=True)
class _Base:
    """What a block executes on: its parent's header and hash, the state after the
    parent, and the state accumulator after it."""

    header: BlockHeader
    block_hash: bytes
    state: ScanReader
    accumulator: StateAccumulator
    in_flight: frozenset[bytes] = frozenset()  # ids of txs in the uncommitted ancestors


class _Layered(ScanOverlay):
    """The committed store plus the (uncommitted) writes of a speculative chain."""

    __slots__ = ()

    def __init__(self, store: ChainStore, writes: dict[bytes, bytes | Pending | None]) -> None:
        super().__init__(store)
        self._writes = writes


@dataclass(frozen=True, slots=True)
class Built:
    """A block with the result of executing it on the current head."""

    block: Block
    result: BlockResult
    payload: bytes
    deferred: tuple[Transaction, ...] = ()  # left in the mempool (RETRY_LATER_CODES)


class LedgerShell:
    """One node's chain: the store plus the execution cache."""

    def __init__(
        self,
        store: ChainStore,
        genesis: Genesis,
        sigs: SignatureCache,
        known_tx: Callable[[bytes], Transaction | None] = lambda _raw: None,
    ) -> None:
        self.store = store
        self.known_tx = known_tx  # a transaction this node already decoded, by encoding
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.sigs = sigs
        # block hash -> (block, result) for blocks executed here and not yet committed
        self._results: OrderedDict[bytes, tuple[Block, BlockResult]] = OrderedDict()
        self._decoded: OrderedDict[bytes, Block] = OrderedDict()
        self._head: tuple[bytes, BlockHeader] | None = None  # (block hash, header) of the head
        self._lock = threading.Lock()
        # Decoded records shared by the blocks executed here (context.RecordCache). One
        # cache per thread that executes: it keeps per-block bookkeeping, and the lane
        # (build/judge, one at a time) and a commit that must re-execute may overlap.
        self._records = RecordCache()
        self._commit_records = RecordCache()
        block0, changes, acc = genesis.block()
        if store.head() is None:
            store.commit_block(block0, [], None, changes, acc)
        stored0 = store.block(0)
        if stored0 is None or stored0.hash() != block0.hash():
            raise LedgerError("genesis_mismatch", "the store was created from another genesis")

    # -- reading ---------------------------------------------------------------------

    def _store_head(self) -> Head:
        head = self.store.head()
        assert head is not None  # block 0 is written at construction
        return head

    @property
    def height(self) -> int:
        return self._store_head().height

    def head_hash(self) -> bytes:
        return self._store_head().block_hash

    def head_header(self) -> BlockHeader:
        """The head's header, read (and decoded with its whole block) once per head."""
        with self._lock:
            return self._head_locked()[1]

    def _head_locked(self) -> tuple[bytes, BlockHeader]:
        return self._head_snapshot()[1:]

    def _head_snapshot(self) -> tuple[Head, bytes, BlockHeader]:
        """The store's head (read once: a commit in another thread may move it) with its
        hash and header; the caller holds the lock."""
        head = self._store_head()
        if self._head is None or self._head[0] != head.block_hash:
            block = self.store.block(head.height)
            assert block is not None
            self._head = (head.block_hash, block.header)
        return head, self._head[0], self._head[1]

    def executed(self, block_hash: bytes) -> bool:
        """True if a child of `block_hash` can be executed now: it is the committed head
        or a block executed here on top of it (through other such blocks)."""
        with self._lock:
            return self._chain_locked(block_hash) is not None

    def _chain_locked(self, parent_hash: bytes) -> list[tuple[Block, BlockResult]] | None:
        """The executed, uncommitted blocks from `parent_hash` back to the head (newest
        first; empty if it is the head), or None if it does not lead to the head."""
        _, head_hash, head = self._head_snapshot()
        chain: list[tuple[Block, BlockResult]] = []
        cursor = parent_hash
        while cursor != head_hash:
            found = self._results.get(cursor)
            if found is None or found[0].header.height <= head.height:
                return None  # unknown, or on a branch the committed chain left
            chain.append(found)
            cursor = found[0].header.parent_hash
        return chain

    def _base_locked(self, parent_hash: bytes) -> _Base | None:
        snapshot, head_hash, head = self._head_snapshot()
        if parent_hash == head_hash:
            return _Base(head, head_hash, self.store, snapshot.accumulator)
        chain = self._chain_locked(parent_hash)
        if chain is None:
            return None
        writes: dict[bytes, bytes | Pending | None] = {}  # final bytes only, never Pending
        for _block, result in reversed(chain):  # oldest first: later writes win
            writes.update((key, new) for key, (_old, new) in result.changes.items())
        parent_block, parent_result = chain[0]
        return _Base(
            parent_block.header,
            parent_hash,
            _Layered(self.store, writes),
            parent_result.accumulator,
            frozenset(tx.tx_id for block, _ in chain for tx in block.txs),
        )

    def validator_set(self) -> ValidatorSet:
        raw = self.store.get_state(K_VALIDATORS)
        assert raw is not None
        return ValidatorSet.decode(raw)

    def decode_block(self, payload: bytes) -> Block:
        """Decode a proposal (cached by payload hash: consensus digests it, then we judge it).
        A body that is not the one its header commits to (tx_root) is refused like garbage:
        the consensus digest is the header hash, so without this check a Byzantine primary
        could pair the real header with another body and the digest would still match."""
        key = crypto.sha256(payload)
        with self._lock:
            block = self._decoded.get(key)
        if block is None:
            block = Block.decode_reusing(payload, self.known_tx)
            block.check_body()
            self._remember_decoded(key, block)
        return block

    def _remember_decoded(self, key: bytes, block: Block) -> None:
        with self._lock:
            self._decoded[key] = block
            if len(self._decoded) > DECODED_MAX:
                self._decoded.popitem(last=False)

    def digest(self, payload: bytes) -> bytes:
        """The consensus digest of a payload: the block (header) hash. Raises on garbage;
        the replica reports it as a bad payload."""
        if payload == b"":
            return NULL_DIGEST
        return self.decode_block(payload).hash()

    def served_payload(self, height: int) -> tuple[bytes, CommitCertificate] | None:
        """What a lagging peer gets for `height`: the block bytes (empty for a null block)."""
        raw = self.store.block_bytes(height)
        cert = self.store.certificate(height)
        if raw is None or cert is None:
            return None
        return (b"" if cert.block_hash == NULL_DIGEST else raw), cert

    # -- executing -------------------------------------------------------------------

    def _execute(
        self,
        base: _Base,
        info: BlockInfo,
        txs: Sequence[Transaction],
        root: bytes | None = None,
        records: RecordCache | None = None,
    ) -> BlockResult:
        return execute_block(
            base.state,
            base.accumulator,
            info,
            txs,
            self.sigs.check,
            txs_root=root,
            record_cache=records if records is not None else self._records,
        )

    def _base(self, parent_hash: bytes | None) -> _Base | None:
        with self._lock:
            if parent_hash is None:
                parent_hash = self._head_locked()[0]
            return self._base_locked(parent_hash)

    def _header(
        self,
        base: _Base,
        info: BlockInfo,
        proposer: bytes,
        txs: Sequence[Transaction],
        result: BlockResult,
    ) -> BlockHeader:
        return BlockHeader(
            chain_id=self.chain_id,
            height=info.height,
            parent_hash=base.block_hash,
            proposer=proposer,
            timestamp_ms=info.time_ms,
            tx_count=len(txs),
            receipt_count=result.receipt_count,
            tx_root=result.tx_root,
            receipt_root=result.receipt_root,
            state_digest=result.state_digest,
            validator_set_hash=result.validator_set.hash(),
        )

    def build(
        self,
        txs: Sequence[Transaction],
        proposer: bytes,
        now_ms: int,
        parent_hash: bytes | None = None,
    ) -> Built:
        """The next block from `txs` (already signature-checked), executed on the head or
        on `parent_hash`, a block executed here (see `executed`). Transactions already in
        an uncommitted ancestor are left out (they would only be rejected as replays);
        transactions rejected with a retry-later code are left out and returned."""
        base = self._base(parent_hash)
        if base is None:
            raise LedgerError("not_executed", "the parent block is not executed here")
        if base.in_flight:
            txs = [tx for tx in txs if tx.tx_id not in base.in_flight]
        parent = base.header
        info = BlockInfo(self.chain_id, parent.height + 1, max(now_ms, parent.timestamp_ms))
        result = self._execute(base, info, txs)
        keep: list[Transaction] = []
        later: list[Transaction] = []
        for tx, r in zip(txs, result.receipts[: len(txs)], strict=True):
            (keep if r.accepted or r.code not in RETRY_LATER_CODES else later).append(tx)
        deferred = tuple(later)
        if deferred:  # a rejected transaction changes nothing, but the roots must be exact
            result = self._execute(base, info, keep)
        block = Block(self._header(base, info, proposer, keep, result), tuple(keep))
        payload = block.encode()
        self._cache(block, result)
        self._remember_decoded(crypto.sha256(payload), block)  # consensus digests it next
        return Built(block, result, payload, deferred)

    def null_block(self, seq: int) -> Built:
        base = self._base(None)
        assert base is not None  # the head is always a base
        parent = base.header
        if seq != parent.height + 1:
            raise LedgerError("not_next", f"null block {seq} on head {parent.height}")
        info = BlockInfo(self.chain_id, seq, parent.timestamp_ms)
        result = self._execute(base, info, (), records=self._commit_records)
        block = Block(self._header(base, info, NULL_PROPOSER, (), result), ())
        return Built(block, result, b"")

    def judge(self, seq: int, payload: bytes, primary: bytes, now_ms: int, drift_ms: int) -> Judged:
        """Is the proposal for `seq` a valid child of the block it names as parent? That
        parent must be the committed head or a block executed here (speculation: the
        driver acts on the verdict only once that parent is committed)."""
        try:
            block = self.decode_block(payload)
        except LedgerError as exc:
            return Judged(f"undecodable: {exc}")
        header = block.header
        with self._lock:
            head = self._head_locked()[1]
            base = self._base_locked(header.parent_hash)
        if base is None:
            if seq == head.height + 1:
                return Judged("wrong parent", header.parent_hash)
            return Judged("parent not executed here", header.parent_hash, ready=False)
        parent = base.header
        problems = (
            (header.height != seq, f"height {header.height} != seq {seq}"),
            (header.height != parent.height + 1, "not the next height"),
            (header.chain_id != self.chain_id, "wrong chain"),
            (header.proposer != primary, "not proposed by the primary of its view"),
            (header.timestamp_ms < parent.timestamp_ms, "timestamp before its parent's"),
            (header.timestamp_ms > now_ms + drift_ms, "timestamp too far in the future"),
            (len({tx.tx_id for tx in block.txs}) != len(block.txs), "duplicate transaction"),
            (len(block.txs) > self.genesis.params.max_block_txs, "too many transactions"),
        )
        for bad, why in problems:
            if bad:
                return Judged(why, header.parent_hash)
        try:
            info = BlockInfo(self.chain_id, header.height, header.timestamp_ms)
            result = self._execute(base, info, block.txs, block.body_root())
            check_result(header, result)
        except BlockInvalid as exc:
            return Judged(f"{exc.code}: {exc.detail}", header.parent_hash)
        self._cache(block, result)
        return Judged("", header.parent_hash)

    def _cache(self, block: Block, result: BlockResult) -> None:
        with self._lock:
            if block.header.height <= self._store_head().height:
                return  # committed meanwhile (by another thread): never needed again
            self._results[block.hash()] = (block, result)
            while len(self._results) > SPECULATIVE_MAX:
                self._results.popitem(last=False)

    def commit(
        self, seq: int, payload: bytes, cert: CommitCertificate
    ) -> tuple[Block, BlockResult]:
        """Execute (or reuse the execution of) committed block `seq` on the head and store
        it durably with its certificate. A committed block that does not replay means
        this node's state diverged: that raises (the node must stop)."""
        if payload == b"":
            built = self.null_block(seq)
            block, result = built.block, built.result
        else:
            block = self.decode_block(payload)
            if block.header.height != seq:
                raise LedgerError("divergence", f"block height {block.header.height} at seq {seq}")
            with self._lock:
                head_hash = self._head_locked()[0]
                cached = self._results.get(block.hash())
            if cached is not None and block.header.parent_hash == head_hash:
                result = cached[1]
            else:
                base = self._base(None)
                assert base is not None
                info = BlockInfo(self.chain_id, block.header.height, block.header.timestamp_ms)
                root = block.body_root()
                result = self._execute(base, info, block.txs, root, self._commit_records)
                check_result(block.header, result)
        head = self.store.commit_block(
            block, result.receipts, cert, result.changes, result.accumulator
        )
        with self._lock:
            self._head = (head.block_hash, block.header)
            for block_hash in [h for h, (b, _) in self._results.items() if b.header.height <= seq]:
                del self._results[block_hash]
        return block, result

    def receipt(self, tx_id: bytes) -> tuple[int, int, Receipt] | None:
        loc = self.store.tx_location(tx_id)
        if loc is None:
            return None
        receipts = self.store.receipts(loc[0])
        if receipts is None or loc[1] >= len(receipts):
            return None
        return loc[0], loc[1], receipts[loc[1]]
