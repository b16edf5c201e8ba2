"""Usage reports are device-signed transactions with validated bodies."""

from __future__ import annotations

import pytest

from node.ledger import crypto
from node.ledger.errors import SchemaError
from node.ledger.tx import Transaction, make_tx
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report, usage_report_of

DEVICE = crypto.Signer(b"\x33" * 32)


def report(**changes: object) -> dict[str, object]:
    good: dict[str, object] = {
        "sku": "cam-1",
        "territory": "DE",
        "device_time_ms": 5,
        "prev_hash": GENESIS_PREV,
        "registers": {"units": 10, "hours": 2},
    }
    return {**good, **changes}


def test_usage_report_is_signed_by_the_device_with_seq_as_nonce() -> None:
    tx = make_usage_report(DEVICE, "alps-test", 3, UsageReport.from_value(report()))
    decoded = Transaction.decode_tx(tx.encode())
    assert decoded.signer == DEVICE.public_key and decoded.nonce == 3
    assert decoded.signature_valid()
    assert usage_report_of(decoded).registers == {"hours": 2, "units": 10}


@pytest.mark.parametrize(
    "bad",
    [
        {"territory": "Germany"},
        {"sku": ""},
        {"registers": {}},
        {"registers": {"units": -1}},
        {"registers": {"units": True}},
        {"registers": {"Bad Metric": 1}},
        {"registers": {f"m{i}": 1 for i in range(9)}},
        {"prev_hash": b"\x00"},
    ],
)
def test_malformed_usage_reports_are_rejected(bad: dict[str, object]) -> None:
    tx = make_tx(DEVICE, "alps-test", "usage.report", report(**bad), nonce=1)
    with pytest.raises(SchemaError):
        usage_report_of(tx)
