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

Two paths, one answer. The fast path (`_normal`) handles values built only of the exact
model types: one pass that sorts map keys (Python's str order is UTF-8 byte order), turns
tuples into lists and bails out on anything else, with msgpack itself checking the integer
range and rejecting unencodable strings. Whatever it does not fully vouch for (a float, a
non-str key, a foreign type, nesting near the limit, an encoding over 1 MiB, any error)
goes to the reference path (`_check`), which alone decides rejections and their codes. So
the fast path can only make accepting cheaper, never change what is accepted; tests check
the two against each other on random and mutated inputs. The fast path's normalised tree
is, once packed, exactly what `decode` returns for the bytes, so `encode_value` and
`encode_fields` hand it out instead of decoding bytes just produced (tests check that too).

Splicing. Records that hold canonical encodings (a transaction's wire bytes, a block's
transactions) are re-joined rather than re-encoded: `join_array`/`join_map` and the
`array_header`/`map_header` framing, `split_map` to cut a map into its values' bytes.
Other layers' fast paths use `plain_encoding` (the fast path's verdict on one value as it
stands) and `loose_map` (a lenient read that vouches for nothing) under the same rule:
they accept or fall back to `decode`, never reject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


_SCALARS = frozenset({str, bytes, int, bool, type(None)})
# Below this size no string can exceed MAX_STR_BYTES (each character takes >= 1 byte).
_FAST_MAX_BYTES = MAX_STR_BYTES
# One packer, reused: it holds no state between calls (autoreset) and calls no Python code.
_PACKER = msgpack.Packer(use_bin_type=True)


class _NotFast(Exception):
    """The fast path does not vouch for this value; the reference path decides."""


def _normal(value: Value, depth: int) -> Value:
    """`_check` for exact model types only: dict keys sorted, tuples as lists.

    Raises _NotFast for floats, non-str keys, other types, and containers whose children
    would sit deeper than MAX_DEPTH or that hold more than MAX_CONTAINER_LEN items.
    Every container in the result is new (scalars are shared), so once msgpack has packed
    it, the result is exactly the tree `decode` returns for those bytes: same types, same
    key order (`encode_value`, `encode_fields`).
    Plain loops: for the small maps of transactions and records they beat any trick.
    """
    kind = type(value)
    if kind is dict:
        if not value:
            return {}
        if depth >= MAX_DEPTH or len(value) > MAX_CONTAINER_LEN:
            raise _NotFast
        depth += 1
        out = {}
        for k, v in sorted(value.items()):  # unique keys: values are never compared
            if type(k) is not str:
                raise _NotFast
            out[k] = v if type(v) in _SCALARS else _normal(v, depth)
        return out
    if kind is list or kind is tuple:
        if not value:
            return []
        if depth >= MAX_DEPTH or len(value) > MAX_CONTAINER_LEN:
            raise _NotFast
        depth += 1
        return [v if type(v) in _SCALARS else _normal(v, depth) for v in value]
    if kind in _SCALARS:
        return value
    raise _NotFast


def _plain(value: Value, depth: int) -> bool:
    """True iff the decoded `value` has only model types, sorted str keys and depth in range.

    With that, `packb(value) == data` proves the bytes canonical: msgpack writes the
    shortest forms, and a duplicate key would have shortened the re-encoding.
    """
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH and value:
            return False
        depth += 1
        prev = None
        for k, v in value.items():
            # str order is UTF-8 byte order for valid (decoded) strings
            if type(k) is not str or (prev is not None and k <= prev):
                return False
            prev = k
            if type(v) not in _SCALARS and not _plain(v, depth):
                return False
        return True
    if kind is list:
        if depth >= MAX_DEPTH and value:
            return False
        depth += 1
        for v in value:
            if type(v) not in _SCALARS and not _plain(v, depth):
                return False
        return True
    return kind in _SCALARS


def _fast_encode_tree(value: Value, depth: int = 0) -> tuple[bytes, Value] | None:
    """The canonical bytes and their decoded tree if the fast path vouches, else None."""
    try:
        tree = _normal(value, depth)
        data: bytes = _PACKER.pack(tree)
    except (_NotFast, ValueError, TypeError, OverflowError):
        return None  # UnicodeEncodeError is a ValueError; OverflowError: int out of range
    return (data, tree) if len(data) <= _FAST_MAX_BYTES else None


