"""The licensing ledger's block executor: transactions in, receipts and state changes out.

Rules kept here (CometBFT ABCI style: consensus orders bytes, the app validates and
executes them):
- A block is executed in order against an overlay of the committed state; the result is
  its receipts, the state changes and the new state accumulator. Nothing is written
  until the shell commits the result, so executing a proposal to judge it is free.
- Envelope checks (chain id, signature) make a transaction unfit for any block: a block
  containing one is invalid (`BlockInvalid`). Everything else is a receipt; a rejected
  transaction changes nothing at all.
- Member transactions carry nonce = last executed nonce + 1 and the nonce advances only
  when the transaction executes, so a signed request executes at most once (a rejected
  one may be included again and judged again). Device usage reports carry the device's
  sequence number instead (checked by the usage handler).
- After the transactions, time-driven work runs: due period closes, due settlements and
  governance changes whose height has come. Its events become the block's end-of-block
  receipts (`block.system_receipts`), appended after the transaction receipts, so the
  receipt root commits to every statement closed and every payment made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from node.ledger import devices, governance, licensing, money, periods
from node.ledger.block import (
    MAX_EVENTS,
    Block,
    BlockHeader,
    Event,
    Receipt,
    receipt_root,
    system_receipts,
    tx_root,
)
from node.ledger.certificate import ValidatorSet
from node.ledger.context import (
    BlockInfo,
    BlockReads,
    Ctx,
    RecordCache,
    Reject,
    ScanOverlay,
    ScanReader,
)
from node.ledger.errors import LedgerError
from node.ledger.genesis import K_VALIDATORS
from node.ledger.model import Member, k_member, k_nonce
from node.ledger.state import StateAccumulator
from node.ledger.tx import Transaction
from node.ledger.usage import TX_USAGE_REPORT

Handler = Callable[[Ctx, dict[str, Any]], None]
MAX_DETAIL = 1024


class BlockInvalid(LedgerError):
    """A proposed block that no honest validator may accept."""


@dataclass(frozen=True, slots=True)
class BlockResult:
    receipts: tuple[Receipt, ...]  # one per transaction, then the end-of-block receipts
    changes: dict[bytes, tuple[bytes | None, bytes | None]]
    accumulator: StateAccumulator
    tx_root: bytes
    receipt_root: bytes
    validator_set: ValidatorSet  # in force after this block

    @property
    def state_digest(self) -> bytes:
        return self.accumulator.digest()

    @property
    def receipt_count(self) -> int:
        return len(self.receipts)


HANDLERS: dict[str, Handler] = {
    **governance.HANDLERS,
    **licensing.HANDLERS,
    **devices.HANDLERS,
    **money.HANDLERS,
}


def _verify(tx: Transaction) -> bool:
    return tx.signature_valid()


@dataclass(frozen=True, slots=True)
class Executed:
    """A block's transactions run in order, before the roots and the digest are computed."""

    receipts: tuple[Receipt, ...]  # transaction receipts, then end-of-block receipts
    changes: dict[bytes, tuple[bytes | None, bytes | None]]
    validator_set: ValidatorSet


def execute_block(
    base: ScanReader,
    accumulator: StateAccumulator,
    block: BlockInfo,
    txs: Sequence[Transaction],
    signature_ok: Callable[[Transaction], bool] = _verify,
    share_records: bool = True,
    txs_root: bytes | None = None,
    record_cache: RecordCache | None = None,
) -> BlockResult:
    """Execute `txs` at `block` on top of `base`; raises BlockInvalid for an unfit block.
    `txs_root`: the Merkle root of `txs` when the caller already computed it from them
    (`Block.body_root()`), so a judged block is not hashed twice. `record_cache`: see
    `run_transactions`."""
    executed = run_transactions(base, block, txs, signature_ok, share_records, record_cache)
    return BlockResult(
        receipts=executed.receipts,
        changes=executed.changes,
        accumulator=accumulator.apply(executed.changes),
        tx_root=tx_root(txs) if txs_root is None else txs_root,
        receipt_root=receipt_root(executed.receipts),
        validator_set=executed.validator_set,
    )


