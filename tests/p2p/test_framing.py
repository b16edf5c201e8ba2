"""Framing: round trips under arbitrary chunking, and typed rejection of bad bytes."""

from __future__ import annotations

import itertools

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import codec
from node.p2p.errors import FramingError, P2PError
from node.p2p.framing import (
    FRAME_BYTES_MAX,
    MESSAGE_BYTES_MAX,
    FrameDecoder,
    decode_batch,
    encode_frame,
)

messages = st.lists(st.binary(max_size=300), min_size=1, max_size=20)


def frame_of_body(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(messages, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10**6)))
def test_round_trip_under_any_chunking(batches: list[list[bytes]], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(b) for b in batches)
    decoder = FrameDecoder()
    out: list[list[bytes]] = []
    for piece in chunked(wire, cuts):
        out.extend(decoder.feed(piece))
    assert out == batches
    assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=400), cuts=st.lists(st.integers(0, 10**6), max_size=5))
def test_garbage_yields_batches_or_framing_error_only(garbage: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(frame_bytes_max=1024)
    try:
        for piece in chunked(garbage, cuts):
            for batch in decoder.feed(piece):
                assert batch and all(isinstance(m, bytes) for m in batch)
    except FramingError as exc:
        assert isinstance(exc, P2PError) and exc.code


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=10,
    )
)
def test_canonical_non_batches_are_rejected(value: object) -> None:
    body = codec.encode(value)
    with pytest.raises(FramingError) as info:
        FrameDecoder().feed(frame_of_body(body))
    assert info.value.code in {"not_batch", "not_bin", "empty_batch"}


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x00\x00\x00\x00", "empty_frame"),
        ((FRAME_BYTES_MAX + 1).to_bytes(4, "big"), "oversize"),
        (frame_of_body(codec.encode(["text"])), "not_bin"),
        (frame_of_body(codec.encode([b"ok", 7])), "not_bin"),
        (frame_of_body(codec.encode({"a": b"x"})), "not_batch"),
        (frame_of_body(codec.encode([])), "empty_batch"),
        (frame_of_body(b"\xc1"), "malformed"),
        (frame_of_body(codec.encode([b"a"]) + b"\x00"), "malformed"),
        # bin 8 header for a 1-byte value written as bin 16: not canonical
        (frame_of_body(b"\x91\xc5\x00\x01a"), "malformed"),
    ],
)
def test_bad_frames_raise_typed_errors(wire: bytes, code: str) -> None:
    with pytest.raises(FramingError) as info:
        FrameDecoder().feed(wire)
    assert info.value.code == code


def test_oversize_length_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(frame_bytes_max=100)
    with pytest.raises(FramingError) as info:
        decoder.feed((101).to_bytes(4, "big"))
    assert info.value.code == "oversize"
    assert decoder.buffered == 0


def test_decoder_stays_poisoned_after_an_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FramingError):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(FramingError):
        decoder.feed(encode_frame([b"fine"]))


def test_partial_frame_is_held_until_complete() -> None:
    wire = encode_frame([b"abc", b"", b"def"])
    decoder = FrameDecoder()
    assert decoder.feed(wire[:-1]) == []
    assert decoder.buffered == len(wire) - 1 - 4
    assert decoder.feed(wire[-1:]) == [[b"abc", b"", b"def"]]


def test_largest_message_round_trips() -> None:
    big = bytes(range(256)) * (MESSAGE_BYTES_MAX // 256)
    assert len(big) == MESSAGE_BYTES_MAX
    assert FrameDecoder().feed(encode_frame([big])) == [[big]]


def test_encode_refuses_what_a_peer_would_reject() -> None:
    with pytest.raises(FramingError):
        encode_frame([])
    with pytest.raises(FramingError):
        encode_frame(["text"])  # type: ignore[list-item]
    with pytest.raises(FramingError):
        encode_frame([b"x" * (MESSAGE_BYTES_MAX + 1)])
    with pytest.raises(FramingError):
        encode_frame([b"x" * 200], frame_bytes_max=100)


def test_decode_batch_matches_plain_msgpack_for_canonical_input() -> None:
    msgs = [b"a" * 10, b"b" * 300, b""]
    assert decode_batch(msgpack.packb(msgs, use_bin_type=True)) == msgs


def test_frame_limit_must_be_sane() -> None:
    with pytest.raises(FramingError):
        FrameDecoder(frame_bytes_max=0)
    with pytest.raises(FramingError):
        FrameDecoder(frame_bytes_max=FRAME_BYTES_MAX + 1)
