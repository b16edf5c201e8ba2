"""The ledger's bridge to the contract VM: deploying licence rules and running them.

Rule kept here: a licence rule is a VM program with an entry point

    def royalty(usage, period):
        # usage:  {territory: {product_class: {metric: quantity}}} aggregated for this
        #   licence and period; the ledger adds metric "_new_devices" (devices whose first
        #   usage under this licence fell in this period)
        # period: {"id", "start_day", "end_day", "year" (calendar year of the start),
        #   "contract_year" (1, 2, ... counted from the licence's first period),
        #   "is_year_end" (the period ends its contract year)}
        # param(name): the licence's rule parameters; aggregate(name): contract-year-to-
        #   date figures "ytd_earned" (royalty earned this contract year before this
        #   period) and "ytd_<metric>" (quantity reported this contract year before it)
        return [[label, amount_minor_units], ...]   # or one int

The ledger owns what the rule does not: annual caps, minimum-guarantee true-ups,
advance recoupment and upfront fees are applied natively around the rule's result,
so every licence gets them the same way. A rule that fails (error, out of gas, limit,
bad return value) is a typed rejection: the period cannot close with a made-up number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import contracts_vm as vm
from node.ledger.context import Reject

ENTRY = "royalty"
MAX_SOURCE_BYTES = 64 * 1024
MAX_LINES = 32


@dataclass(frozen=True, slots=True)
class RuleHost:
    """The read-only view a rule gets: its parameters and year-to-date aggregates."""

    params: Mapping[str, Any]
    aggregates: Mapping[str, Any]
    vm_version: int = vm.VM_VERSION
    gas_schedule_version: int = vm.GAS_SCHEDULE_VERSION

    def param(self, name: str) -> Any:
        return self.params.get(name)

    def aggregate(self, name: str) -> Any:
        return self.aggregates.get(name, 0)

    def storage_get(self, key: str) -> Any:
        return None


_PROGRAMS: dict[str, vm.Program] = {}  # memo: compiling is deterministic per source


def compile_rule(source: str) -> vm.Program:
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise Reject("rule_too_large", f"rule source over {MAX_SOURCE_BYTES} bytes")
    program = _PROGRAMS.get(source)
    if program is None:
        try:
            program = vm.compile(source)
        except vm.CompileError as exc:
            raise Reject("rule_rejected", str(exc)) from exc
        if ENTRY not in program.functions:
            raise Reject("rule_rejected", f"a licence rule must define {ENTRY}(usage, period)")
        if len(_PROGRAMS) < 1024:
            _PROGRAMS[source] = program
    return program


def run_rule(
    source: str,
    params: Mapping[str, Any],
    usage: Mapping[str, Mapping[str, Mapping[str, int]]],
    period: Mapping[str, Any],
    aggregates: Mapping[str, Any],
    gas_limit: int,
) -> tuple[list[tuple[str, int]], int]:
    """Run the rule; returns (line items, gas used) or raises Reject."""
    program = compile_rule(source)
    host = RuleHost(params, aggregates)
    result = vm.execute(program, ENTRY, [dict(usage), dict(period)], gas_limit, host)
    if result.status != vm.Status.OK:
        raise Reject("rule_failed", f"{result.status.name}: {result.error}"[:512])
    return _lines(result.value), result.gas_used


def _lines(value: Any) -> list[tuple[str, int]]:
    if type(value) is int:
        value = [["royalty", value]]
    if not isinstance(value, list) or len(value) > MAX_LINES:
        raise Reject("rule_failed", "a rule returns an int or a list of [label, amount]")
    lines = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not 0 < len(item[0]) <= 128
            or type(item[1]) is not int
            or not 0 <= item[1] <= 2**62
        ):
            raise Reject("rule_failed", f"bad line item {item!r}"[:256])
        lines.append((item[0], item[1]))
    return lines
