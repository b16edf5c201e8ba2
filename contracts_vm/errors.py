"""The one exception family of the VM: every error the package raises derives from VMError.

CompileError is a deploy-time rejection naming the line and the construct. OutOfGas and
LimitExceeded are the metered outcomes (never seen by callers of `execute`, which turns
them into Result statuses). ContractError is a defined runtime failure raised by a VM
builtin (bad argument, unknown rounding, ...). HostError means the embedding host broke
the contract of the Host protocol (wrong VM version, non-JSON parameter): a node bug,
not a contract outcome, so it is raised out of `execute`.
"""

from __future__ import annotations


class VMError(Exception):
    """Base class for every error raised by contracts_vm."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message: str = message


class CompileError(VMError):
    """The source was rejected at deploy time."""

    def __init__(self, message: str, line: int = 0, construct: str = "") -> None:
        super().__init__(f"line {line}: {construct}: {message}" if construct else message)
        self.line: int = line
        self.construct: str = construct
        self.reason: str = message


class OutOfGas(VMError):
    """The gas limit was reached (raised before the work that would exceed it)."""

    def __init__(self, needed: int = 0) -> None:
        super().__init__("out of gas")
        self.needed: int = needed


class LimitExceeded(VMError):
    """A hard cap (integer size, string/container size, allocation, depth) was hit."""

    def __init__(self, limit: str, value: int = 0) -> None:
        super().__init__(f"limit exceeded: {limit}")
        self.limit: str = limit
        self.value: int = value


class ContractError(VMError):
    """A defined runtime failure inside contract code (raised by a VM builtin)."""


class HostError(VMError):
    """The host violated the Host protocol (a node bug, not a contract outcome)."""
