"""Licence-level terms applied at period close, amendments, disputes and governance."""

from __future__ import annotations

from node.ledger import crypto
from node.ledger.calendar import ms_of_date
from node.ledger.certificate import ValidatorSet
from node.ledger.genesis import K_VALIDATORS
from node.ledger.model import (
    Account,
    Licence,
    Member,
    Statement,
    k_account,
    k_licence,
    k_member,
    k_statement,
)
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness, signer_for
from tests.ledger.test_ledger_flows import (
    DEVICE,
    MEMBERS,
    T0,
    activate,
    assert_money_conserved,
    deposit,
    terms,
)

Q = [ms_of_date(2026, m, 1) for m in (4, 7, 10)] + [ms_of_date(2027, 1, 1)]


def setup(h: Harness, source: str, params: dict, **changes: object) -> None:
    h.tx("codec", "rule.deploy", {"source": source})
    h.ok()
    activate(h, terms(h, "L1", source, params, **changes), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()


def stmt(h: Harness, period: str) -> Statement:
    return h.get(k_statement("L1", period), Statement)


def run_year(h: Harness, units_per_quarter: list[int], metric: str = "units") -> None:
    register = 0
    for quarter_end, units in zip(Q, units_per_quarter, strict=True):
        register += units
        if units:
            h.usage(DEVICE, "cam-1", "DE", {metric: register})
            h.ok()
        h.ok(quarter_end)


def test_mpeg_la_marginal_tiers_over_a_year() -> None:
    """domain.md: first 100,000 units free, USD 0.20 to 5M, 0.10 above; 6M -> 1,080,000.00."""
    h = Harness(MEMBERS, T0)
    tiers = [[100_000, 0], [5_000_000, 20], [0, 10]]
    setup(h, rules.TIERED_ANNUAL, {"tiers": tiers}, currency="USD")
    run_year(h, [1_000_000, 2_000_000, 2_500_000, 500_000])
    totals = [stmt(h, f"2026-Q{i}").total for i in range(1, 5)]
    # Q3 crosses the 5M tier: 2M x 0.20 + 0.5M x 0.10.
    assert totals == [18_000_000, 40_000_000, 45_000_000, 5_000_000]
    assert sum(totals) == 108_000_000  # USD 1,080,000.00


def test_annual_cap_reached_mid_year_and_minimum_guarantee_true_up() -> None:
    h = Harness(MEMBERS, T0)
    setup(h, rules.PER_UNIT, {"fee_per_unit": 10}, annual_cap=50_000)
    run_year(h, [3_000, 3_000, 3_000, 0])
    assert [stmt(h, f"2026-Q{i}").total for i in range(1, 5)] == [30_000, 20_000, 0, 0]
    assert [li.label for li in stmt(h, "2026-Q2").lines] == ["units x fee", "annual cap"]

    h2 = Harness(MEMBERS, T0)
    setup(h2, rules.PER_UNIT, {"fee_per_unit": 10}, minimum_annual=100_000)
    run_year(h2, [1_000, 0, 2_000, 1_000])
    q4 = stmt(h2, "2026-Q4")
    assert [(li.label, li.amount) for li in q4.lines] == [
        ("units x fee", 10_000),
        ("minimum annual guarantee true-up", 60_000),
    ]
    assert sum(stmt(h2, f"2026-Q{i}").total for i in range(1, 5)) == 100_000


def test_advance_is_billed_first_and_recouped_from_royalties() -> None:
    h = Harness(MEMBERS, T0)
    setup(h, rules.PER_UNIT, {"fee_per_unit": 10}, advance=25_000, upfront_fee=5_000)
    run_year(h, [1_000, 2_000, 1_000, 0])
    q1, q2, q3 = (stmt(h, f"2026-Q{i}") for i in (1, 2, 3))
    assert [(li.label, li.amount) for li in q1.lines] == [
        ("units x fee", 10_000),
        ("advance recouped", -10_000),
        ("upfront fee", 5_000),
        ("advance", 25_000),
    ]
    assert (q2.total, q3.total) == (5_000, 10_000)  # 20,000 - remaining 15,000; then full
    assert h.get(k_licence("L1"), Licence).advance_remaining == 0


def test_amendment_applies_from_its_period_and_never_to_a_closed_one() -> None:
    h = Harness(MEMBERS, T0)
    setup(h, rules.PER_UNIT, {"fee_per_unit": 10})
    h.ok(Q[0])  # Q1 closed
    lic = h.get(k_licence("L1"), Licence)
    new_terms = terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 12})
    h.tx("oem", "licence.amend", {"terms": new_terms.to_value(), "effective_ms": T0})
    assert h.block()[0].code == "closed_period"
    h.tx("oem", "licence.amend", {"terms": new_terms.to_value(), "effective_ms": Q[1]})
    h.ok()
    h.tx("codec", "licence.sign", {"licence_id": "L1", "terms_hash": new_terms.terms_hash()})
    h.ok()
    assert len(h.get(k_licence("L1"), Licence).versions) == len(lic.versions) + 1
    h.usage(DEVICE, "cam-1", "DE", {"units": 100})
    h.ok()
    h.ok(Q[1])
    h.usage(DEVICE, "cam-1", "DE", {"units": 200})
    h.ok()
    h.ok(Q[2])
    assert (stmt(h, "2026-Q2").total, stmt(h, "2026-Q3").total) == (1_000, 1_200)


