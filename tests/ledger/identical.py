"""Identity of results beyond `==`: the optimised paths must give what the reference
paths give, of the same types all the way down and with every map in the same order
(equal dicts in another order would encode the same but iterate differently)."""

from __future__ import annotations

import dataclasses
from typing import Any


def assert_identical(a: Any, b: Any, where: str = "") -> None:
    """a == b, and of the same types all the way down, every dict in the same order."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: key order {list(a)} != {list(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.compare:
                assert_identical(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def containers(value: Any) -> list[int]:
    """The ids of the dicts and lists in a value tree (to check that two share none)."""
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in containers(v))]
    return []
