"""Invariants over random transaction sequences (Hypothesis): money is conserved (sum of
balances + withdrawals in transit = acknowledged deposits - acknowledged withdrawals), no
account goes negative, deposits and withdrawals move the totals only when a bank or the
named counterparty acknowledges them (checked against the test's own model), a rejected
transaction changes nothing, and replaying the chain from genesis reproduces every
receipt and state digest."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.ledger.app import replay_block
from node.ledger.calendar import MS_PER_DAY, ms_of_date
from node.ledger.model import k_totals
from node.store.chain import ChainStore
from node.store.kv import MemoryKV
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import (
    DEVICE,
    MEMBERS,
    T0,
    activate,
    assert_money_conserved,
    terms,
    withdraw_body,
)

ACKERS = ["bank", "codec", "oem"]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.sampled_from(["oem", "codec"]), st.integers(1, 50_000)),
        st.tuples(st.just("ack_deposit"), st.sampled_from(ACKERS), st.integers(0, 5)),
        st.tuples(
            st.just("withdraw"), st.sampled_from(["oem", "codec", "p1"]), st.integers(1, 60_000)
        ),
        st.tuples(st.just("ack_withdrawal"), st.sampled_from(ACKERS), st.integers(0, 11)),
        st.tuples(st.just("usage"), st.sampled_from(["DE", "US"]), st.integers(-5, 3_000)),
        st.tuples(st.just("pay"), st.sampled_from(["2026-Q1", "2026-Q2"]), st.integers(1, 40_000)),
        st.tuples(st.just("advance"), st.just(""), st.integers(1, 60)),
    ),
    min_size=1,
    max_size=25,
)


@dataclass
class External:
    """The test's own model of external transfers: who may acknowledge, what is done."""

    member: str
    amount: int
    counterparty: str  # "" or a member name
    done: bool = False

    def may_ack(self, who: str) -> bool:
        return not self.done and (who == "bank" or who == self.counterparty)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_random_sequences_keep_the_invariants(script: list[tuple[str, str, int]]) -> None:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 3}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok(ms_of_date(2026, 3, 20))  # start near the quarter end: closes and dues come soon
    register = 0
    deposits: list[External] = []
    withdrawals: list[External] = []
    model = {"deposited": 0, "withdrawn": 0, "in_transit": 0}
    for kind, arg, amount in script:
        if kind == "advance":
            h.ok(h.time_ms + amount * MS_PER_DAY)  # time-driven closes and settlements
            assert_money_conserved(h)
            continue
        expect: bool | None = None  # the model's prediction of acceptance, where it has one
        effect: dict[str, int] = {}
        if kind == "deposit":
            # every third deposit names the other trading party as its counterparty
            other = {"oem": "codec", "codec": "oem"}[arg] if amount % 3 == 0 else ""
            ref = f"d{len(deposits)}"
            deposits.append(External(arg, amount, other))
            tx = h.tx(arg, "account.deposit", deposit_body(h, ref, amount, other))
            expect = True  # pending: changes no balance
        elif kind == "ack_deposit":
            tx = h.tx(arg, "account.ack_deposit", {"deposit_id": f"d{amount}"})
            target = deposits[amount] if amount < len(deposits) else None
            expect = target is not None and target.may_ack(arg)
            if expect and target is not None:
                target.done = True
                effect = {"deposited": target.amount}
        elif kind == "withdraw":
            ref = f"w{len(withdrawals)}"
            tx = h.tx(arg, "account.withdraw", withdraw_body(ref, amount))
        elif kind == "ack_withdrawal":
            index, accept = amount // 2, amount % 2 == 0
            body = {"withdrawal_id": f"w{index}", "accept": accept}
            tx = h.tx(arg, "account.ack_withdrawal", body)
            target = withdrawals[index] if index < len(withdrawals) else None
            expect = target is not None and target.may_ack(arg)
            if expect and target is not None:
                target.done = True
                effect = {"in_transit": -target.amount, "withdrawn": target.amount * accept}
        elif kind == "usage":
            register = max(0, register + amount)
            tx = h.usage(DEVICE, "cam-1", arg, {"units": register})
        else:
            tx = h.tx(
                "oem", "statement.pay", {"licence_id": "L1", "period_id": arg, "amount": amount}
            )
        before = h.state()
        [receipt] = h.block()
        assert receipt.tx_id == tx.tx_id
        if expect is not None:
            assert receipt.accepted == expect, receipt.code
        if kind == "withdraw" and receipt.accepted:
            withdrawals.append(External(arg, amount, ""))
            effect = {"in_transit": amount}
        elif kind == "withdraw":
            withdrawals.append(External(arg, amount, "", done=True))  # keeps ids aligned
        if not receipt.accepted:
            assert h.state() == before, receipt.code
        for key, delta in effect.items():
            model[key] += delta
        totals = h.value(k_totals("EUR")) or {"deposited": 0, "withdrawn": 0, "in_transit": 0}
        assert totals == model  # deposits count only once acknowledged
        assert_money_conserved(h)
    replay_from_genesis(h)


def deposit_body(h: Harness, ref: str, amount: int, counterparty: str) -> dict[str, object]:
    return {
        "deposit_id": ref,
        "currency": "EUR",
        "amount": amount,
        "reference": "",
        "counterparty": h.key[counterparty] if counterparty else b"",
    }


def replay_from_genesis(h: Harness) -> None:
    fresh = ChainStore(MemoryKV())
    block0, changes, acc = h.genesis.block()
    fresh.commit_block(block0, [], None, changes, acc)
    for height in range(1, h.store.next_height):
        block = h.store.block(height)
        assert block is not None
        result = replay_block(fresh, fresh.accumulator(), block)  # checks the header's claims
        assert list(result.receipts) == h.store.receipts(height)
        fresh.commit_block(block, result.receipts, None, result.changes, result.accumulator)
    assert dict(fresh.scan_state(b"")) == h.state()
