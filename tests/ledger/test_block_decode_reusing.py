"""Decoding a proposal from transactions already held (Block.decode_reusing, codec.split_map).

The fast path may only make accepting cheaper: for any bytes it must give exactly what
`Block.decode` gives (the same block, or a LedgerError), whatever the `known` lookup says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import codec
from node.ledger.block import Block
from node.ledger.errors import LedgerError
from node.ledger.tx import Transaction
from tests.factory import build_chain
from tests.mutation import edits, hows, mutate

BLOCKS = [b.block for b in build_chain(4) if b.block.txs]


def _known(block: Block) -> dict[bytes, Transaction]:
    return {tx.encode(): tx for tx in block.txs}


def _outcome(decode: Callable[[], Block]) -> object:
    try:
        return decode()
    except LedgerError as exc:
        return ("error", type(exc))


def test_split_map_cuts_values_and_array_items_without_decoding() -> None:
    data = codec.encode({"a": {"x": 1}, "list": [[1, 2], "s", b"\x00"]})
    parts = codec.split_map(data, frozenset({"list"}))
    assert parts == {
        "a": codec.encode({"x": 1}),
        "list": [codec.encode([1, 2]), codec.encode("s"), codec.encode(b"\x00")],
    }
    for bad in (codec.encode([1]), data + b"\x00", data[:-1], b"", b"\xc1"):
        assert codec.split_map(bad) is None
    assert codec.split_map(b"\x82\xa1a\x01\xa1a\x02") is None  # {"a": 1, "a": 2}
    assert codec.split_map(b"\x81\x01\x01") is None  # {1: 1}


def test_known_transactions_are_reused_not_decoded_again() -> None:
    for block in BLOCKS:
        payload = block.encode()
        known = _known(block)
        decoded = Block.decode_reusing(payload, known.get)
        assert decoded == Block.decode(payload) == block
        assert all(a is b for a, b in zip(decoded.txs, block.txs, strict=True))
        fresh = Block.decode_reusing(payload, lambda _raw: None)
        assert fresh == block and all(a is not b for a, b in zip(fresh.txs, block.txs, strict=True))


def test_a_wrong_lookup_answer_cannot_change_the_block() -> None:
    block = BLOCKS[0]
    payload = block.encode()
    other = dataclasses.replace(block.txs[0], nonce=block.txs[0].nonce + 99)
    decoded = Block.decode_reusing(payload, lambda _raw: other)
    assert decoded == block and other not in decoded.txs


def test_non_canonical_framing_is_refused_like_the_reference() -> None:
    block = BLOCKS[0]
    n = len(block.txs)
    assert n < 16
    parts = codec.split_map(block.encode(), frozenset({"txs"}))
    assert parts is not None
    long_array = b"\xdc" + n.to_bytes(2, "big") + b"".join(parts["txs"])  # array16 for n < 16
    payload = b"\x82" + codec.encode("header") + parts["header"] + codec.encode("txs") + long_array
    with pytest.raises(LedgerError) as reference:
        Block.decode(payload)
    with pytest.raises(LedgerError) as fast:
        Block.decode_reusing(payload, _known(block).get)
    assert fast.value.code == reference.value.code


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(range(len(BLOCKS))),
    edits(1 << 20),
    hows("flip", "cut", "insert"),
)
def test_mutated_payloads_decode_exactly_as_the_reference(
    which: int, changes: list[tuple[int, int]], how: str
) -> None:
    block = BLOCKS[which]
    payload = mutate(block.encode(), changes, how)
    known = _known(block)
    assert _outcome(lambda: Block.decode_reusing(payload, known.get)) == _outcome(
        lambda: Block.decode(payload)
    )