def test_pass_through_to_upstream_licensor_and_disputed_lines_are_frozen() -> None:
    h = Harness({**MEMBERS, "codec": ("licensee", "licensor")}, T0)  # a sublicensor
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    upstream = terms(
        h,
        "UP",
        rules.PER_UNIT,
        {"fee_per_unit": 1},
        licensor=h.key["p1"],
        licensee=h.key["codec"],
        skus=("codec-sdk",),
    )
    h.tx("p1", "licence.propose", {"terms": upstream.to_value()})
    h.ok()
    h.tx("codec", "licence.sign", {"licence_id": "UP", "terms_hash": upstream.terms_hash()})
    h.ok()
    activate(
        h,
        terms(
            h,
            "L1",
            rules.PER_UNIT,
            {"fee_per_unit": 10},
            upstream_licence="UP",
            passthrough_bps=2_500,
        ),
        "codec",
        "oem",
    )
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 1_000})
    h.ok()
    h.ok(Q[0])
    h.tx(
        "oem",
        "statement.dispute",
        {"licence_id": "L1", "period_id": "2026-Q1", "line": 0, "evidence_hash": b"\x07" * 32},
    )
    h.ok()
    deposit(h, "oem", 50_000, "d1")
    h.ok(stmt(h, "2026-Q1").due_ms)
    assert stmt(h, "2026-Q1").paid == 0  # frozen while disputed
    for party in ("oem", "codec"):
        h.tx(
            party,
            "statement.resolve",
            {"licence_id": "L1", "period_id": "2026-Q1", "line": 0, "amount": 8_000},
        )
    h.ok()
    s = stmt(h, "2026-Q1")
    assert (s.total, s.adjustment, s.paid, s.status) == (10_000, -2_000, 8_000, "paid")
    assert [li.amount for li in s.lines] == [10_000]  # the closed statement is unchanged
    balances = {n: h.get(k_account(h.key[n], "EUR"), Account).balance for n in ("codec", "p1")}
    assert balances == {"codec": 6_000, "p1": 2_000}  # 25% of 8,000 passes through
    assert_money_conserved(h)


def test_governance_needs_more_than_two_thirds_and_waits_for_its_height() -> None:
    members = {f"m{i}": ("licensor",) for i in range(6)}
    h = Harness(members, T0)
    newcomer = signer_for("newcomer").public_key
    new_member = Member("newcomer", newcomer, ("auditor",))
    body = {
        "proposal_id": "p1",
        "action": "add_member",
        "member": new_member.to_value(),
        "remove_key": b"",
        "validators": [],
        "effective_height": 6,
    }
    h.tx("m0", "gov.propose", body)
    h.ok()
    for i in (1, 2, 3):  # 4 of 6 approvals is not more than two thirds
        h.tx(f"m{i}", "gov.approve", {"proposal_id": "p1"})
    h.ok()
    while h.store.next_height <= 6:
        h.ok()
    assert h.get(k_member(newcomer), Member) is None
    body2 = {**body, "proposal_id": "p2", "effective_height": 10}
    h.tx("m0", "gov.propose", body2)
    h.ok()
    for i in (1, 2, 3, 4):  # 5 of 6
        h.tx(f"m{i}", "gov.approve", {"proposal_id": "p2"})
    h.ok()
    assert h.get(k_member(newcomer), Member) is None  # not before its height
    while h.store.next_height <= 10:
        h.ok()
    assert h.get(k_member(newcomer), Member) == new_member
    validators = ValidatorSet.decode(h.store.get(K_VALIDATORS))
    assert validators.n == 4 and crypto.PUBLIC_KEY_BYTES == 32
