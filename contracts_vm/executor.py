"""compile_program and execute: the VM's whole API towards the ledger.

Owns the rule that an execution's outcome is a pure function of (program, entry, args,
gas_limit, host reads): status, value, gas used and effects are identical on every node.
OUT_OF_GAS, LIMIT and ERROR are defined outcomes; effects (storage writes, events) are
returned only on OK. A RecursionError or MemoryError from the host interpreter is not an
outcome (the caps make it unreachable from contract code); if one happens anyway the
node is broken and HostError is raised instead of returning a result.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any, Protocol

from . import runtime as rt
from .builtins import BUILTIN_HELPERS
from .codegen import FILENAME, generate, global_names
from .errors import ContractError, HostError, LimitExceeded, OutOfGas
from .methods import METHOD_HELPERS
from .schedule import DEFAULT_LIMITS, GAS_SCHEDULE_VERSION, VM_VERSION
from .validator import validate
from .values import BadValue, Json, export_value, import_args

ARGS_GAS_PER_BYTE = 1


class Status(enum.StrEnum):
    OK = "OK"
    OUT_OF_GAS = "OUT_OF_GAS"
    LIMIT = "LIMIT"
    ERROR = "ERROR"


class Host(Protocol):
    """What the ledger lends an execution: read-only views plus the chain's VM config.

    Every read returns a JSON-like value (None when absent); the VM deep-copies it."""

    @property
    def vm_version(self) -> int: ...

    @property
    def gas_schedule_version(self) -> int: ...

    def param(self, name: str) -> object: ...

    def aggregate(self, name: str) -> object: ...

    def storage_get(self, key: str) -> object: ...


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    payload: Json


@dataclass(frozen=True, slots=True)
class Effects:
    """Storage writes (sorted by key; value None never occurs) and events, in emit order."""

    storage_writes: tuple[tuple[str, Json], ...] = ()
    events: tuple[Event, ...] = ()


NO_EFFECTS = Effects()


@dataclass(frozen=True, slots=True)
class Result:
    status: Status
    value: Json
    gas_used: int
    effects: Effects = NO_EFFECTS
    error: str = ""


@dataclass(frozen=True, slots=True)
class Program:
    """An immutable compiled contract; `code_hash` is sha256 of the UTF-8 source."""

    source: str
    code_hash: bytes
    functions: tuple[str, ...]
    code: CodeType = field(repr=False, compare=False)
    global_names: tuple[str, ...] = field(repr=False, compare=False, default=())
    # Private cache of ready namespaces (functions already defined). An execution pops
    # one (list.pop is atomic, so concurrent or nested executions never share one),
    # resets it and pushes it back; observable behaviour is that of a fresh namespace.
    pool: list[dict[str, Any]] = field(repr=False, compare=False, default_factory=list)


def _base_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"__builtins__": {}}
    ns.update(
        _oog=rt.oog, _enter=rt.enter, _neg=rt.neg, _add=rt.add, _iadd=rt.iadd, _sub=rt.sub,
        _mul=rt.mul, _fdiv=rt.floordiv, _mod=rt.mod, _pow=rt.power, _eq=rt.eq, _ne=rt.ne,
        _lt=rt.lt,
        _le=rt.le, _gt=rt.gt, _ge=rt.ge, _in=rt.contains, _nin=rt.not_contains,
        _key=rt.key, _setitem=rt.setitem, _slice=rt.getslice, _new=rt.new,
        _tick=rt.tick, _clen=rt.checked_len,
    )
    ns.update({"_b_" + k: v for k, v in BUILTIN_HELPERS.items()})
    ns.update({"_m_" + k: v for k, v in METHOD_HELPERS.items()})
    return ns


BASE_NAMESPACE = _base_namespace()


def compile_program(source: str) -> Program:
    """Validate and compile; raise CompileError (line, construct) if not in the subset."""
    checked = validate(source, DEFAULT_LIMITS)
    code = generate(checked)
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    names = tuple(sorted(global_names(checked)))
    return Program(source, digest, checked.functions, code, names)


def _namespace(program: Program) -> dict[str, Any]:
    try:
        return program.pool.pop()
    except IndexError:
        ns = dict(BASE_NAMESPACE)
        exec(program.code, ns)  # only defines functions; nothing runs
        return ns


def _contract_line(tb: TracebackType | None) -> int:
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _used(m: rt.Meter, gas_limit: int) -> int:
    return gas_limit - max(m.gas, 0)


def execute(
    program: Program, entry: str, args: Sequence[object], gas_limit: int, host: Host
) -> Result:
    """Run `entry(*args)`; never raises for anything contract code or args can do."""
    if host.vm_version != VM_VERSION or host.gas_schedule_version != GAS_SCHEDULE_VERSION:
        raise HostError(
            f"chain config wants VM {host.vm_version}/gas {host.gas_schedule_version}, "
            f"this VM is {VM_VERSION}/{GAS_SCHEDULE_VERSION}"
        )
    if type(gas_limit) is not int or gas_limit <= 0:
        raise HostError("gas_limit must be a positive int")
    m = rt.Meter(gas_limit, host)
    if entry not in program.functions:
        return Result(Status.ERROR, None, 0, error=f"no entry point {entry!r}")
    try:
        vm_args, args_size = import_args(list(args))
    except BadValue as exc:
        return Result(Status.ERROR, None, 0, error=f"bad arguments: {exc}")
    try:
        rt.charge(m, args_size * ARGS_GAS_PER_BYTE)
        ns = _namespace(program)
        ns["_M"] = m
        for name in program.global_names:
            ns.pop(name, None)
        ns["_init"]()
        value = ns[entry](*vm_args)
        out = export_value(m, value)
        ns["_M"] = None
        program.pool.append(ns)
    except OutOfGas:
        return Result(Status.OUT_OF_GAS, None, gas_limit, error="out of gas")
    except LimitExceeded as exc:
        line = _contract_line(exc.__traceback__)
        return Result(Status.LIMIT, None, _used(m, gas_limit), error=f"{exc.message} (line {line})")
    except (RecursionError, MemoryError) as exc:
        raise HostError(f"host interpreter limit reached: {type(exc).__name__}") from exc
    except ContractError as exc:
        line = _contract_line(exc.__traceback__)
        return Result(Status.ERROR, None, _used(m, gas_limit), error=f"{exc.message} (line {line})")
    except (ArithmeticError, LookupError, TypeError, ValueError, NameError,
            RuntimeError) as exc:
        line = _contract_line(exc.__traceback__)
        message = f"{type(exc).__name__} (line {line})"
        return Result(Status.ERROR, None, _used(m, gas_limit), error=message)
    if m.writes is None and m.events is None:
        return Result(Status.OK, out, _used(m, gas_limit))
    effects = Effects(
        tuple(sorted((m.writes or {}).items())),
        tuple(Event(name, payload) for name, payload in m.events or ()),
    )
    return Result(Status.OK, out, _used(m, gas_limit), effects)
