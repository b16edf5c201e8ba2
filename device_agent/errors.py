"""Errors of the device agent. One base class with a stable machine-readable `code`;
the CLI turns any AgentError into one JSON log line and a non-zero exit status."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class ConfigError(AgentError):
    """The config file is missing, unreadable or invalid."""


class KeyFileError(AgentError):
    """The device key file is missing, malformed, or the passphrase is wrong."""


class OutboxCorrupt(AgentError):
    """The outbox database fails its integrity checks; nothing is dropped, the agent stops."""


class NodeError(AgentError):
    """A node answered in a way the upload cannot use (subclasses say how)."""


class NodeUnavailable(NodeError):
    """Connection refused or reset, timeout, or a 5xx answer: try another node later."""


class NodeBusy(NodeError):
    """429: the node's mempool is full; nothing in the batch was taken."""

    def __init__(self, code: str, detail: str = "", retry_after_s: float = 1.0) -> None:
        super().__init__(code, detail)
        self.retry_after_s = retry_after_s


class NodeGarbage(NodeError):
    """An answer that breaks the API contract (bad JSON, wrong shape, wrong ids)."""
