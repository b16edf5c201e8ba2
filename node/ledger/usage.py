"""Device usage reports: the signed facts that drive usage-based royalties.

A usage report is a Transaction of type `usage.report` signed by the DEVICE key, with
`nonce` = the device's sequence number (1, 2, 3, ...). So the device's signature over the
report is the transaction signature: domain-tagged, chain-bound, type-bound (tx.py).

The body carries cumulative registers (units produced, activations, hours...), never
deltas: a lost report never changes what is billed once a later one arrives. It also
carries the hash of the previous report (the tx id of nonce-1, or 32 zero bytes for the
first), so gaps and forks in a device's history are visible. How the ledger checks
sequence, gaps and register rollbacks is the licensing ledger's rule (issue 5): a report
with a sequence number at or below the last accepted one is a replay, a gap or a rollback
is accepted and recorded as an anomaly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from node.ledger import crypto
from node.ledger.records import Record, require, require_bytes, require_uint
from node.ledger.tx import Transaction, make_tx

TX_USAGE_REPORT = "usage.report"
METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TERRITORY_RE = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
MAX_METRICS = 8
MAX_REGISTER = 2**63 - 1
GENESIS_PREV = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class UsageReport(Record):
    """The body of a `usage.report` transaction."""

    sku: str
    territory: str
    device_time_ms: int
    prev_hash: bytes
    registers: dict[str, int]

    def __post_init__(self) -> None:
        require(bool(SKU_RE.match(self.sku)), "bad sku")
        require(bool(TERRITORY_RE.match(self.territory)), "territory must be ISO 3166 alpha-2")
        require_uint(self.device_time_ms, "device_time_ms")
        require_bytes(self.prev_hash, crypto.HASH_BYTES, "prev_hash")
        require(1 <= len(self.registers) <= MAX_METRICS, f"1..{MAX_METRICS} registers")
        for metric, value in self.registers.items():
            if not METRIC_RE.match(metric):  # (messages formatted only when failing)
                raise ValueError(f"bad metric name {metric!r}")
            if not (type(value) is int and 0 <= value <= MAX_REGISTER):
                require_uint(value, f"register {metric}", MAX_REGISTER)


def make_usage_report(
    device: crypto.Signer, chain_id: str, seq: int, report: UsageReport
) -> Transaction:
    """Sign a usage report as the device (seq >= 1 is the transaction nonce)."""
    require(seq >= 1, "sequence numbers start at 1")
    return make_tx(device, chain_id, TX_USAGE_REPORT, report.to_value(), nonce=seq)


def usage_report_of(tx: Transaction) -> UsageReport:
    """The typed body of a usage.report transaction (raises SchemaError if malformed)."""
    require(tx.tx_type == TX_USAGE_REPORT, "not a usage report")
    return UsageReport.from_value(tx.body, "usage.report")


def possession_value(device_public_key: bytes, licensee_public_key: bytes) -> list[bytes]:
    """What a device signs (domain DOMAIN_POSSESSION) to prove it holds its key at enrolment.

    Binding the licensee's key means a proof made for one licensee cannot be replayed by
    another, and the licensee cannot enrol a key whose seed it does not control.
    """
    require_bytes(device_public_key, crypto.PUBLIC_KEY_BYTES, "device_public_key")
    require_bytes(licensee_public_key, crypto.PUBLIC_KEY_BYTES, "licensee_public_key")
    return [device_public_key, licensee_public_key]


def verify_possession(
    device_public_key: bytes, licensee_public_key: bytes, chain_id: str, signature: bytes
) -> bool:
    """True iff `signature` is the device's proof of possession for this licensee and chain."""
    try:
        value = possession_value(device_public_key, licensee_public_key)
    except ValueError:
        return False
    return crypto.verify(device_public_key, signature, crypto.DOMAIN_POSSESSION, chain_id, value)
