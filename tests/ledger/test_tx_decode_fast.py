"""Transaction.decode_tx's fast path (tx.decode_tx_fast) against the reference.

The reference is the strict `Record.decode` (codec.decode, then the schema) and the signed
bytes re-encoded by `crypto.signing_bytes`. The fast path may only make accepting
cheaper: for any bytes, decode_tx must give what the reference gives (an equal transaction
with the same encoding, signed bytes and id, or the same LedgerError), and whatever the
fast path accepts alone, the reference accepts too, also nested as a block's transaction.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from node.ledger import codec, crypto
from node.ledger.errors import LedgerError
from node.ledger.tx import MAX_TX_BYTES, Transaction, decode_tx_fast
from tests.ledger.test_codec import packable_values
from tests.ledger.test_tx_fields import FIELDS, nested, packable_near_misses, transactions
from tests.mutation import edits, hows, mutate


def reference(data: bytes) -> Transaction:
    """Record.decode, and the transaction must fit TX_NESTING levels down (in a block)."""
    tx = Transaction.decode(data, max_bytes=MAX_TX_BYTES)
    codec.encode({"txs": [tx.to_value()]})
    return tx


def outcome(decode: Any, data: bytes) -> object:
    """The transaction with its encoding, signed bytes and id, or the error."""
    try:
        tx = decode(data)
    except LedgerError as exc:
        return ("rejected", type(exc), exc.code, exc.detail)
    try:
        signed: object = tx.signing_bytes()
        tx_id: object = tx.tx_id
    except LedgerError as exc:
        signed = tx_id = ("unsignable", type(exc), exc.code)
    return ("ok", tx, tx.encode(), signed, tx_id)


def reference_signed(tx: Transaction) -> object:
    try:
        return crypto.signing_bytes(crypto.DOMAIN_TX, tx.chain_id, tx.signed_value())
    except LedgerError as exc:
        return ("unsignable", type(exc), exc.code)


def assert_same_as_reference(data: bytes) -> None:
    expected = outcome(reference, data)
    assert outcome(Transaction.decode_tx, data) == expected
    fast = decode_tx_fast(data, depth=2)
    if fast is not None:
        assert expected[0] == "ok"
        assert fast == expected[1] and fast.encode() == data
        assert fast.signing_bytes() == reference_signed(fast)
        assert fast.tx_id == crypto.sha256(fast.signing_bytes())
    nested_fast = decode_tx_fast(data, depth=2)
    if nested_fast is not None:
        assert fast == nested_fast
        # as a block's or a submission's transaction it is two levels down
        doc = codec.join_map({"txs": codec.join_array([data])})
        assert codec.reference_decode(doc) == {"txs": [nested_fast.to_value()]}


@settings(max_examples=300, deadline=None)
@given(transactions())
def test_valid_transactions_decode_the_same_and_keep_their_id(tx: Transaction) -> None:
    data = tx.encode()
    assert_same_as_reference(data)
    try:
        codec.encode([[tx.to_value()]])
    except LedgerError:  # too deep to travel in a block: refused
        with pytest.raises(LedgerError):
            Transaction.decode_tx(data)
        return
    decoded = Transaction.decode_tx(data)
    assert decoded == tx and decoded.encode() == data
    assert outcome(lambda _: tx, data)[3:] == outcome(Transaction.decode_tx, data)[3:]


@settings(max_examples=100, deadline=None)
@given(transactions())
def test_the_fast_path_takes_every_signable_transaction(tx: Transaction) -> None:
    signable = not isinstance(reference_signed(tx), tuple)
    assert (decode_tx_fast(tx.encode()) is not None) == signable


@settings(max_examples=500, deadline=None)
@given(transactions(), edits(), hows())
def test_mutated_bytes_decode_exactly_as_the_reference(
    tx: Transaction, changes: list[tuple[int, int]], how: str
) -> None:
    assert_same_as_reference(mutate(tx.encode(), changes, how))


@settings(max_examples=500, deadline=None)
@given(transactions(), st.data())
def test_reshaped_transactions_decode_exactly_as_the_reference(
    tx: Transaction, data: st.DataObject
) -> None:
    """msgpack's own packing of a transaction's map with a field replaced by anything
    (floats, tuples, bytes keys, ...), removed, added or the keys in another order."""
    value: dict[Any, Any] = tx.to_value()
    how = data.draw(st.sampled_from(["replace", "remove", "add", "reorder", "body"]))
    if how == "replace":
        value[data.draw(st.sampled_from(FIELDS))] = data.draw(packable_near_misses)
    elif how == "remove":
        del value[data.draw(st.sampled_from(FIELDS))]
    elif how == "add":
        value[data.draw(st.text(max_size=10) | st.binary(max_size=3))] = 0
    elif how == "reorder":
        value = dict(data.draw(st.permutations(list(value.items()))))
    else:
        value["body"] = {"x": data.draw(packable_values)}
    packed = msgpack.packb(value, use_bin_type=True)
    assume(len(packed) <= 2 * MAX_TX_BYTES)
    assert_same_as_reference(packed)


def loose_pack(value: Any, draw: st.DrawFn) -> bytes:
    """msgpack bytes of `value` where each header is now and then a longer valid form."""

    def pick(forms: list[bytes]) -> bytes:  # forms[0] is the shortest
        return draw(st.sampled_from(forms)) if draw(st.integers(0, 7)) == 0 else forms[0]

    def sized(n: int, small: int | None, codes: tuple[int, int, int], fix: int) -> bytes:
        forms = [bytes([fix | n])] if small is not None and n < small else []
        for code, size in zip(codes, (1, 2, 4), strict=True):
            if code and n < 1 << (8 * size):
                forms.append(bytes([code]) + n.to_bytes(size, "big"))
        return pick(forms)

    if value is None or isinstance(value, bool | float):
        return msgpack.packb(value)
    if isinstance(value, int):
        forms = [msgpack.packb(value)]
        for code, size, signed in (
            (0xCC, 1, 0),
            (0xCD, 2, 0),
            (0xCE, 4, 0),
            (0xCF, 8, 0),
            (0xD0, 1, 1),
            (0xD1, 2, 1),
            (0xD2, 4, 1),
            (0xD3, 8, 1),
        ):
            try:
                forms.append(bytes([code]) + value.to_bytes(size, "big", signed=bool(signed)))
            except OverflowError:
                pass
        return pick(forms)
    if isinstance(value, str):
        raw = value.encode()
        return sized(len(raw), 32, (0xD9, 0xDA, 0xDB), 0xA0) + raw
    if isinstance(value, bytes):
        return sized(len(value), None, (0xC4, 0xC5, 0xC6), 0) + value
    if isinstance(value, list | tuple):
        head = sized(len(value), 16, (0, 0xDC, 0xDD), 0x90)
        return head + b"".join(loose_pack(v, draw) for v in value)
    head = sized(len(value), 16, (0, 0xDE, 0xDF), 0x80)
    return head + b"".join(loose_pack(k, draw) + loose_pack(v, draw) for k, v in value.items())


@settings(max_examples=300, deadline=None)
@given(transactions(), st.data())
def test_longer_forms_anywhere_are_refused_like_the_reference(
    tx: Transaction, data: st.DataObject
) -> None:
    packed = loose_pack(tx.to_value() | {}, data.draw)
    assert_same_as_reference(packed)
    assert_same_as_reference(loose_pack(dict(codec.sorted_items(tx.to_value())), data.draw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_ledger_errors(data: bytes) -> None:
    assert_same_as_reference(data)
    assert_same_as_reference(b"\x86" + data)


NON_CANONICAL_NONCES = {
    "uint8 for a fixint": b"\xcc\x05",
    "uint64 for a small int": b"\xcf" + (5).to_bytes(8, "big"),
    "int8 for a positive int": b"\xd0\x05",
    "float": b"\xcb" + (0).to_bytes(8, "big"),
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL_NONCES))
def test_non_canonical_fields_are_refused_like_the_reference(name: str) -> None:
    tx = Transaction("c", "t", {"a": 1}, b"k" * 32, 5, b"s" * 64)
    data = tx.encode()
    nonce_at = data.index(codec.encode("nonce")) + len(codec.encode("nonce"))
    bad = data[:nonce_at] + NON_CANONICAL_NONCES[name] + data[nonce_at + 1 :]
    assert decode_tx_fast(bad) is None
    with pytest.raises(LedgerError) as info:
        Transaction.decode_tx(bad)
    assert info.value.code == ("float" if name == "float" else "non_canonical")
    assert_same_as_reference(bad)


@pytest.mark.parametrize("depth", range(27, 34))
def test_deep_bodies_are_refused_unless_they_fit_in_a_block(depth: int) -> None:
    """A transaction must fit two levels down (a block's txs): a body nested 29 deep is the
    deepest decode_tx takes, so every transaction it returns has an id and fits in a
    block. (A body 31 deep fits a transaction alone but not its signed bytes: tx_id used
    to raise on it, and a peer forwarding one could stop the node's ingest task.)"""
    tx = Transaction("c", "t", {}, b"k" * 32, 1, b"s" * 64).to_value()
    data = msgpack.packb(dict(codec.sorted_items({**tx, "body": nested(depth)})))
    assert_same_as_reference(data)
    assert (decode_tx_fast(data) is not None) == (depth <= 30)
    assert (decode_tx_fast(data, depth=2) is not None) == (depth <= 29)
    if depth <= 29:
        assert Transaction.decode_tx(data).tx_id
    else:
        with pytest.raises(LedgerError) as info:
            Transaction.decode_tx(data)
        assert info.value.code == "too_deep"
