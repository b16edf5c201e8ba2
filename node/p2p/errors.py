"""The one base exception of `node/p2p`: every failure the package raises on purpose is a
`P2PError` with a stable `code` and a human `detail`."""

from __future__ import annotations


class P2PError(Exception):
    """Base of peer-network errors."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class FramingError(P2PError):
    """Bytes from a peer that are not a valid frame; the reader resets that stream."""


class IdentityError(P2PError):
    """A key or peer ID that is not an Ed25519 validator identity."""


class ConfigError(P2PError):
    """Bad network parameters (limits, addresses, keys) given by the caller."""
