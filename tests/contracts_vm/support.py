"""Test support: an in-memory Host and a one-call runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts_vm import GAS_SCHEDULE_VERSION, VM_VERSION, Result, compile, execute


@dataclass
class FakeHost:
    params: dict[str, Any] = field(default_factory=dict)
    aggregates: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    vm_version: int = VM_VERSION
    gas_schedule_version: int = GAS_SCHEDULE_VERSION

    def param(self, name: str) -> object:
        return self.params.get(name)

    def aggregate(self, name: str) -> object:
        return self.aggregates.get(name)

    def storage_get(self, key: str) -> object:
        return self.storage.get(key)

    def apply(self, result: Result) -> None:
        for k, v in result.effects.storage_writes:
            self.storage[k] = v


def run(
    source: str,
    entry: str,
    *args: Any,
    gas: int = 1_000_000,
    host: FakeHost | None = None,
    **params: Any,
) -> Result:
    h = host if host is not None else FakeHost(params=params)
    return execute(compile(source), entry, list(args), gas, h)
