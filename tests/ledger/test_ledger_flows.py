"""The licensing ledger end to end on one node: real executor, real chain store."""

from __future__ import annotations

import dataclasses

import pytest

from node.ledger import crypto
from node.ledger.calendar import MS_PER_DAY, ms_of_date
from node.ledger.model import (
    Account,
    Device,
    Licence,
    LicenceTerms,
    PoolShare,
    Statement,
    k_account,
    k_device,
    k_licence,
    k_statement,
    k_totals,
    k_unlicensed,
)
from node.ledger.state import digest_of
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness

T0 = ms_of_date(2026, 1, 1)
MEMBERS = {
    "oem": ("licensee",),
    "codec": ("licensor",),
    "pool": ("pool",),
    "p1": ("licensor",),
    "p2": ("licensor",),
    "p3": ("licensor",),
    "bank": ("bank",),
    "auditor": ("auditor",),
}
DEVICE = crypto.Signer(b"\x51" * 32)


def code_hash(source: str) -> bytes:
    return crypto.sha256(source.encode())


def terms(
    h: Harness, licence_id: str, source: str, params: dict, **changes: object
) -> LicenceTerms:
    base = LicenceTerms(
        licence_id=licence_id,
        licensor=h.key["codec"],
        licensee=h.key["oem"],
        pool=(),
        skus=("cam-1",),
        product_classes={},
        territories=("DE", "FR"),
        currency="EUR",
        period="quarter",
        start_ms=T0,
        end_ms=ms_of_date(2028, 1, 1),
        payment_due_days=30,
        rule=code_hash(source),
        rule_params=params,
        upfront_fee=0,
        minimum_annual=0,
        annual_cap=0,
        advance=0,
        late_interest_bps=800,
        upstream_licence="",
        passthrough_bps=0,
        legal_text_hash=b"\x01" * 32,
        arbiter=b"",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def activate(h: Harness, t: LicenceTerms, proposer: str, cosigner: str) -> None:
    h.tx(proposer, "licence.propose", {"terms": t.to_value()})
    h.ok()
    h.tx(cosigner, "licence.sign", {"licence_id": t.licence_id, "terms_hash": t.terms_hash()})
    h.ok()


@pytest.fixture
def h() -> Harness:
    h = Harness(MEMBERS, T0)
    for source in (rules.PER_UNIT, rules.TIERED_ANNUAL):
        h.tx("codec", "rule.deploy", {"source": source})
    h.ok()
    return h


def deposit(h: Harness, who: str, amount: int, ref: str) -> None:
    h.tx(
        who,
        "account.deposit",
        {
            "deposit_id": ref,
            "currency": "EUR",
            "amount": amount,
            "reference": "wire",
            "counterparty": b"",
        },
    )
    h.ok()
    h.tx("bank", "account.ack_deposit", {"deposit_id": ref})
    h.ok()


def withdraw_body(ref: str, amount: int, counterparty: bytes = b"") -> dict[str, object]:
    return {
        "withdrawal_id": ref,
        "currency": "EUR",
        "amount": amount,
        "reference": "",
        "counterparty": counterparty,
    }


def test_enrolment_needs_the_devices_proof_of_possession(h: Harness) -> None:
    other = crypto.Signer(b"\x52" * 32)
    forged = other.sign(
        crypto.DOMAIN_POSSESSION, "alps-ledger-test", [DEVICE.public_key, h.key["oem"]]
    )
    h.tx("oem", "device.enrol", {"device": DEVICE.public_key, "sku": "cam-1", "proof": forged})
    [r] = h.block()
    assert (r.accepted, r.code) == (False, "bad_proof")
    h.enrol("codec", DEVICE, "cam-1")  # not a licensee
    assert h.block()[0].code == "not_a_licensee"
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    assert h.get(k_device(DEVICE.public_key), Device).licensee == h.key["oem"]


def test_usage_replays_gaps_rollbacks_and_unlicensed_use(h: Harness) -> None:
    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 20}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    first = h.usage(DEVICE, "cam-1", "DE", {"units": 10})
    h.ok()
    before = h.state()
    h.queue.append(first)  # the same record again: a no-op, not an error storm
    [r] = h.block()
    assert (r.accepted, r.code) == (False, "replay")
    assert h.state() == before
    h.usage(DEVICE, "cam-1", "DE", {"units": 15}, seq=5)  # gap of 3
    h.usage(DEVICE, "cam-1", "DE", {"units": 12})  # rollback by 3
    h.usage(DEVICE, "cam-1", "US", {"units": 20})  # outside the licence's territories
    receipts = h.ok()
    anomalies = [
        e.attrs["anomaly"] for r in receipts for e in r.events if e.kind == "usage_anomaly"
    ]
    assert anomalies == ["gap", "register_rollback"]
    assert [e.kind for e in receipts[2].events] == ["unlicensed_use"]
    dev = h.get(k_device(DEVICE.public_key), Device)
    assert (dev.last_seq, dev.anomalies, dev.registers) == (7, 2, {"units": 20})
    unlicensed = h.value(k_unlicensed(h.key["oem"], "cam-1", "2026-01"))
    assert unlicensed == {"units": 8}


