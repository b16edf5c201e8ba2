"""The state digest is a function of the state alone and updates incrementally."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import state
from node.ledger.state import Overlay, StateAccumulator, digest_of

keys = st.binary(min_size=1, max_size=4)
ops = st.lists(st.tuples(keys, st.none() | st.binary(max_size=4)), max_size=40)


def apply_ops(state: dict[bytes, bytes], batch: list[tuple[bytes, bytes | None]]) -> None:
    for key, value in batch:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


def replay(blocks: list[list]) -> Iterator[tuple[StateAccumulator, dict[bytes, bytes]]]:
    """Each batch applied through an Overlay to the accumulator and straight to a dict:
    the accumulator and the committed state after every block."""
    committed: dict[bytes, bytes] = {}
    acc = StateAccumulator()
    for batch in blocks:
        overlay = Overlay(committed)  # a dict is a StateReader
        for key, value in batch:
            if value is None:
                overlay.delete(key)
            else:
                overlay.put(key, value)
        acc = acc.apply(overlay.changes())
        apply_ops(committed, batch)
        yield acc, committed


@settings(max_examples=150)
@given(st.lists(ops, max_size=6))
def test_incremental_digest_equals_digest_from_scratch(blocks: list[list]) -> None:
    for acc, committed in replay(blocks):
        assert acc.digest() == digest_of(committed)
        assert StateAccumulator.from_bytes(acc.to_bytes()) == acc


@given(st.dictionaries(keys, st.binary(max_size=4), max_size=20))
def test_digest_does_not_depend_on_insertion_order(state: dict[bytes, bytes]) -> None:
    assert digest_of(state) == digest_of(dict(reversed(list(state.items()))))


def test_different_states_have_different_digests() -> None:
    base = {b"a": b"1", b"b": b"2"}
    variants = [
        {},
        {b"a": b"1"},
        {b"a": b"2", b"b": b"2"},
        {b"a": b"1", b"b": b"2", b"c": b""},
        {b"b": b"1", b"a": b"2"},
        {b"a1": b"", b"b": b"2"},
    ]
    digests = {digest_of(v) for v in variants}
    assert len(digests) == len(variants)
    assert digest_of(base) not in digests


def test_overlay_reports_only_real_changes_and_child_discard() -> None:
    committed = {b"a": b"1", b"b": b"2"}
    overlay = Overlay(committed)
    overlay.put(b"a", b"1")  # same value: no change
    overlay.put(b"b", b"3")
    overlay.delete(b"zz")  # deleting a missing key: no change
    child = overlay.child()
    child.put(b"c", b"9")  # discarded: never merged
    assert overlay.changes() == {b"b": (b"2", b"3")}
    child2 = overlay.child()
    child2.put(b"d", b"4")
    child2.merge_into_parent()
    assert overlay.changes() == {b"b": (b"2", b"3"), b"d": (None, b"4")}
    assert overlay.get(b"c") is None and overlay.get(b"d") == b"4"


class _Tiny(state._Elements):
    __slots__ = ()
    MAX_ENTRIES = 3
    MAX_VALUE_BYTES = 2


@settings(max_examples=150)
@given(st.lists(ops, max_size=6))
def test_remembered_elements_give_the_digest_computed_element_by_element(
    blocks: list[list],
) -> None:
    """The element memo (tiny here, so that it evicts, and skipping values over 2 bytes)
    never changes the accumulator: it equals the sum of `element` over the state."""
    saved, state._ELEMENTS = state._ELEMENTS, _Tiny()
    try:
        for acc, committed in replay(blocks):
            total = sum(state.element(k, v) for k, v in committed.items()) % (1 << state.ACC_BITS)
            assert acc.value == total
            assert len(state._ELEMENTS._young) <= _Tiny.MAX_ENTRIES
    finally:
        state._ELEMENTS = saved
