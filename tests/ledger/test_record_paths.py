"""Records' fast paths against their plain definitions (Hypothesis): `encode` and
`encode_value` give what `codec.reference_encode(to_value())` gives (or the same error), and
`from_value` gives the record, or the SchemaError code and message, of a straightforward
`from_value` written as the specification (below)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import block, codec
from node.ledger.block import Event, Receipt
from node.ledger.errors import CodecError, SchemaError
from node.ledger.model import Accrual, Device, LineItem, Member
from node.ledger.records import Record
from node.ledger.usage import UsageReport
from tests.ledger.identical import assert_identical

CLASSES: list[type[Record]] = [Device, UsageReport, Accrual, Member, Event, Receipt, LineItem]


def reference_from_value(cls: type[Record], value: Any, where: str = "") -> Record:
    """`Record.from_value` as first written: every field through its converter, by name."""
    where = where or cls.__name__
    if not isinstance(value, Mapping):
        raise SchemaError("wrong_type", f"{where}: expected a map")
    schema = [(name, convert) for name, _, convert in cls._schema_of().fields]
    if len(value) != len(schema):
        known = {name for name, _ in schema}
        unknown = sorted(k for k in value if k not in known)
        missing = sorted(k for k in known if k not in value)
        raise SchemaError("fields", f"{where}: unknown fields {unknown}, missing fields {missing}")
    kwargs = {}
    for name, convert in schema:
        if name not in value:
            raise SchemaError("fields", f"{where}: missing field {name!r}")
        kwargs[name] = convert(value[name], f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise SchemaError("invalid", f"{where}: {exc}") from exc


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except (SchemaError, CodecError) as exc:
        return type(exc).__name__, (exc.code, exc.detail)


ints = st.one_of(st.integers(-3, 3), st.integers(codec.INT_MIN - 1, codec.INT_MAX + 1))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.text(max_size=6),
    st.binary(max_size=33),
    st.just(b"\x07" * 32),
    st.just(1.5),  # no floats in the model
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def field_maps(draw: st.DrawFn) -> tuple[type[Record], dict[str, Any]]:
    """A map for a record class: its field names (sometimes one missing, one extra, or
    renamed) with values of the right type more often than not."""
    cls = draw(st.sampled_from(CLASSES))
    good = {
        int: ints,
        bool: st.booleans(),
        str: st.sampled_from(["cam-1", "DE", "ok", "", "units"]) | st.text(max_size=4),
        bytes: st.sampled_from([b"\x07" * 32, b"\x01" * 64, b""]),
    }
    out: dict[str, Any] = {}
    for name, kind, _ in cls._schema_of().fields:
        if kind is not None and draw(st.integers(0, 4)):
            out[name] = draw(good[kind])
        else:
            out[name] = draw(values)
    if out and draw(st.integers(0, 6)) == 0:
        del out[draw(st.sampled_from(sorted(out)))]
    if draw(st.integers(0, 6)) == 0:
        out[draw(st.sampled_from(["extra", "sku", "zz"]))] = 1
    return cls, out


@settings(max_examples=1000)
@given(field_maps())
def test_from_value_matches_the_plain_definition(case: tuple[type[Record], dict[str, Any]]) -> None:
    cls, value = case
    got = _outcome(cls.from_value, value)
    expected = _outcome(reference_from_value, cls, value)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert_identical(got[1], expected[1])
        assert_identical(got[1], cls.from_value(dict(reversed(list(value.items())))))
    else:
        assert got == expected


@settings(max_examples=1000)
@given(field_maps())
def test_encode_matches_the_reference_encoding(case: tuple[type[Record], dict[str, Any]]) -> None:
    cls, value = case
    try:
        record = reference_from_value(cls, value)
    except SchemaError:
        # not a valid record: build one anyway, bypassing validation, to encode it
        record = object.__new__(cls)
        for name, _, _ in cls._schema_of().fields:
            object.__setattr__(record, name, value.get(name))
    expected = _outcome(codec.reference_encode, record.to_value())
    assert _outcome(Record.encode, record) == expected
    got = _outcome(Record.encode_value, record)
    if expected[0] != "ok":
        assert got == expected
        return
    data, tree = got[1]
    assert data == expected[1]
    if tree is not None:
        assert_identical(tree, codec.decode(data))


def test_a_nested_record_encodes_as_its_map() -> None:
    event = Event("accrued", {"b": (1, 2), "a": {"y": b"", "x": ()}})
    receipt = Receipt(b"\x01" * 32, True, "ok", "", (event,))
    assert Receipt.encode(receipt) == codec.reference_encode(receipt.to_value())
    data, tree = Record.encode_value(receipt)
    assert tree is not None
    assert_identical(tree, codec.decode(data))


attr_values = st.recursive(
    st.none() | st.booleans() | ints | st.text(max_size=4) | st.binary(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


def nested(depth: int) -> object:
    value: object = {"deep": 1}
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["accrued", "x" * 64]),
            st.dictionaries(
                st.text(max_size=6),
                st.one_of(*[attr_values] * 6, st.sampled_from([nested(27), nested(28)])),
                max_size=4,
            ),
        ),
        max_size=4,
    ),
    st.sampled_from(
        [("ok", ""), ("replay", "sequence 3 already reported"), ("bad", "\u00e9" * 1024)]
    ),
)
def test_a_receipt_of_normalised_events_encodes_as_the_reference(
    events: list[tuple[str, dict[str, Any]]], outcome: tuple[str, str]
) -> None:
    code, detail = outcome
    try:
        made = tuple(Event.normalised(kind, attrs) for kind, attrs in events)
    except CodecError as exc:  # an int out of range: the reference round trip raises too
        with pytest.raises(CodecError) as info:
            for _, attrs in events:
                codec.decode(codec.reference_encode(attrs))
        assert info.value.code == exc.code
        return
    reference = [Event(kind, codec.decode(codec.reference_encode(a))) for kind, a in events]
    assert_identical(list(made), reference)
    receipt = Receipt(b"\x01" * 32, code == "ok", code, detail, made)
    expected = _outcome(codec.reference_encode, receipt.to_value())
    spliced = receipt._spliced()
    assert spliced is None or ("ok", spliced) == expected
    assert _outcome(receipt.encode) == expected
    if expected[0] == "ok":
        assert Receipt.decode(receipt.encode()) == receipt


def test_the_receipt_splice_writes_exactly_the_records_fields() -> None:
    assert block._SPLICE_FIELDS_MATCH


def test_an_accrual_receipt_is_spliced() -> None:
    attrs = {"quantities": {"units": 3, "hours": 1}, "licence_id": "L1", "territory": "DE"}
    receipt = Receipt(b"\x02" * 32, True, "ok", "", (Event.normalised("accrued", attrs),))
    spliced = receipt._spliced()
    assert spliced is not None and spliced == codec.reference_encode(receipt.to_value())
