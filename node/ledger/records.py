"""Typed records over the canonical codec.

A `Record` is a frozen, slotted dataclass whose fields have simple types; it encodes as a
msgpack map from field name to value. `from_value` is strict: a missing field, an unknown
field, or a value of the wrong type raises `SchemaError`, so a record that exists is valid
and one record has one encoding.

Field types understood: int (not bool), bool, str, bytes, None-able `X | None`,
`tuple[X, ...]` (encoded as a list), nested Record subclasses, and `Value` (any canonical
value, for bodies whose schema is owned by a later layer). Per-field bounds live in each
record's `__post_init__`.

The hot paths take shortcuts that cannot change an answer: `encode`/`encode_value` build
the codec's normalised map straight from the fields (`codec.encode_fields`; anything its
fast path does not vouch for goes through `to_value` and the codec's reference path), and
`from_value` checks an exact scalar type inline, calling the field's converter only to
raise its error. Tests check both against the plain definitions on random records.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

from node.ledger import codec
from node.ledger.errors import CodecError, SchemaError

R = TypeVar("R", bound="Record")

Converter = Callable[[Any, str], Any]


def _scalar(kind: type) -> Converter:
    def convert(value: Any, where: str) -> Any:
        # bool is a subclass of int: an int field never accepts True/False.
        if type(value) is not kind:
            raise SchemaError("wrong_type", f"{where}: expected {kind.__name__}")
        return value

    return convert


def _any_value(value: Any, where: str) -> Any:
    return value


def _converter(tp: Any) -> Converter:
    """Build the decoder for one annotated field type (resolved once per class)."""
    if tp is Any:
        return _any_value
    if tp in (int, bool, str, bytes):
        return _scalar(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner_tp,) = [a for a in args if a is not type(None)]
        inner = _converter(inner_tp)
        return lambda v, where: None if v is None else inner(v, where)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _converter(args[0])

        def convert_tuple(value: Any, where: str) -> Any:
            if not isinstance(value, list):
                raise SchemaError("wrong_type", f"{where}: expected a list")
            return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))

        return convert_tuple
    if origin is dict:

        def convert_map(value: Any, where: str) -> Any:
            if not isinstance(value, dict):
                raise SchemaError("wrong_type", f"{where}: expected a map")
            return value

        return convert_map
    if isinstance(tp, type) and issubclass(tp, Record):
        return lambda v, where: tp.from_value(v, where)
    raise TypeError(f"unsupported record field type {tp!r}")


def _to_value(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_value()
    if isinstance(value, tuple):
        return [_to_value(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class _Schema:
    """How one record class converts (resolved once per class)."""

    fields: tuple[tuple[str, type | None, Converter], ...]  # (name, exact scalar type, ...)
    names: frozenset[str]
    encode_order: tuple[str, ...]  # field names in canonical map key order
    positional: bool  # the fields are __init__'s parameters in order (no kw_only field)


class Record:
    """Base for canonical records. Subclasses are `@dataclass(frozen=True, slots=True)`."""

    __slots__ = ()
    _fields_cache: ClassVar[dict[type, _Schema]] = {}

    @classmethod
    def _schema_of(cls) -> _Schema:
        schema = Record._fields_cache.get(cls)
        if schema is None:
            hints = typing.get_type_hints(cls)
            fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
            # init=False fields are caches, not part of the record
            schema = _Schema(
                fields=tuple(
                    (
                        f.name,
                        hints[f.name] if hints[f.name] in (int, bool, str, bytes) else None,
                        _converter(hints[f.name]),
                    )
                    for f in fields
                ),
                names=frozenset(f.name for f in fields),
                encode_order=tuple(sorted((f.name for f in fields), key=lambda n: n.encode())),
                positional=not any(f.kw_only for f in fields),
            )
            Record._fields_cache[cls] = schema
        return schema

    def to_value(self) -> dict[str, Any]:
        return {name: _to_value(getattr(self, name)) for name, _, _ in self._schema_of().fields}

    @classmethod
    def from_value(cls, value: Any, where: str = "") -> Self:
        where = where or cls.__name__
        if type(value) is not dict and not isinstance(value, Mapping):
            raise SchemaError("wrong_type", f"{where}: expected a map")
        schema = cls._schema_of()
        fields = schema.fields
        if len(value) != len(fields):
            known = schema.names
            unknown = sorted(k for k in value if k not in known)
            missing = sorted(k for k in known if k not in value)
            raise SchemaError(
                "fields", f"{where}: unknown fields {unknown}, missing fields {missing}"
            )
        args = []
        for name, kind, convert in fields:
            if name not in value:
                raise SchemaError("fields", f"{where}: missing field {name!r}")
            v = value[name]
            if kind is None:
                v = convert(v, f"{where}.{name}")
            elif type(v) is not kind:  # what the scalar converter checks, message and all
                convert(v, f"{where}.{name}")
            args.append(v)
        try:
            if schema.positional:
                return cls(*args)
            return cls(**dict(zip((f[0] for f in fields), args, strict=True)))
        except (ValueError, TypeError) as exc:
            raise SchemaError("invalid", f"{where}: {exc}") from exc

    def encode(self) -> bytes:
        return self.encode_value()[0]

    def encode_value(self) -> tuple[bytes, dict[str, Any] | None]:
        """`codec.encode_value(self.to_value())`: the encoding, and the tree `codec.decode`
        returns for it when the codec's fast path vouches for the bytes (else None)."""
        if type(self).to_value is Record.to_value:  # else the subclass's map is the record
            found = codec.encode_fields(self, self._schema_of().encode_order, _to_value)
            if found is not None:
                return found
        return codec.encode_value(self.to_value())

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = codec.MAX_ENCODED_BYTES) -> Self:
        """Strictly decode; raises CodecError or SchemaError (both LedgerError)."""
        return cls.from_value(codec.decode(data, max_bytes))


def require(condition: bool, message: str) -> None:
    """Validation helper for `__post_init__`: raise ValueError (turned into SchemaError)."""
    if not condition:
        raise ValueError(message)


def require_bytes(value: bytes, length: int, name: str) -> None:
    if not (isinstance(value, bytes) and len(value) == length):
        raise ValueError(f"{name} must be {length} bytes")  # formatted only when failing


def require_uint(value: int, name: str, maximum: int = codec.INT_MAX) -> None:
    if not (type(value) is int and 0 <= value <= maximum):
        raise ValueError(f"{name} must be an int in 0..{maximum}")


__all__ = ["CodecError", "Record", "SchemaError", "require", "require_bytes", "require_uint"]
