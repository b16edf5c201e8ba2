"""Crossing the boundary: the fast argument path agrees with the general one, and
json_size (what storage and events are charged by) is deterministic and additive."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts_vm.values import import_args, import_value, json_size

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**100), 2**100),
                    st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON, max_size=6))
def test_fast_argument_path_agrees_with_general_path(args: list[Any]) -> None:
    value, size = import_args(args)
    general = import_value(args)
    assert value == general and size == json_size(general)
    assert value is not args


def test_json_size_examples() -> None:
    assert json_size(None) == 1 and json_size(True) == 1
    assert json_size(0) == 8 and json_size(255) == 9 and json_size(256) == 10
    assert json_size("abc") == 7 and json_size("\u00e9") == 6
    assert json_size([1, "a"]) == 4 + 9 + 5
    assert json_size({"k": 1}) == 4 + 4 + 1 + 9