def _fast_accepts(data: bytes, value: Value) -> bool:
    """True iff the fast path proves `data` the canonical encoding of its decoded `value`."""
    if len(data) > _FAST_MAX_BYTES or not _plain(value, 0):
        return False
    try:
        return bool(_PACKER.pack(value) == data)
    except (ValueError, TypeError, OverflowError):
        return False


def plain_encoding(value: Value, depth: int = 0) -> bytes | None:
    """`encode(value)` when the fast path vouches for `value` as it stands, else None.

    It vouches for values of exact model types whose maps already hold their keys in
    canonical order (as `decode` returns them) and whose nesting stays within MAX_DEPTH
    when `value` sits `depth` deep in a larger value. None rejects nothing: the caller
    takes the full path, which decides. For fast paths that splice canonical encodings.
    """
    if depth > MAX_DEPTH or not _plain(value, depth):
        return None
    return _packed(value)


def _packed(value: Value) -> bytes | None:
    """msgpack's bytes for a value the caller vouches for, None if msgpack refuses it or
    the bytes pass the fast path's size bound."""
    try:
        data: bytes = _PACKER.pack(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return data if len(data) <= _FAST_MAX_BYTES else None


def loose_map(data: bytes) -> dict[Any, Any] | None:
    """msgpack's lenient reading of `data` when it is exactly one map, else None.

    It vouches for nothing (floats, extension values, bytes keys, unsorted keys and
    over-long forms all pass): a fast path checks what it reads, e.g. with
    `plain_encoding`, and compares the re-encoding with `data` before accepting.
    """
    try:
        value = msgpack.unpackb(data)
    except Exception:  # whatever msgpack raises: the full path decides
        return None
    return value if type(value) is dict else None


def array_header(length: int) -> bytes:
    """The canonical header of an array of `length` items (their encodings follow it)."""
    header: bytes = _PACKER.pack_array_header(length)
    return header


def encode(value: Value) -> bytes:
    """The canonical bytes of `value`; raises CodecError for values outside the model."""
    found = _fast_encode_tree(value)
    if found is not None:
        return found[0]
    return _reference_encode(value)


def encode_value(value: Value, depth: int = 0) -> tuple[bytes, Value | None]:
    """`encode(value)`, and with it, when the fast path vouches for the bytes, the value
    `decode` returns for them, built of new containers the caller may keep (else None).
    Saves decoding bytes the caller has just produced. With `depth` > 0 the fast path
    vouches only if the value could also sit `depth` levels down in a larger value (so
    its bytes may be spliced there: `join_array`, `join_map`)."""
    found = _fast_encode_tree(value, depth)
    if found is not None:
        return found
    return _reference_encode(value), None


def encode_fields(
    obj: object, names: Sequence[str], to_value: Callable[[Any], Value]
) -> tuple[bytes, dict[str, Value]] | None:
    """The fast path of `encode_value({n: to_value(getattr(obj, n)) for n in names})` for a
    record's field `names` (str, already in canonical order): what `_normal` makes of that
    map, built without the map or the sort. None when the fast path does not vouch."""
    try:
        out = {}
        for name in names:
            v = getattr(obj, name)
            out[name] = v if type(v) in _SCALARS else _normal(to_value(v), 1)
        data: bytes = _PACKER.pack(out)
    except (_NotFast, ValueError, TypeError, OverflowError):
        return None
    return (data, out) if len(data) <= _FAST_MAX_BYTES else None


def _reference_encode(value: Value) -> bytes:
    data: bytes = msgpack.packb(_check(value, 0), use_bin_type=True)
    if len(data) > MAX_ENCODED_BYTES:
        raise CodecError("oversize", f"encoding is {len(data)} bytes")
    return data


def _reject_ext(code: int, data: bytes) -> None:
    raise CodecError("ext_type", f"msgpack extension type {code} is not allowed")


def _unpack(data: bytes | bytearray | memoryview, max_bytes: int) -> tuple[bytes, Value]:
    """The input as bytes and msgpack's strict reading of it (not yet checked canonical)."""
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
    return data, value


def _reference_canonical(data: bytes, value: Value) -> Value:
    """The reference verdict: `value` if re-encoding it gives back `data`, else CodecError."""
    try:
        canonical = _reference_encode(value)
    except RecursionError as exc:
        raise CodecError("too_deep", "nesting too deep") from exc
    if canonical != data:
        raise CodecError("non_canonical", "bytes are not the canonical encoding of their value")
    return value


def decode(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> Value:
    """Strictly decode canonical bytes; any deviation raises CodecError (never anything else)."""
    data, value = _unpack(data, max_bytes)
    if _fast_accepts(data, value):
        return value
    return _reference_canonical(data, value)


def reference_decode(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> Value:
    """`decode` by the reference path alone (the specification the fast path must match)."""
    data, value = _unpack(data, max_bytes)
    return _reference_canonical(data, value)


def reference_encode(value: Value) -> bytes:
    """`encode` by the reference path alone (the specification the fast path must match)."""
    return _reference_encode(value)


def fast_accepts(data: bytes, max_bytes: int = MAX_ENCODED_BYTES) -> bool:
    """True iff the fast path alone accepts `data` (for differential tests and benchmarks)."""
    try:
        data, value = _unpack(data, max_bytes)
    except CodecError:
        return False
    return _fast_accepts(data, value)


def encode_scalar(value: Value) -> bytes | None:
    """The fast path's encoding of a scalar of an exact model type, else None."""
    if type(value) not in _SCALARS:
        return None
    return _packed(value)


def map_header(length: int) -> bytes:
    """The header of a map of `length` entries (for maps spliced from encoded parts)."""
    if not 0 <= length <= MAX_CONTAINER_LEN:
        raise CodecError("oversize", "map too long")
    header: bytes = _PACKER.pack_map_header(length)
    return header


def join_array(encoded_items: Sequence[bytes]) -> bytes:
    """`encode(list)` from the canonical encodings of the items, without re-encoding them.

    The caller vouches that each item is canonical (e.g. it came out of `encode`, or out
    of `decode` unchanged); the limits on length and size are checked here.
    """
    if len(encoded_items) > MAX_CONTAINER_LEN:
        raise CodecError("oversize", "array too long")
    return _joined(_PACKER.pack_array_header(len(encoded_items)), encoded_items)


def join_map(encoded_values: Mapping[str, bytes]) -> bytes:
    """`encode(dict)` from the canonical encodings of its values (same contract as join_array)."""
    if len(encoded_values) > MAX_CONTAINER_LEN:
        raise CodecError("oversize", "map too long")
    parts = []
    for key, value in sorted(encoded_values.items(), key=lambda kv: kv[0].encode()):
        parts.append(encode(key))
        parts.append(value)
    return _joined(_PACKER.pack_map_header(len(encoded_values)), parts)


def split_map(data: bytes, array_keys: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Cut an encoded map into its values' encodings without decoding them: {key: bytes},
    or {key: [item bytes]} for keys in `array_keys` whose value is an array. msgpack's own
    reader skips over each value, so this costs little more than a copy. None when `data`
    is not such a map (the caller falls back to `decode`, which says what is wrong).

    Nothing here vouches that the parts are canonical: a caller decodes strictly the parts
    it does not already know, re-joins them (`join_map`, `join_array`) and compares the
    result with `data` byte for byte.
    """
    if len(data) > MAX_ENCODED_BYTES:
        return None
    reader = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        ext_hook=_reject_ext,
        max_buffer_size=max(len(data), 1),
        max_str_len=MAX_STR_BYTES,
        max_bin_len=MAX_STR_BYTES,
        max_array_len=MAX_CONTAINER_LEN,
        max_map_len=MAX_CONTAINER_LEN,
    )
    try:
        reader.feed(data)
        out: dict[str, Any] = {}
        for _ in range(reader.read_map_header()):
            key = reader.unpack()
            if not isinstance(key, str) or key in out:
                return None
            if key in array_keys:
                items = []
                for _ in range(reader.read_array_header()):
                    start = reader.tell()
                    reader.skip()
                    items.append(data[start : reader.tell()])
                out[key] = items
            else:
                start = reader.tell()
                reader.skip()
                out[key] = data[start : reader.tell()]
        if reader.tell() != len(data):
            return None
    except (
        msgpack.UnpackException,
        ValueError,
        TypeError,
        OverflowError,
        RecursionError,
        CodecError,
    ):
        return None  # OutOfData, FormatError, StackError; CodecError from _reject_ext
    return out


def _joined(header: bytes, parts: Sequence[bytes]) -> bytes:
    data = header + b"".join(parts)
    if len(data) > MAX_ENCODED_BYTES:
        raise CodecError("oversize", f"encoding is {len(data)} bytes")
    return data


def sorted_items(mapping: Mapping[str, Value]) -> Sequence[tuple[str, Value]]:
    """Items in canonical key order (UTF-8 byte order), for deterministic iteration."""
    return sorted(mapping.items(), key=lambda kv: kv[0].encode())
