"""Real chains for the statement-proof and validator-history tests.

`build_payments_chain`: the licensing web of tests/ledger/test_licensing_web.py on
LevelDB, with the licensee's account too small at the due date: the pool licence's Q1
statement is paid partly by the due-date settlement (an end-of-block receipt) and the
rest, with late interest, when the licensee next deposits (the ack_deposit's receipt).
The Q1 close block has no transactions and is certified as a null block (on consensus'
NULL_DIGEST), so proofs of it go through the next block's certificate.

`build_membership_chain`: governance replaces validator-0 by validator-4 at height
CHANGE_HEIGHT; blocks are certified by the set the test computes independently from
consensus.activation_seq (old set below ACTIVATION, new set from it on), the change block
itself as a null block.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from consensus import NULL_DIGEST, activation_seq
from node.ledger import crypto
from node.ledger.block import BlockHeader
from node.ledger.calendar import ms_of_date
from node.ledger.certificate import CommitCertificate, CommitSignature, commit_vote_value
from node.ledger.tx import Transaction
from tests.api.chain import VALIDATOR_SIGNERS, _leveldb_harness
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import Harness, signer_for

RADIO_Q1 = "RADIO@2026-Q1"
FIRST_DEPOSIT = 3_000_000  # pays CODEC and OS Q1 in full, RADIO Q1 only in part
SECOND_DEPOSIT = 10_000_000


def certify_digest(
    header: BlockHeader, digest: bytes, signers: list[crypto.Signer]
) -> CommitCertificate:
    vote = commit_vote_value(0, header.height, digest)
    signatures = tuple(
        CommitSignature(s.public_key, s.sign(crypto.DOMAIN_COMMIT, header.chain_id, vote))
        for s in signers
    )
    return CommitCertificate(header.height, 0, digest, signatures)


@dataclass
class PaymentsChain:
    h: Harness
    usage_txs: list[Transaction] = field(default_factory=list)
    close_height: int = 0
    settle_height: int = 0
    ack_tx: Transaction | None = None

    @property
    def store(self) -> Any:
        return self.h.store


def _deposit(h: Harness, deposit_id: str, amount: int) -> Transaction:
    body = {
        "deposit_id": deposit_id,
        "currency": "USD",
        "amount": amount,
        "reference": "escrow",
        "counterparty": b"",
    }
    h.tx("oem", "account.deposit", body)
    h.ok()
    return h.tx("bank", "account.ack_deposit", {"deposit_id": deposit_id})


def build_payments_chain(path: pathlib.Path) -> PaymentsChain:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(web, "Harness", _leveldb_harness(path))
        h = web.build()
    chain = PaymentsChain(h)
    gateways = web.enrol_gateways(h)
    h.ok()
    _deposit(h, "first", FIRST_DEPOSIT)
    h.ok()
    registers = [{"units": 0, "net_sales": 0} for _ in web.GATEWAYS]
    for month in (1, 2, 3):
        for g, (sku, territory) in enumerate(web.GATEWAYS):
            registers[g] = web.grown(registers[g], g, sku, month)
            chain.usage_txs.append(h.usage(gateways[g], sku, territory, dict(registers[g])))
        h.ok(ms_of_date(2026, month, 15))
    chain.close_height = h.store.next_height
    h.ok(web.QUARTER_ENDS[0])  # Q1 closes (no transactions in this block)
    chain.settle_height = h.store.next_height
    h.ok(ms_of_date(2026, 5, 5))  # past the due date: settled as far as the balance goes
    h.ok(ms_of_date(2026, 6, 4))
    chain.ack_tx = _deposit(h, "second", SECOND_DEPOSIT)
    h.ok(ms_of_date(2026, 6, 4) + 1000)  # the ack pays the overdue rest with interest
    head = h.store.head()
    assert head is not None
    for height in range(1, head.height + 1):
        block = h.store.block(height)
        assert block is not None
        digest = NULL_DIGEST if height == chain.close_height else block.header.hash()
        h.store.put_certificate(certify_digest(block.header, digest, VALIDATOR_SIGNERS[:3]))
    return chain


# -- membership change ----------------------------------------------------------------------

CHANGE_HEIGHT = 3
ACTIVATION = activation_seq(CHANGE_HEIGHT, 16, 32)  # 49
OLD_SIGNERS = [signer_for(f"validator-{i}") for i in (0, 1, 2)]
NEW_SIGNERS = [signer_for(f"validator-{i}") for i in (4, 1, 2)]  # validator-4 is new
NEW_SET = tuple(signer_for(f"validator-{i}").public_key for i in (1, 2, 3, 4))
LAST_HEIGHT = ACTIVATION + 8


@dataclass
class MembershipChain:
    h: Harness
    txs: dict[int, Transaction] = field(default_factory=dict)  # height -> a transaction in it


def signers_for(height: int) -> list[crypto.Signer]:
    return OLD_SIGNERS if height < ACTIVATION else NEW_SIGNERS


def build_membership_chain() -> MembershipChain:
    members = {f"validator-{i}": ("validator",) for i in range(5)}
    members["author"] = ("licensor",)
    h = Harness(members, ms_of_date(2026, 1, 1))
    chain = MembershipChain(h)
    body = {
        "proposal_id": "rotate",
        "action": "set_validators",
        "member": None,
        "remove_key": b"",
        "validators": list(NEW_SET),
        "effective_height": CHANGE_HEIGHT,
    }
    h.tx("validator-1", "gov.propose", body)
    h.ok()  # 1
    for i in (2, 3, 4, 0):
        h.tx(f"validator-{i}", "gov.approve", {"proposal_id": "rotate"})
    h.ok()  # 2
    h.ok()  # 3: the change executes at the end of this block
    while h.store.next_height <= LAST_HEIGHT:
        height = h.store.next_height
        if height in (ACTIVATION - 1, ACTIVATION, LAST_HEIGHT):
            body = {
                "deposit_id": f"d{height}",
                "currency": "EUR",
                "amount": height,
                "reference": "",
                "counterparty": b"",
            }
            chain.txs[height] = h.tx("author", "account.deposit", body)
        h.ok()
    for height in range(1, LAST_HEIGHT + 1):
        block = h.store.block(height)
        assert block is not None
        digest = NULL_DIGEST if height == CHANGE_HEIGHT else block.header.hash()
        h.store.put_certificate(certify_digest(block.header, digest, signers_for(height)))
    return chain
