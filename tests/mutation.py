"""Byte mutations for property tests of strict decoders: a few edits to a valid encoding
(flip or set a byte, cut the tail, insert a byte) that every decoder must either read
exactly as its reference does or refuse the same way."""

from __future__ import annotations

from hypothesis import strategies as st

HOWS = ("flip", "cut", "insert", "set")


def edits(position_max: int = 1 << 16) -> st.SearchStrategy[list[tuple[int, int]]]:
    """1-3 (position, byte) pairs; positions wrap around the input's length."""
    pair = st.tuples(st.integers(0, position_max), st.integers(0, 255))
    return st.lists(pair, min_size=1, max_size=3)


def hows(*allowed: str) -> st.SearchStrategy[str]:
    return st.sampled_from(allowed or HOWS)


def mutate(data: bytes, changes: list[tuple[int, int]], how: str) -> bytes:
    """`data` with each change applied in order the `how` way (an empty result stops)."""
    out = bytearray(data)
    for pos, byte in changes:
        if not out:
            break
        i = pos % len(out)
        if how == "flip":
            out[i] ^= byte or 1
        elif how == "set":
            out[i] = byte
        elif how == "cut":
            del out[i:]
        else:
            out[i:i] = bytes([byte])
    return bytes(out)
