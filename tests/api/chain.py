"""A real chain for API tests: the licensing web of tests/ledger/test_licensing_web.py
(licences, a pool, a sublicence, devices, a deposit, a quarter of usage closed and
settled) executed by the real ledger and committed into a real ChainStore on LevelDB,
with commit certificates signed by 3 of the 4 genesis validators. The last block is left
uncertified on purpose (a node that has not yet learned its certificate)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from node.ledger import crypto
from node.ledger.block import BlockHeader
from node.ledger.calendar import ms_of_date
from node.ledger.certificate import (
    CommitCertificate,
    CommitSignature,
    ValidatorSet,
    commit_vote_value,
)
from node.ledger.tx import Transaction
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import Harness, signer_for

VALIDATOR_SIGNERS = [signer_for(f"validator-{i}") for i in range(4)]
VALIDATORS = ValidatorSet(tuple(s.public_key for s in VALIDATOR_SIGNERS))
MONTHS = (1, 2, 3)


def certify(header: BlockHeader, signers: list[crypto.Signer] | None = None) -> CommitCertificate:
    signers = VALIDATOR_SIGNERS[:3] if signers is None else signers
    vote = commit_vote_value(0, header.height, header.hash())
    signatures = tuple(
        CommitSignature(s.public_key, s.sign(crypto.DOMAIN_COMMIT, header.chain_id, vote))
        for s in signers
    )
    return CommitCertificate(header.height, 0, header.hash(), signatures)


@dataclass
class Chain:
    h: Harness
    gateways: list[crypto.Signer]
    usage_txs: list[Transaction] = field(default_factory=list)
    uncertified_tx: Transaction | None = None

    @property
    def store(self) -> ChainStore:
        return self.h.store

    def key(self, name: str) -> bytes:
        return self.h.key[name]


def _leveldb_harness(path: pathlib.Path) -> type[Harness]:
    class LevelDBHarness(Harness):
        """The ledger test harness, moved onto LevelDB right after genesis."""

        def __init__(self, members: dict[str, tuple[str, ...]], t0_ms: int) -> None:
            super().__init__(members, t0_ms)
            kv = LevelDBKV(path)
            kv.write(list(self.store.kv.scan(b"")), sync=True)
            self.store = ChainStore(kv)

    return LevelDBHarness


def build_chain(path: pathlib.Path) -> Chain:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(web, "Harness", _leveldb_harness(path))
        h = web.build()
    gateways = web.enrol_gateways(h)
    h.ok()
    deposit: dict[str, Any] = {
        "deposit_id": "fund",
        "currency": "USD",
        "amount": 500_000_000,
        "reference": "escrow",
        "counterparty": b"",
    }
    h.tx("oem", "account.deposit", deposit)
    h.ok()
    h.tx("bank", "account.ack_deposit", {"deposit_id": "fund"})
    h.ok()
    chain = Chain(h, gateways)
    registers = [{"units": 0, "net_sales": 0} for _ in web.GATEWAYS]
    for month in (*MONTHS, 4):
        for g, (sku, territory) in enumerate(web.GATEWAYS):
            registers[g] = web.grown(registers[g], g, sku, month)
            chain.usage_txs.append(h.usage(gateways[g], sku, territory, dict(registers[g])))
        h.ok(ms_of_date(2026, month, 15))
        if month == 3:
            h.ok(web.QUARTER_ENDS[0])  # Q1 closes
    h.ok(ms_of_date(2026, 5, 20))  # past Q1's due date: Q1 is paid; Q2 is open
    store = h.store
    head = store.head()
    assert head is not None
    for height in range(1, head.height + 1):
        block = store.block(height)
        assert block is not None
        store.put_certificate(certify(block.header))
    chain.uncertified_tx = h.tx("oem", "bom.set", {"sku": "hub-1", "licences": ["RADIO"]})
    h.ok(ms_of_date(2026, 5, 21))
    return chain
