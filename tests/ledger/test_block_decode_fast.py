"""Block.decode's fast path (the block cut into its parts, each transaction decoded by
decode_tx_fast two levels down) against the reference: the whole payload decoded strictly
by codec.reference_decode, then Block.from_value. For any bytes both give the same block
(same transactions, encodings, signed bytes and ids) or the same LedgerError.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import codec
from node.ledger.block import Block, BlockHeader
from node.ledger.errors import LedgerError
from node.ledger.tx import Transaction
from tests.ledger.test_tx_decode_fast import loose_pack
from tests.ledger.test_tx_fields import nested, packable_near_misses, transactions
from tests.mutation import edits, hows, mutate

H = b"\x11" * 32


def block_of(txs: list[Transaction], chain_id: str = "alps-test") -> Block:
    header = BlockHeader(chain_id, 3, H, H, 1, len(txs), len(txs) + 1, H, H, H, H)
    return Block(header, tuple(txs))


def reference(data: bytes) -> Block:
    return Block.from_value(codec.reference_decode(data))


def outcome(decode: Callable[[bytes], Block], data: bytes) -> object:
    try:
        block = decode(data)
    except LedgerError as exc:
        return ("rejected", type(exc), exc.code, exc.detail)
    ids = []
    for tx in block.txs:
        try:
            ids.append((tx.encode(), tx.signing_bytes(), tx.tx_id))
        except LedgerError as exc:
            ids.append(("unsignable", type(exc), exc.code))
    return block, block.encode(), ids


def assert_same_as_reference(data: bytes) -> None:
    assert outcome(Block.decode, data) == outcome(reference, data)


blocks = st.lists(transactions(), max_size=4).map(block_of)


@settings(max_examples=200, deadline=None)
@given(blocks)
def test_valid_blocks_decode_the_same(block: Block) -> None:
    data = block.encode()  # spliced: the canonical form, even with bodies too deep for a block
    assert_same_as_reference(data)


@settings(max_examples=400, deadline=None)
@given(blocks, edits(), hows())
def test_mutated_blocks_decode_exactly_as_the_reference(
    block: Block, changes: list[tuple[int, int]], how: str
) -> None:
    assert_same_as_reference(mutate(block.encode(), changes, how))


@settings(max_examples=150, deadline=None)
@given(blocks, st.data())
def test_reshaped_blocks_decode_exactly_as_the_reference(block: Block, data: st.DataObject) -> None:
    """Longer forms anywhere, a transaction or the header replaced by anything."""
    value = {"header": block.header.to_value(), "txs": [tx.to_value() for tx in block.txs]}
    value["header"] = dict(codec.sorted_items(value["header"]))
    value["txs"] = [dict(codec.sorted_items(tx)) for tx in value["txs"]]
    how = data.draw(st.sampled_from(["loose", "item", "header"]))
    if how == "item" and value["txs"]:
        value["txs"][data.draw(st.integers(0, len(value["txs"]) - 1))] = data.draw(
            packable_near_misses
        )
    elif how == "header":
        value["header"] = data.draw(packable_near_misses)
    assert_same_as_reference(loose_pack(value, data.draw))


@pytest.mark.parametrize("depth", range(26, 32))
def test_bodies_too_deep_for_a_block_are_refused_as_before(depth: int) -> None:
    tx = Transaction("alps-test", "t", nested(depth), b"k" * 32, 1, b"s" * 64)  # type: ignore[arg-type]
    data = block_of([tx]).encode()
    assert_same_as_reference(data)
    assert (outcome(Block.decode, data)[0] != "rejected") == (depth <= 29)  # type: ignore[index]


def test_decode_reusing_refuses_bodies_too_deep_for_a_block() -> None:
    """decode_reusing decodes each unknown transaction alone (decode_tx); a transaction
    too deep for a block is refused there too, so a live validator never accepts a block
    that a node reading it back (Block.decode) would refuse."""
    tx = Transaction("alps-test", "t", nested(30), b"k" * 32, 1, b"s" * 64)  # type: ignore[arg-type]
    data = block_of([tx]).encode()
    with pytest.raises(LedgerError):
        Block.decode(data)
    with pytest.raises(LedgerError):
        Block.decode_reusing(data, lambda _raw: None)
