"""Request bodies: read with a hard bound, decode strictly, validate completely.

Rules kept here: a body is read chunk by chunk and reading stops as soon as it passes
the bound (413), so an oversized or endless body costs at most the bound in memory; a
declared Content-Length over the bound is refused before reading. A submission is
decoded and every transaction in it validated before anything is handed on: the caller
gets either the whole batch as typed `Transaction`s or one `ApiError`. A canonical batch
of valid transactions takes a fast path (each transaction's bytes cut out and decoded by
tx.decode_tx_fast); anything else takes the full path, which alone decides the error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from node.api.errors import ApiError, bad_request
from node.ledger import codec
from node.ledger.errors import LedgerError
from node.ledger.tx import MAX_TX_BYTES, Transaction, decode_tx_fast

MSGPACK_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")


def too_large(detail: str) -> ApiError:
    return ApiError(413, "too_large", detail)


async def read_bounded(
    declared_length: str | None, chunks: AsyncIterator[bytes], max_bytes: int
) -> bytes:
    """The whole body, or ApiError 413 as soon as it exceeds `max_bytes`."""
    if declared_length is not None:
        try:
            declared = int(declared_length)
        except ValueError as exc:
            raise bad_request("bad_content_length", repr(declared_length[:40])) from exc
        if declared > max_bytes:
            raise too_large(f"body of {declared} bytes exceeds {max_bytes}")
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise too_large(f"body exceeds {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def check_msgpack_type(content_type: str | None) -> None:
    """No Content-Type is accepted (the body is judged on its own); a different one is 415."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in MSGPACK_TYPES:
        raise ApiError(415, "unsupported_media_type", f"expected application/msgpack, got {media}")


def decode_submission(data: bytes, batch_max: int) -> list[Transaction]:
    """`codec.encode({"txs": [tx.to_value(), ...]})` -> the transactions, all valid."""
    txs = _plain_submission(data, batch_max)
    return txs if txs is not None else full_submission(data, batch_max)


def full_submission(data: bytes, batch_max: int) -> list[Transaction]:
    """decode_submission without its fast path: the whole body decoded strictly, then each
    transaction built from its value (this alone decides what is refused, and how)."""
    try:
        doc: Any = codec.decode(data)
    except LedgerError as exc:
        raise bad_request("undecodable", f"{exc.code}: {exc.detail}") from exc
    if not isinstance(doc, dict) or set(doc) != {"txs"} or not isinstance(doc["txs"], list):
        raise bad_request("bad_schema", 'body must be a map {"txs": [transaction, ...]}')
    values: list[Any] = doc["txs"]
    if not values:
        raise bad_request("empty_batch", "a batch holds at least one transaction")
    if len(values) > batch_max:
        raise too_large(f"{len(values)} transactions exceed the batch limit of {batch_max}")
    return [_transaction(i, v) for i, v in enumerate(values)]


def _plain_submission(data: bytes, batch_max: int) -> list[Transaction] | None:
    """decode_submission's fast path: the batch cut into its transactions' encodings
    (codec.split_map), each decoded by decode_tx_fast as an item two levels down, and the
    batch re-joined from them must equal `data` byte for byte. None when anything is off
    (decode_submission's full path then decides, and says what is wrong)."""
    if type(data) is not bytes or len(data) > codec.MAX_ENCODED_BYTES:
        return None
    parts = codec.split_map(data, _TXS)
    if parts is None or set(parts) != _TXS:
        return None
    raws: list[bytes] = parts["txs"]
    if not raws or len(raws) > batch_max:
        return None
    txs = []
    for raw in raws:
        tx = decode_tx_fast(raw, depth=2)  # {"txs": [transaction, ...]}
        if tx is None:
            return None
        txs.append(tx)
    return txs if codec.join_map({"txs": codec.join_array(raws)}) == data else None


_TXS = frozenset({"txs"})


def _transaction(index: int, value: Any) -> Transaction:
    try:
        tx = Transaction.from_value(value, f"txs[{index}]")
        size = len(tx.encode())
    except LedgerError as exc:
        raise bad_request("bad_schema", f"{exc.code}: {exc.detail}") from exc
    if size > MAX_TX_BYTES:
        raise bad_request("bad_schema", f"txs[{index}]: {size} bytes exceeds {MAX_TX_BYTES}")
    return tx
