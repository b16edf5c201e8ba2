"""Typed records over the canonical codec.

A `Record` is a frozen, slotted dataclass whose fields have simple types; it encodes as a
msgpack map from field name to value. `from_value` is strict: a missing field, an unknown
field, or a value of the wrong type raises `SchemaError`, so a record that exists is valid
and one record has one encoding.

Field types understood: int (not bool), bool, str, bytes, None-able `X | None`,
`tuple[X, ...]` (encoded as a list), nested Record subclasses, and `Value` (any canonical
value, for bodies whose schema is owned by a later layer). Per-field bounds live in each
record's `__post_init__`.
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


class Record:
    """Base for canonical records. Subclasses are `@dataclass(frozen=True, slots=True)`."""

    __slots__ = ()
    _fields_cache: ClassVar[dict[type, tuple[tuple[str, Converter], ...]]] = {}

    @classmethod
    def _schema(cls) -> tuple[tuple[str, Converter], ...]:
        schema = Record._fields_cache.get(cls)
        if schema is None:
            hints = typing.get_type_hints(cls)
            schema = tuple(
                (f.name, _converter(hints[f.name]))
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.init  # init=False fields are caches, not part of the record
            )
            Record._fields_cache[cls] = schema
        return schema

    def to_value(self) -> dict[str, Any]:
        return {name: _to_value(getattr(self, name)) for name, _ in self._schema()}

    @classmethod
    def from_value(cls, value: Any, where: str = "") -> Self:
        where = where or cls.__name__
        if not isinstance(value, Mapping):
            raise SchemaError("wrong_type", f"{where}: expected a map")
        schema = cls._schema()
        if len(value) != len(schema):
            known = {name for name, _ in schema}
            unknown = sorted(k for k in value if k not in known)
            missing = sorted(k for k in known if k not in value)
            raise SchemaError(
                "fields", f"{where}: unknown fields {unknown}, missing fields {missing}"
            )
        kwargs = {}
        for name, convert in schema:
            if name not in value:
                raise SchemaError("fields", f"{where}: missing field {name!r}")
            kwargs[name] = convert(value[name], f"{where}.{name}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise SchemaError("invalid", f"{where}: {exc}") from exc

    def encode(self) -> bytes:
        return codec.encode(self.to_value())

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = codec.MAX_ENCODED_BYTES) -> Self:
        """Strictly decode; raises CodecError or SchemaError (both LedgerError)."""
        return cls.from_value(codec.decode(data, max_bytes))


def require(condition: bool, message: str) -> None:
    """Validation helper for `__post_init__`: raise ValueError (turned into SchemaError)."""
    if not condition:
        raise ValueError(message)


def require_bytes(value: bytes, length: int, name: str) -> None:
    require(isinstance(value, bytes) and len(value) == length, f"{name} must be {length} bytes")


def require_uint(value: int, name: str, maximum: int = codec.INT_MAX) -> None:
    require(type(value) is int and 0 <= value <= maximum, f"{name} must be an int in 0..{maximum}")


__all__ = ["CodecError", "Record", "SchemaError", "require", "require_bytes", "require_uint"]