def run_transactions(
    base: ScanReader,
    block: BlockInfo,
    txs: Sequence[Transaction],
    signature_ok: Callable[[Transaction], bool] = _verify,
    share_records: bool = True,
    record_cache: RecordCache | None = None,
) -> Executed:
    """The transactions and the end-of-block work of `execute_block`, without the hashing.

    Records are shared through `record_cache` (a caller keeps one across blocks, so a
    record written by one block is not decoded by the next), or a new RecordCache.
    `share_records=False` decodes every record afresh (the reference the cache must match).
    """
    table = HANDLERS
    overlay = ScanOverlay(BlockReads(base))
    records = None
    if share_records:
        records = RecordCache() if record_cache is None else record_cache
    receipts = []
    for tx in txs:
        if tx.chain_id != block.chain_id:
            raise BlockInvalid("chain_id", f"transaction {tx.tx_id.hex()} is for {tx.chain_id}")
        if not signature_ok(tx):
            raise BlockInvalid("bad_signature", f"transaction {tx.tx_id.hex()}")
        receipts.append(apply_tx(overlay, block, tx, table, records))
    end = Ctx(overlay, block, b"", records=records)
    periods.end_of_block(end)
    receipts.extend(system_receipts(block.height, _events(end)))
    changes = overlay.changes()
    if records is not None:
        records.end_block(changes)
    validators = ValidatorSet.decode(_must_get(overlay, K_VALIDATORS))
    return Executed(tuple(receipts), changes, validators)


def _events(ctx: Ctx) -> tuple[Event, ...]:
    return tuple(Event.normalised(kind, attrs) for kind, attrs in ctx.events)


def _must_get(overlay: ScanOverlay, key: bytes) -> bytes:
    value = overlay.get(key)
    if value is None:
        raise LedgerError("no_genesis", "state has no validator set; was genesis applied?")
    return value


def apply_tx(
    overlay: ScanOverlay,
    block: BlockInfo,
    tx: Transaction,
    table: dict[str, Handler],
    records: RecordCache | None = None,
) -> Receipt:
    """Run one transaction; a rejection discards all its writes, the nonce bump included
    (the same signed request may be included again and judged again)."""
    tx_id = tx.tx_id
    handler = table.get(tx.tx_type)
    if handler is None:
        return _rejected(tx_id, "unknown_tx_type", tx.tx_type)
    child = overlay.child()
    ctx = Ctx(child, block, tx.signer, tx_id=tx_id, nonce=tx.nonce, records=records)
    try:
        if tx.tx_type != TX_USAGE_REPORT:
            _check_member_nonce(ctx)
        handler(ctx, tx.body)
    except Reject as exc:
        return _rejected(tx_id, exc.code, exc.detail)
    except LedgerError as exc:  # malformed body: schema, codec, signature inside the body
        return _rejected(tx_id, exc.code, exc.detail)
    if len(ctx.events) > MAX_EVENTS:
        return _rejected(tx_id, "too_many_events", f"{len(ctx.events)} > {MAX_EVENTS}")
    child.merge_into_parent()
    return Receipt(tx_id, True, "ok", "", _events(ctx))


def _check_member_nonce(ctx: Ctx) -> None:
    if ctx.get(k_member(ctx.signer), Member) is None:
        raise Reject("not_a_member", "signer is not a consortium member")
    expected = (ctx.get_value(k_nonce(ctx.signer)) or 0) + 1
    if ctx.nonce != expected:
        code = "replay" if ctx.nonce < expected else "bad_nonce"
        raise Reject(code, f"nonce {ctx.nonce}, expected {expected}")
    ctx.put_value(k_nonce(ctx.signer), ctx.nonce)


def _rejected(tx_id: bytes, code: str, detail: str) -> Receipt:
    return Receipt(tx_id, False, code[:64], detail[:MAX_DETAIL], ())


def check_result(header: BlockHeader, result: BlockResult) -> None:
    """Raise BlockInvalid unless executing the block reproduced what its header claims."""
    if header.receipt_count != result.receipt_count:
        raise BlockInvalid(
            "receipt_count", f"header {header.receipt_count} != {result.receipt_count}"
        )
    claims = (
        ("tx_root", header.tx_root, result.tx_root),
        ("receipt_root", header.receipt_root, result.receipt_root),
        ("state_digest", header.state_digest, result.state_digest),
        ("validator_set_hash", header.validator_set_hash, result.validator_set.hash()),
    )
    for name, claimed, computed in claims:
        if claimed != computed:
            raise BlockInvalid(name, f"header {name} {claimed.hex()[:16]} != {computed.hex()[:16]}")


def replay_block(base: ScanReader, accumulator: StateAccumulator, block: Block) -> BlockResult:
    """Re-execute a stored or proposed block and check it against its own header."""
    info = BlockInfo(block.header.chain_id, block.header.height, block.header.timestamp_ms)
    result = execute_block(base, accumulator, info, block.txs, txs_root=block.body_root())
    check_result(block.header, result)
    return result
