"""decode_submission's fast path against its full path (node.api.body.full_submission).

For any body and batch limit, decode_submission must give what the full path gives: the
same transactions (same encodings, signed bytes and ids) or the same ApiError (status,
code and detail), whatever the body's bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from node.api.body import _plain_submission, decode_submission, full_submission
from node.api.errors import ApiError
from node.ledger import codec
from node.ledger.tx import Transaction
from tests.ledger.test_tx_decode_fast import loose_pack
from tests.ledger.test_tx_fields import packable_near_misses, transactions
from tests.mutation import edits, hows, mutate


def outcome(decode: Callable[[bytes, int], list[Transaction]], data: bytes, limit: int) -> object:
    try:
        txs = decode(data, limit)
    except ApiError as exc:
        return ("refused", exc.status, exc.code, exc.detail)
    return [(tx, tx.encode(), tx.signing_bytes(), tx.tx_id) for tx in txs]


def assert_same_as_full_path(data: bytes, limit: int) -> None:
    expected = outcome(full_submission, data, limit)
    assert outcome(decode_submission, data, limit) == expected
    if _plain_submission(data, limit) is not None:
        assert isinstance(expected, list)


def body_of(txs: list[Transaction]) -> bytes:
    """The canonical form, even for bodies too deep for a batch (the full path says so)."""
    return codec.join_map({"txs": codec.join_array([tx.encode() for tx in txs])})


def canonical_order(mapping: dict[object, object]) -> dict[object, object]:
    return dict(sorted(mapping.items(), key=lambda kv: repr(type(kv[0])) + repr(kv[0])))


batches = st.lists(transactions(), min_size=1, max_size=4)
limits = st.integers(1, 5)


@settings(max_examples=200, deadline=None)
@given(batches, limits)
def test_valid_batches_decode_the_same(txs: list[Transaction], limit: int) -> None:
    data = body_of(txs)
    assert_same_as_full_path(data, limit)
    if isinstance(outcome(full_submission, data, limit), list):  # else too long or too deep
        assert decode_submission(data, limit) == txs


@settings(max_examples=400, deadline=None)
@given(batches, limits, edits(), hows())
def test_mutated_batches_decode_exactly_as_the_full_path(
    txs: list[Transaction], limit: int, changes: list[tuple[int, int]], how: str
) -> None:
    assert_same_as_full_path(mutate(body_of(txs), changes, how), limit)


@settings(max_examples=150, deadline=None)
@given(batches, limits, st.data())
def test_reshaped_batches_decode_exactly_as_the_full_path(
    txs: list[Transaction], limit: int, data: st.DataObject
) -> None:
    """Longer forms anywhere, a transaction replaced by anything, other top-level keys."""
    doc: dict[object, object] = {"txs": [codec.decode(tx.encode()) for tx in txs]}
    how = data.draw(st.sampled_from(["loose", "item", "key", "empty"]))
    if how == "item":
        items = doc["txs"]
        assert isinstance(items, list)
        items[data.draw(st.integers(0, len(items) - 1))] = data.draw(packable_near_misses)
    elif how == "key":
        doc[data.draw(st.text(max_size=4) | st.binary(max_size=2))] = 1
    elif how == "empty":
        doc["txs"] = []
    assert_same_as_full_path(loose_pack(canonical_order(doc), data.draw), limit)
    assert_same_as_full_path(loose_pack(doc, data.draw), limit)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), limits)
def test_random_bytes_are_refused_as_by_the_full_path(data: bytes, limit: int) -> None:
    assert_same_as_full_path(data, limit)
    assert_same_as_full_path(b"\x81\xa3txs\x91" + data, limit)
