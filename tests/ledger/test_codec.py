"""Canonical encoding: one value has one encoding; the decoder only raises CodecError."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import codec
from node.ledger.errors import CodecError, LedgerError, SchemaError
from node.ledger.records import Record, require_uint
from tests.ledger.identical import assert_identical, containers

ints = st.integers(min_value=codec.INT_MIN, max_value=codec.INT_MAX)
scalars = st.none() | st.booleans() | ints | st.text(max_size=20) | st.binary(max_size=20)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@given(values)
def test_round_trip(value: object) -> None:
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.encode(codec.decode(data)) == data


@given(st.dictionaries(st.text(max_size=6), ints, min_size=2, max_size=6))
def test_map_key_order_does_not_change_the_encoding(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert codec.encode(mapping) == codec.encode(reversed_mapping)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_codec_errors(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except CodecError:
        return
    assert codec.encode(value) == data


@settings(max_examples=300)
@given(values, st.data())
def test_mutated_encodings_raise_only_codec_errors(value: object, data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(value))
    pos = data.draw(st.integers(0, len(encoded) - 1))
    encoded[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    for candidate in (bytes(encoded), bytes(encoded[:cut])):
        try:
            decoded = codec.decode(candidate)
        except CodecError:
            continue
        assert codec.encode(decoded) == candidate


NON_CANONICAL = {
    "uint8 for a fixint": b"\xcc\x05",
    "uint16 for a small int": b"\xcd\x00\x05",
    "int8 for a positive int": b"\xd0\x05",
    "uint64 for a small int": b"\xcf" + (5).to_bytes(8, "big"),
    "str8 for a short str": b"\xd9\x01a",
    "array16 for a short array": b"\xdc\x00\x01\x01",
    "map16 for a short map": b"\xde\x00\x01\xa1a\x01",
    "unsorted map keys": b"\x82\xa1b\x01\xa1a\x02",
    "duplicate map keys": b"\x82\xa1a\x01\xa1a\x02",
}
REJECTED = {
    **{k: ("non_canonical", v) for k, v in NON_CANONICAL.items()},
    "float32": ("float", b"\xca" + struct.pack(">f", 1.5)),
    "float64": ("float", b"\xcb" + struct.pack(">d", 1.5)),
    "trailing bytes": ("trailing_bytes", b"\x01\x02"),
    "truncated": ("malformed", b"\x92\x01"),
    "empty": ("truncated", b""),
    "extension type": ("ext_type", b"\xd4\x05\x00"),
    "bytes map key": ("wrong_type", b"\x81\xc4\x01a\x01"),
    "int map key": ("malformed", b"\x81\x01\x01"),
    "invalid utf-8": ("malformed", b"\xa2\xff\xfe"),
    "too deep": ("too_deep", b"\x91" * 40 + b"\x01"),
    "reserved byte 0xc1": ("malformed", b"\xc1"),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejections_are_typed(name: str) -> None:
    code, data = REJECTED[name]
    with pytest.raises(CodecError) as info:
        codec.decode(data)
    assert info.value.code == code, info.value


def test_oversize_input_is_rejected_before_parsing() -> None:
    with pytest.raises(CodecError) as info:
        codec.decode(codec.encode(b"x" * 100), max_bytes=50)
    assert info.value.code == "oversize"


@pytest.mark.parametrize(
    "value", [1.0, {1: 2}, {b"k": 1}, 2**64, -(2**63) - 1, {"a": {1, 2}}, object()]
)
def test_encode_rejects_values_outside_the_model(value: object) -> None:
    with pytest.raises(CodecError):
        codec.encode(value)


def test_extreme_integers_round_trip() -> None:
    for v in (codec.INT_MIN, codec.INT_MAX, -1, 0, 127, 128, -32, -33):
        assert codec.decode(codec.encode(v)) == v
    assert msgpack.packb(codec.INT_MAX) == codec.encode(codec.INT_MAX)


@dataclass(frozen=True, slots=True)
class Point(Record):
    x: int
    label: str
    tags: tuple[bytes, ...]
    parent: Point | None

    def __post_init__(self) -> None:
        require_uint(self.x, "x", 1000)


def test_record_round_trip_and_strict_schema() -> None:
    p = Point(3, "a", (b"t",), Point(4, "b", (), None))
    assert Point.decode(p.encode()) == p
    good = p.to_value()
    cases = {
        "unknown field": {**good, "extra": 1},
        "missing field": {k: v for k, v in good.items() if k != "label"},
        "bool for int": {**good, "x": True},
        "str for bytes in a list": {**good, "tags": ["t"]},
        "value out of bounds": {**good, "x": 5000},
        "nested wrong type": {**good, "parent": {**good["parent"], "label": 7}},
        "not a map": [1, 2],
    }
    for name, value in cases.items():
        with pytest.raises(SchemaError):
            Point.from_value(value)
        with pytest.raises(LedgerError):
            Point.decode(codec.encode(value))
        assert name


def test_invalid_record_cannot_be_constructed() -> None:
    with pytest.raises(ValueError):
        Point(-1, "a", (), None)


# -- the fast path against the reference path ------------------------------------------
# decode/encode take a fast path for values of exact model types and fall back to the
# reference path (`reference_decode` / `reference_encode`, the specification) otherwise.
# The two must agree on every input: same value and bytes, or the same rejection.


def _verdict(fn: object, arg: object) -> tuple[str, object]:
    try:
        return "ok", fn(arg)  # type: ignore[operator]
    except CodecError as exc:
        return "rejected", exc.code


def _assert_decoders_agree(data: bytes) -> None:
    verdict = _verdict(codec.decode, data)
    assert verdict == _verdict(codec.reference_decode, data)
    if codec.fast_accepts(data):
        assert verdict[0] == "ok"


wide_keys = st.text(max_size=4, alphabet=st.characters(codec="utf-8")) | st.binary(max_size=3)


def wide(
    scalar: st.SearchStrategy[object], keys: st.SearchStrategy[object] = wide_keys
) -> st.SearchStrategy[object]:
    """Values beyond the model: tuples, unsorted maps, and what `scalar`/`keys` add."""
    return st.recursive(
        scalar,
        lambda children: (
            st.lists(children, max_size=4)
            | st.lists(children, max_size=4).map(tuple)
            | st.dictionaries(keys, children, min_size=1, max_size=4)
        ),
        max_leaves=20,
    )


wide_values = wide(scalars | st.floats(allow_nan=False) | st.integers())
# what msgpack itself can write: floats and bytes keys, or in-model values in any key order
packable_values = wide(scalars | st.floats(allow_nan=False)) | wide(scalars, st.text(max_size=4))


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_fast_and_reference_decoders_agree_on_random_bytes(data: bytes) -> None:
    _assert_decoders_agree(data)


@settings(max_examples=500)
@given(packable_values, st.data())
def test_fast_and_reference_decoders_agree_on_mutated_bytes(
    value: object, data: st.DataObject
) -> None:
    # msgpack's own (non-canonical) packing of arbitrary values, then a byte flipped and a cut
    encoded = bytearray(msgpack.packb(value, use_bin_type=True))
    _assert_decoders_agree(bytes(encoded))
    pos = data.draw(st.integers(0, len(encoded) - 1))
    encoded[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    _assert_decoders_agree(bytes(encoded))
    _assert_decoders_agree(bytes(encoded[:cut]))


@settings(max_examples=500)
@given(wide_values)
def test_fast_and_reference_encoders_agree(value: object) -> None:
    fast, reference = _verdict(codec.encode, value), _verdict(codec.reference_encode, value)
    assert fast == reference


@given(values)
def test_canonical_bytes_take_the_fast_path(value: object) -> None:
    assert codec.fast_accepts(codec.encode(value))


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_fast_path_never_accepts_a_rejected_encoding(name: str) -> None:
    assert not codec.fast_accepts(REJECTED[name][1])


def nested_lists(depth: int, leaf: object) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [30, 31, 32, 33, 34])
@pytest.mark.parametrize("leaf", [1, [], {}, {"k": 1}])
def test_depth_limit_is_the_same_on_both_paths(depth: int, leaf: object) -> None:
    value = nested_lists(depth, leaf)
    data = msgpack.packb(value)
    _assert_decoders_agree(data)
    assert _verdict(codec.encode, value) == _verdict(codec.reference_encode, value)
    leaf_depth = depth + (1 if leaf == {"k": 1} else 0)  # the deepest value, root at 0
    expected = "ok" if leaf_depth <= codec.MAX_DEPTH else "rejected"
    assert _verdict(codec.decode, data)[0] == expected


def test_map_keys_sort_by_utf8_bytes_not_utf16_units() -> None:
    # U+FFFF sorts before U+10000 in UTF-8 (and code points) but after it in UTF-16 units
    keys = ["\U00010000", "\uffff", "z", "é", ""]
    data = codec.encode(dict.fromkeys(keys, 1))
    assert data == codec.reference_encode(dict.fromkeys(keys, 1))
    decoded = codec.decode(data)
    assert list(decoded) == sorted(keys, key=lambda k: k.encode())
    with pytest.raises(CodecError) as info:
        codec.decode(b"\x82\xa4\xf0\x90\x80\x80\x01\xa3\xef\xbf\xbf\x01")
    assert info.value.code == "non_canonical"


def test_encoding_an_unencodable_string_fails_the_same_way_on_both_paths() -> None:
    for value in ("\ud800", {"\ud800": 1}, ["ok", "\udfff"]):
        with pytest.raises(UnicodeEncodeError):
            codec.reference_encode(value)
        with pytest.raises(UnicodeEncodeError):
            codec.encode(value)


@given(st.lists(values, max_size=6), st.dictionaries(st.text(max_size=6), values, max_size=6))
def test_joined_encodings_equal_encoding_the_whole(items: list[object], mapping: dict) -> None:
    assert codec.join_array([codec.encode(v) for v in items]) == codec.encode(items)
    joined = codec.join_map({k: codec.encode(v) for k, v in mapping.items()})
    assert joined == codec.encode(mapping)
    assert codec.decode(joined) == mapping


def test_joined_encodings_keep_the_limits() -> None:
    with pytest.raises(CodecError) as info:
        codec.join_array([b"\x01"] * (codec.MAX_CONTAINER_LEN + 1))
    assert info.value.code == "oversize"
    big = codec.encode(b"x" * codec.MAX_STR_BYTES)
    with pytest.raises(CodecError) as info:
        codec.join_array([big] * 5)
    assert info.value.code == "oversize"


@settings(max_examples=500)
@given(wide_values, st.integers(0, 4))
def test_encode_value_gives_exactly_what_decoding_the_encoding_gives(
    value: object, depth: int
) -> None:
    verdict = _verdict(codec.encode, value)
    assert _verdict(lambda v: codec.encode_value(v, depth)[0], value) == verdict
    if verdict[0] == "rejected":
        return
    data, tree = codec.encode_value(value, depth)
    assert data == verdict[1]
    if tree is not None:
        assert_identical(tree, codec.decode(data))  # tuples as lists, keys in canonical order
        assert not set(containers(tree)) & set(containers(value))  # new containers


def test_encode_value_vouches_for_model_values() -> None:
    value = {"b": (), "a": [{"y": (1, b"x"), "x": None}], "c": {}}
    data, tree = codec.encode_value(value)
    assert tree == {"a": [{"x": None, "y": [1, b"x"]}], "b": [], "c": {}}
    assert_identical(tree, codec.decode(data))
    assert codec.encode_value(codec.MAX_STR_BYTES * b"x")[1] is None  # over the fast path


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_encode_value_vouches_only_for_values_that_fit_at_its_depth(depth: int) -> None:
    value = nested_lists(codec.MAX_DEPTH - 2, {"k": 1})  # the deepest value at MAX_DEPTH - 1
    data, tree = codec.encode_value(value, depth)
    assert data == codec.encode(value)
    assert (tree is not None) == (depth <= 1)
