"""The metered, sandboxed interpreter for licence rules (a restricted Python subset).

Public API (what the ledger calls; keep it small and stable):

    compile(source: str) -> Program
        Validate against the allow-list and compile. Raises CompileError(line, construct).
        Program is frozen: .source, .code_hash (sha256 of the UTF-8 source, 32 bytes),
        .functions (top-level function names, the possible entry points).

    execute(program: Program, entry: str, args: Sequence[Json], gas_limit: int,
            host: Host) -> Result
        Result(status: Status, value: Json, gas_used: int, effects: Effects, error: str)
        status is Status.OK / OUT_OF_GAS / LIMIT / ERROR. effects (sorted storage writes,
        events) are non-empty only on OK. Raises only HostError (a node bug: wrong VM or
        gas schedule version, a non-JSON host value, host interpreter limits).

    Host (Protocol): vm_version, gas_schedule_version (must equal VM_VERSION and
        GAS_SCHEDULE_VERSION from the chain configuration), param(name),
        aggregate(name), storage_get(key) -> JSON-like value or None.

Inside contracts: builtins len range min max sum abs sorted enumerate zip list dict str int
bool reversed any all divmod fail; money mul_div(a, b, d, rounding) and
allocate(total, weights); calendar days_from_civil civil_from_days days_between
is_leap_year days_in_month month_end quarter_end year_end period_end add_months; host
param aggregate storage_get storage_set emit. Module map: validator (allow-list),
codegen (metered code), runtime/builtins/methods (helpers), money, values, schedule.
"""

from .errors import (
    CompileError,
    ContractError,
    HostError,
    LimitExceeded,
    OutOfGas,
    VMError,
)
from .executor import Effects, Event, Host, Program, Result, Status, compile_program, execute
from .money import ROUNDINGS, allocate, mul_div
from .schedule import (
    DEFAULT_LIMITS,
    DEFAULT_SCHEDULE,
    GAS_SCHEDULE_VERSION,
    VM_VERSION,
    GasSchedule,
    Limits,
)
from .values import Json

compile = compile_program

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SCHEDULE",
    "GAS_SCHEDULE_VERSION",
    "ROUNDINGS",
    "VM_VERSION",
    "CompileError",
    "ContractError",
    "Effects",
    "Event",
    "GasSchedule",
    "Host",
    "HostError",
    "Json",
    "LimitExceeded",
    "Limits",
    "OutOfGas",
    "Program",
    "Result",
    "Status",
    "VMError",
    "allocate",
    "compile",
    "compile_program",
    "execute",
    "mul_div",
]