def test_unknown_and_revoked_devices_are_rejected(h: Harness) -> None:
    h.usage(DEVICE, "cam-1", "DE", {"units": 1})
    assert h.block()[0].code == "unknown_device"
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.tx("oem", "device.revoke", {"device": DEVICE.public_key})
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 1}, seq=1)
    assert h.block()[0].code == "revoked_device"


def test_licence_needs_every_party_to_sign_the_same_terms(h: Harness) -> None:
    t = terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 20})
    h.tx("codec", "licence.propose", {"terms": t.to_value()})
    h.ok()
    h.tx("oem", "licence.sign", {"licence_id": "L1", "terms_hash": b"\x00" * 32})
    assert h.block()[0].code == "terms_mismatch"
    h.tx("p1", "licence.sign", {"licence_id": "L1", "terms_hash": t.terms_hash()})
    assert h.block()[0].code == "not_a_party"
    assert h.get(k_licence("L1"), Licence).status == "proposed"
    h.tx("oem", "licence.sign", {"licence_id": "L1", "terms_hash": t.terms_hash()})
    h.ok()
    assert h.get(k_licence("L1"), Licence).status == "active"


def test_quarter_close_statement_settlement_and_late_interest(h: Harness) -> None:
    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 20}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 30_000})
    h.ok()
    h.usage(DEVICE, "cam-1", "FR", {"units": 50_000})
    h.ok()
    deposit(h, "oem", 400_000, "d1")
    q2 = ms_of_date(2026, 4, 1)
    h.ok(q2)  # the quarter closes in this block
    s = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (s.total, s.usage_count, s.status) == (50_000 * 20, 2, "open")
    assert s.due_ms == q2 + 30 * MS_PER_DAY
    h.ok(s.due_ms)  # due: pays what the balance allows (400,000 of 1,000,000)
    s = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (s.paid, s.principal_outstanding) == (400_000, 600_000)
    assert h.get(k_account(h.key["codec"], "EUR"), Account).balance == 400_000
    # 600,000.00 paid 30 days late at 8%/year act/365 -> 3,945.21 in minor units.
    deposit_time = s.due_ms + 30 * MS_PER_DAY
    h.tx(
        "oem",
        "account.deposit",
        {
            "deposit_id": "d2",
            "currency": "EUR",
            "amount": 700_000,
            "reference": "wire",
            "counterparty": b"",
        },
    )
    h.ok(deposit_time - 1000)
    h.tx("bank", "account.ack_deposit", {"deposit_id": "d2"})
    h.ok(deposit_time)
    s = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (s.status, s.paid, s.interest_paid) == ("paid", 1_000_000, 3_945)
    assert h.get(k_account(h.key["oem"], "EUR"), Account).balance == 1_100_000 - 1_003_945
    assert_money_conserved(h)


