"""Shared builders for agent tests."""

from __future__ import annotations

import pathlib

from device_agent.outbox import Outbox
from node.ledger import crypto
from node.ledger.tx import Transaction
from node.ledger.usage import UsageReport, make_usage_report

CHAIN = "alps-test"
DEVICE = crypto.Signer(b"\x41" * 32)
LICENSEE = crypto.Signer(b"\x42" * 32)


def build(seq: int, prev: bytes, registers: dict[str, int]) -> Transaction:
    report = UsageReport("cam-1", "DE", 1_700_000_000_000 + seq, prev, registers)
    return make_usage_report(DEVICE, CHAIN, seq, report)


def outbox(tmp: pathlib.Path, records_max: int = 100) -> Outbox:
    return Outbox(tmp / "outbox.sqlite", DEVICE.public_key, CHAIN, records_max)
