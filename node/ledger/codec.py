"""Canonical msgpack encoding: one value has exactly one byte string.

Rule kept here: every hash and signature in ALPS is over bytes produced by `encode`, and
`decode` accepts only bytes that `encode` would have produced. So one transaction has one
hash, and bytes from the network either decode to a valid value or raise `CodecError`.

Values are the JSON-like tree: None, bool, int (-2**63 .. 2**64-1), str, bytes, list,
dict with str keys. No floats, no extension types, no tuples on the wire (tuples encode as
lists). Maps are written with keys sorted by their UTF-8 bytes; integers in their shortest
form (msgpack does that); duplicate keys, unsorted keys, trailing bytes, over-long forms
and anything oversized are rejected.

Canonicality is checked by re-encoding: decode strictly, then require that `encode` of the
result gives back the same bytes. That one comparison catches every non-minimal form
without re-implementing msgpack's grammar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from node.ledger.errors import CodecError

MAX_ENCODED_BYTES = 4 * 1024 * 1024
MAX_CONTAINER_LEN = 100_000
MAX_STR_BYTES = 1024 * 1024
MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

Value = Any  # None | bool | int | str | bytes | list[Value] | dict[str, Value]


def _check(value: Value, depth: int) -> Value:
    """Validate a value tree and return it with dict keys sorted (lists for tuples)."""
    if depth > MAX_DEPTH:
        raise CodecError("too_deep", f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, (bool, str, bytes)):
        if isinstance(value, (str, bytes)) and len(value) > MAX_STR_BYTES:
            raise CodecError("oversize", "string or bytes too long")
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError("int_range", f"integer {value} outside 64-bit range")
        return value
    if isinstance(value, Mapping):
        if len(value) > MAX_CONTAINER_LEN:
            raise CodecError("oversize", "map too long")
        for key in value:
            if not isinstance(key, str):
                raise CodecError("wrong_type", f"map key {key!r} is not a str")
        keys = sorted(value, key=lambda k: k.encode())
        return {k: _check(value[k], depth + 1) for k in keys}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_CONTAINER_LEN:
            raise CodecError("oversize", "array too long")
        return [_check(v, depth + 1) for v in value]
    if isinstance(value, float):
        raise CodecError("float", "floats are not allowed in canonical values")
    raise CodecError("wrong_type", f"cannot encode {type(value).__name__}")


def encode(value: Value) -> bytes:
    """The canonical bytes of `value`; raises CodecError for values outside the model."""
    data: bytes = msgpack.packb(_check(value, 0), use_bin_type=True)
    if len(data) > MAX_ENCODED_BYTES:
        raise CodecError("oversize", f"encoding is {len(data)} bytes")
    return data


def _reject_ext(code: int, data: bytes) -> None:
    raise CodecError("ext_type", f"msgpack extension type {code} is not allowed")


def decode(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> Value:
    """Strictly decode canonical bytes; any deviation raises CodecError (never anything else)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError("wrong_type", "decode expects bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CodecError("oversize", f"{len(data)} bytes exceeds {max_bytes}")
    if not data:
        raise CodecError("truncated", "empty input")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_reject_ext,
            max_str_len=MAX_STR_BYTES,
            max_bin_len=MAX_STR_BYTES,
            max_array_len=MAX_CONTAINER_LEN,
            max_map_len=MAX_CONTAINER_LEN,
        )
    except CodecError:
        raise
    except msgpack.ExtraData as exc:
        raise CodecError("trailing_bytes", "bytes after the value") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # OutOfData, FormatError, StackError and UnicodeDecodeError are ValueErrors.
        raise CodecError("malformed", f"{type(exc).__name__}: {exc}") from exc
    try:
        canonical = encode(value)
    except RecursionError as exc:
        raise CodecError("too_deep", "nesting too deep") from exc
    if canonical != data:
        raise CodecError("non_canonical", "bytes are not the canonical encoding of their value")
    return value


def sorted_items(mapping: Mapping[str, Value]) -> Sequence[tuple[str, Value]]:
    """Items in canonical key order (UTF-8 byte order), for deterministic iteration."""
    return sorted(mapping.items(), key=lambda kv: kv[0].encode())
