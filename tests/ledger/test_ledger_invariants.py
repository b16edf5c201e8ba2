"""Invariants over random transaction sequences (Hypothesis): money is conserved, no
account goes negative, a rejected transaction changes nothing, and replaying the chain
from genesis reproduces every receipt and state digest."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.ledger.app import replay_block
from node.ledger.calendar import MS_PER_DAY, ms_of_date
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
)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.sampled_from(["oem", "codec"]), st.integers(1, 50_000)),
        st.tuples(
            st.just("withdraw"), st.sampled_from(["oem", "codec", "p1"]), st.integers(1, 60_000)
        ),
        st.tuples(st.just("usage"), st.sampled_from(["DE", "US"]), st.integers(-5, 3_000)),
        st.tuples(st.just("pay"), st.sampled_from(["2026-Q1", "2026-Q2"]), st.integers(1, 40_000)),
        st.tuples(st.just("advance"), st.just(""), st.integers(1, 60)),
    ),
    min_size=1,
    max_size=25,
)


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
    register, deposits = 0, 0
    for kind, arg, amount in script:
        if kind == "advance":
            h.ok(h.time_ms + amount * MS_PER_DAY)  # time-driven closes and settlements
            assert_money_conserved(h)
            continue
        if kind == "deposit":
            deposits += 1
            ref = f"d{deposits}"
            h.tx(
                arg,
                "account.deposit",
                {"deposit_id": ref, "currency": "EUR", "amount": amount, "reference": ""},
            )
            h.ok()
            tx = h.tx("bank", "account.ack_deposit", {"deposit_id": ref})
        elif kind == "withdraw":
            tx = h.tx(arg, "account.withdraw", {"currency": "EUR", "amount": amount})
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
        if not receipt.accepted:
            assert h.state() == before, receipt.code
        assert_money_conserved(h)
    replay_from_genesis(h)


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