def test_pool_payment_is_apportioned_exactly(h: Harness) -> None:
    pool_terms = terms(
        h,
        "POOL",
        rules.PER_UNIT,
        {"fee_per_unit": 7},
        licensor=h.key["pool"],
        pool=(PoolShare(h.key["p1"], 5), PoolShare(h.key["p2"], 3), PoolShare(h.key["p3"], 1)),
    )
    activate(h, pool_terms, "pool", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["POOL"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 1001})
    h.ok()
    deposit(h, "oem", 1_000_000, "d1")
    h.ok(ms_of_date(2026, 4, 1))
    h.ok(ms_of_date(2026, 5, 1))
    total = 1001 * 7
    shares = [h.get(k_account(h.key[p], "EUR"), Account).balance for p in ("p1", "p2", "p3")]
    assert sum(shares) == total
    assert shares == [3893, 2336, 778]  # 7007 * 5/9, 3/9, 1/9 with the largest remainder
    assert_money_conserved(h)


def test_incremental_state_digest_matches_full_recomputation(h: Harness) -> None:
    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 20}), "codec", "oem")
    assert h.store.accumulator().digest() == digest_of(h.state())


def assert_money_conserved(h: Harness) -> None:
    balances = [Account.decode(v).balance for k, v in h.state().items() if k.startswith(b"acct/")]
    totals = {"deposited": 0, "withdrawn": 0, "in_transit": 0, **(h.value(k_totals("EUR")) or {})}
    assert sum(balances) + totals["in_transit"] == totals["deposited"] - totals["withdrawn"]
    assert all(b >= 0 for b in balances)


def test_unfit_blocks_are_invalid_and_header_claims_are_checked(h: Harness) -> None:
    from node.ledger.app import BlockInvalid, execute_block, replay_block
    from node.ledger.context import BlockInfo

    tx = h.tx("oem", "account.withdraw", withdraw_body("w1", 1))
    h.queue.clear()
    forged = dataclasses.replace(tx, signature=bytes(64))
    info = BlockInfo("alps-ledger-test", h.store.next_height, h.time_ms + 1)
    with pytest.raises(BlockInvalid) as exc:
        execute_block(h.store, h.store.accumulator(), info, [forged])
    assert exc.value.code == "bad_signature"
    other_chain = BlockInfo("another-chain", info.height, info.time_ms)
    with pytest.raises(BlockInvalid):
        execute_block(h.store, h.store.accumulator(), other_chain, [tx])
    h.tx("oem", "account.withdraw", withdraw_body("w1", 1))
    h.block()
    block = h.store.block(h.store.next_height - 1)
    assert block is not None
    lying = dataclasses.replace(
        block, header=dataclasses.replace(block.header, state_digest=b"\x00" * 32)
    )
    parent = Harness(MEMBERS, T0)  # replay needs the parent state: rebuild it
    for height in range(1, h.store.next_height - 1):
        b = h.store.block(height)
        assert b is not None
        r = replay_block(parent.store, parent.store.accumulator(), b)
        parent.store.commit_block(b, r.receipts, None, r.changes, r.accumulator)
    with pytest.raises(BlockInvalid) as exc:
        replay_block(parent.store, parent.store.accumulator(), lying)
    assert exc.value.code == "state_digest"


def test_live_estimate_matches_the_statement_and_writes_nothing(h: Harness) -> None:
    from node.ledger.periods import estimate

    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 20}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 123})
    h.ok()
    before = h.state()
    live = estimate(h.store, "alps-ledger-test", "L1", h.time_ms)
    assert (live.period_id, live.total, live.usage_count) == ("2026-Q1", 123 * 20, 1)
    assert h.state() == before
    h.ok(ms_of_date(2026, 4, 1))
    closed = h.get(k_statement("L1", "2026-Q1"), Statement)
    assert (closed.total, closed.usage_root) == (live.total, live.usage_root)
