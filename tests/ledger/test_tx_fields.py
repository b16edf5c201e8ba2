"""Transaction's constructor checks, and strategies for transactions and their fields.

`Transaction.__post_init__` first asks `_plainly_valid` (exact types and the same checks
in one expression); only when that cannot vouch for the fields does it run the checks one
by one. So the quick check must imply every one of them, and the constructor must accept
and reject exactly as the checks one by one do.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import codec
from node.ledger.tx import CHAIN_ID_RE, TX_TYPE_RE, Transaction, _plainly_valid
from tests.ledger.test_codec import packable_values, values, wide_values


def nested(depth: int, leaf: object = 1) -> object:
    """A map whose deepest node sits `depth` below it (maps and lists in turn)."""
    value = leaf
    for i in range(depth):
        value = {"k": value} if (depth - i) % 2 else [value]
    return value


chain_ids = st.sampled_from(["alps-test", "a", "x" * 64, "a" * 64 + "\n"]) | st.from_regex(
    CHAIN_ID_RE
)
tx_types = st.sampled_from(["usage.report", "t", "a" * 48, "a" * 31, "a" * 32]) | st.from_regex(
    TX_TYPE_RE
)
bodies = st.dictionaries(st.text(max_size=8), values, max_size=6) | st.builds(
    lambda d: {"deep": nested(d)}, st.integers(25, 30)
)
nonces = st.sampled_from([0, 1, 127, 128, 255, 256, 2**16, 2**32, codec.INT_MAX]) | st.integers(
    0, codec.INT_MAX
)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    return Transaction(
        draw(chain_ids),
        draw(tx_types),
        codec.decode(codec.encode(draw(bodies))),
        draw(st.binary(min_size=32, max_size=32)),
        draw(nonces),
        draw(st.binary(min_size=64, max_size=64)),
    )


FIELDS = ("body", "chain_id", "nonce", "signature", "signer", "tx_type")

packable_near_misses = (
    chain_ids
    | tx_types
    | st.sampled_from(["", "Bad", "a" * 65, "a" * 49, "\n", "é"])
    | st.binary(min_size=30, max_size=66)
    | st.sampled_from([-1, 0, codec.INT_MAX, True, 1.0, [], {}])
    | packable_values
)
near_misses = (
    packable_near_misses
    | st.sampled_from([codec.INT_MAX + 1, codec.INT_MIN - 1, ()])
    | st.builds(type("Text", (str,), {}), chain_ids)
    | st.builds(type("Blob", (bytes,), {}), st.binary(min_size=32, max_size=32))
    | st.builds(type("Map", (dict,), {}))
    | wide_values
)


NAMES = ("chain_id", "tx_type", "body", "signer", "nonce", "signature")


def verdict(fn: Any) -> object:
    try:
        fn()
    except (ValueError, TypeError) as exc:
        return type(exc), str(exc)
    return "ok"


@settings(max_examples=500, deadline=None)
@given(transactions(), st.lists(st.tuples(st.sampled_from(NAMES), near_misses), max_size=3))
def test_the_quick_field_check_implies_every_constructor_check(
    tx: Transaction, changes: list[tuple[str, Any]]
) -> None:
    """Transaction.__post_init__ runs the checks one by one only when _plainly_valid cannot
    vouch for the fields; when it can, every one of them passes."""
    fields = {name: getattr(tx, name) for name in NAMES} | dict(changes)
    one_by_one = verdict(lambda: Transaction._check_fields(types.SimpleNamespace(**fields)))  # type: ignore[arg-type]
    if _plainly_valid(*fields.values()) is not None:
        assert one_by_one == "ok"
    assert verdict(lambda: Transaction(**fields)) == one_by_one


def test_the_constructor_rejects_as_before() -> None:
    good: dict[str, Any] = {
        "chain_id": "c",
        "tx_type": "t",
        "body": {},
        "signer": b"k" * 32,
        "nonce": 0,
        "signature": b"s" * 64,
    }
    bad = [
        {"chain_id": "Bad"},
        {"chain_id": 5},
        {"tx_type": "a" * 49},
        {"tx_type": b"t"},
        {"body": [1]},
        {"signer": b"k" * 31},
        {"signer": "k" * 32},
        {"nonce": -1},
        {"nonce": True},
        {"nonce": 2**64},
        {"signature": b"s" * 65},
    ]
    for change in bad:
        with pytest.raises((ValueError, TypeError)):
            Transaction(**{**good, **change})
    assert Transaction(**good).nonce == 0
    # subclasses of the field types pass the checks one by one, as they always did
    blob = type("Blob", (bytes,), {})(b"k" * 32)
    assert Transaction(**{**good, "signer": blob}).signer == b"k" * 32
