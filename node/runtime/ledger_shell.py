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
- Each transaction is decoded once per node: a proposal's transactions are taken from
  the mempool by their encoding (`known_tx`), and the proposer's own block is never
  decoded. Each transaction signature is verified once per node (`SignatureCache`): on entry to
  the mempool, or on first sight in a proposal.
- Everything here is synchronous and may block (LevelDB, the VM); the driver runs it in a
  worker thread. Only the driver task calls it, so there is one writer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.messages import NULL_DIGEST
from node.ledger import crypto
from node.ledger.app import BlockInvalid, BlockResult, check_result, execute_block
from node.ledger.block import Block, BlockHeader, Receipt
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.context import BlockInfo, RecordCache
from node.ledger.errors import LedgerError
from node.ledger.genesis import K_VALIDATORS, Genesis
from node.ledger.tx import Transaction
from node.store.chain import ChainStore, Head

NULL_PROPOSER = b"\x00" * 32
# Codes that mean "not yet" rather than "never": the proposer leaves such a transaction in
# the mempool instead of burning it into a block as a rejection.
RETRY_LATER_CODES = frozenset({"bad_nonce"})


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
        self._results: OrderedDict[bytes, tuple[bytes, BlockResult]] = OrderedDict()
        self._decoded: OrderedDict[bytes, Block] = OrderedDict()
        self._head: tuple[bytes, BlockHeader] | None = None  # (block hash, header) of the head
        self._records = RecordCache()  # decoded records shared by every block executed here
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

    def head_header(self) -> BlockHeader:
        """The head's header, read (and decoded with its whole block) once per head."""
        head = self._store_head()
        if self._head is None or self._head[0] != head.block_hash:
            block = self.store.block(head.height)
            assert block is not None
            self._head = (head.block_hash, block.header)
        return self._head[1]

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
        block = self._decoded.get(key)
        if block is None:
            block = Block.decode_reusing(payload, self.known_tx)
            block.check_body()
            self._remember_decoded(key, block)
        return block

    def _remember_decoded(self, key: bytes, block: Block) -> None:
        self._decoded[key] = block
        if len(self._decoded) > 8:
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
        self, info: BlockInfo, txs: Sequence[Transaction], root: bytes | None = None
    ) -> BlockResult:
        accumulator = self.store.accumulator()
        return execute_block(
            self.store,
            accumulator,
            info,
            txs,
            self.sigs.check,
            txs_root=root,
            record_cache=self._records,
        )

    def _header(
        self, info: BlockInfo, proposer: bytes, txs: Sequence[Transaction], result: BlockResult
    ) -> BlockHeader:
        return BlockHeader(
            chain_id=self.chain_id,
            height=info.height,
            parent_hash=self._store_head().block_hash,
            proposer=proposer,
            timestamp_ms=info.time_ms,
            tx_count=len(txs),
            receipt_count=result.receipt_count,
            tx_root=result.tx_root,
            receipt_root=result.receipt_root,
            state_digest=result.state_digest,
            validator_set_hash=result.validator_set.hash(),
        )

    def build(self, txs: Sequence[Transaction], proposer: bytes, now_ms: int) -> Built:
        """The next block from `txs` (already signature-checked), executed on the head.
        Transactions rejected with a retry-later code are left out and returned."""
        parent = self.head_header()
        info = BlockInfo(self.chain_id, parent.height + 1, max(now_ms, parent.timestamp_ms))
        result = self._execute(info, txs)
        keep: list[Transaction] = []
        later: list[Transaction] = []
        for tx, r in zip(txs, result.receipts[: len(txs)], strict=True):
            (keep if r.accepted or r.code not in RETRY_LATER_CODES else later).append(tx)
        deferred = tuple(later)
        if deferred:  # a rejected transaction changes nothing, but the roots must be exact
            result = self._execute(info, keep)
        block = Block(self._header(info, proposer, keep, result), tuple(keep))
        payload = block.encode()
        self._cache(block.hash(), payload, result)
        self._remember_decoded(crypto.sha256(payload), block)  # consensus digests it next
        return Built(block, result, payload, deferred)

    def null_block(self, seq: int) -> Built:
        parent = self.head_header()
        if seq != parent.height + 1:
            raise LedgerError("not_next", f"null block {seq} on head {parent.height}")
        info = BlockInfo(self.chain_id, seq, parent.timestamp_ms)
        result = self._execute(info, ())
        block = Block(self._header(info, NULL_PROPOSER, (), result), ())
        return Built(block, result, b"")

    def judge(self, seq: int, payload: bytes, primary: bytes, now_ms: int, drift_ms: int) -> str:
        """ "" if the proposal for `seq` is a valid next block, else the reason. The caller
        only asks once block seq-1 is executed."""
        try:
            block = self.decode_block(payload)
        except LedgerError as exc:
            return f"undecodable: {exc}"
        header = block.header
        parent = self.head_header()
        problems = (
            (header.height != seq, f"height {header.height} != seq {seq}"),
            (header.height != parent.height + 1, "not the next height"),
            (header.parent_hash != self._store_head().block_hash, "wrong parent"),
            (header.chain_id != self.chain_id, "wrong chain"),
            (header.proposer != primary, "not proposed by the primary of its view"),
            (header.timestamp_ms < parent.timestamp_ms, "timestamp before its parent's"),
            (header.timestamp_ms > now_ms + drift_ms, "timestamp too far in the future"),
            (len({tx.tx_id for tx in block.txs}) != len(block.txs), "duplicate transaction"),
            (len(block.txs) > self.genesis.params.max_block_txs, "too many transactions"),
        )
        for bad, why in problems:
            if bad:
                return why
        try:
            info = BlockInfo(self.chain_id, header.height, header.timestamp_ms)
            result = self._execute(info, block.txs, block.body_root())
            check_result(header, result)
        except BlockInvalid as exc:
            return f"{exc.code}: {exc.detail}"
        self._cache(block.hash(), payload, result)
        return ""

    def _cache(self, block_hash: bytes, payload: bytes, result: BlockResult) -> None:
        self._results[block_hash] = (payload, result)
        if len(self._results) > 8:
            self._results.popitem(last=False)

    def commit(
        self, seq: int, payload: bytes, cert: CommitCertificate
    ) -> tuple[Block, BlockResult]:
        """Execute (or reuse the cached execution of) committed block `seq` and store it
        durably with its certificate. A committed block that does not replay means this
        node's state diverged: that raises (the node must stop)."""
        if payload == b"":
            built = self.null_block(seq)
            block, result = built.block, built.result
        else:
            block = self.decode_block(payload)
            cached = self._results.get(block.hash())
            parent_hash = self._store_head().block_hash
            if cached is not None and block.header.parent_hash == parent_hash:
                result = cached[1]
            else:
                info = BlockInfo(self.chain_id, block.header.height, block.header.timestamp_ms)
                result = self._execute(info, block.txs, block.body_root())
                check_result(block.header, result)
            if block.header.height != seq:
                raise LedgerError("divergence", f"block height {block.header.height} at seq {seq}")
        head = self.store.commit_block(
            block, result.receipts, cert, result.changes, result.accumulator
        )
        self._head = (head.block_hash, block.header)
        self._results.clear()
        return block, result

    def receipt(self, tx_id: bytes) -> tuple[int, int, Receipt] | None:
        loc = self.store.tx_location(tx_id)
        if loc is None:
            return None
        receipts = self.store.receipts(loc[0])
        if receipts is None or loc[1] >= len(receipts):
            return None
        return loc[0], loc[1], receipts[loc[1]]
