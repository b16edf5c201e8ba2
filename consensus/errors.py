"""Errors of the consensus core.

Rule kept here: a remote peer's bad input is never raised; it becomes a `Misbehaviour` in
`Ready.misbehaviour`. Exceptions are only for a broken local invariant or a shell that
misuses the API (for example `Executed` out of order); either must stop the node.
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base of every error the consensus core raises. `code` is stable, `detail` is for humans."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class InvariantError(ConsensusError):
    """A local invariant broke (e.g. about to sign two digests for one view and sequence)."""


class UsageError(ConsensusError):
    """The shell called the core wrongly (bad config, `Executed` out of order)."""
