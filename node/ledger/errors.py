"""Typed errors of the ledger core. One base class; each error carries a machine-readable
`code` (stable, used in receipts and API answers) and a human-readable `detail`."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger core raises on bad input."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class CodecError(LedgerError):
    """Bytes or values outside the canonical encoding."""


class SchemaError(LedgerError):
    """A decoded value does not match the record's schema (missing, unknown or mistyped field)."""


class SignatureError(LedgerError):
    """A signature that does not verify, or a key of the wrong shape."""


class ProofError(LedgerError):
    """A Merkle proof or commit certificate that does not check out."""
