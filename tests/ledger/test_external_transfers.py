"""External bank transfers: a deposit is usable only once a bank member or the counterparty
it names acknowledges it; a withdrawal is reserved at once and leaves (or returns) when a
bank member or its counterparty confirms (or declines) it."""

from __future__ import annotations

from node.ledger.calendar import ms_of_date
from node.ledger.model import Account, Statement, k_account, k_statement, k_totals
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


def deposit_body(ref: str, amount: int, counterparty: bytes = b"") -> dict[str, object]:
    return {
        "deposit_id": ref,
        "currency": "EUR",
        "amount": amount,
        "reference": "SEPA 123",
        "counterparty": counterparty,
    }


def balance(h: Harness, who: str) -> int:
    acct = h.get(k_account(h.key[who], "EUR"), Account)
    return acct.balance if acct else 0


def code(h: Harness) -> str:
    [receipt] = h.block()
    return receipt.code


def test_a_deposit_is_usable_only_after_acknowledgement() -> None:
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    activate(h, terms(h, "L1", rules.PER_UNIT, {"fee_per_unit": 10}), "codec", "oem")
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["L1"]})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 100})
    h.tx("oem", "account.deposit", deposit_body("d1", 5_000, counterparty=h.key["codec"]))
    h.ok()
    h.ok(ms_of_date(2026, 4, 1))
    s = h.get(k_statement("L1", "2026-Q1"), Statement)
    h.ok(s.due_ms)
    assert h.get(k_statement("L1", "2026-Q1"), Statement).paid == 0  # pending: not usable
    assert balance(h, "oem") == 0
    h.tx("oem", "account.withdraw", withdraw_body("w0", 1))
    assert code(h) == "insufficient_funds"

    before = h.state()
    h.tx("oem", "account.ack_deposit", {"deposit_id": "d1"})  # not its own deposit
    assert code(h) == "not_a_bank"
    h.tx("p1", "account.ack_deposit", {"deposit_id": "d1"})  # not the named counterparty
    assert code(h) == "not_a_bank"
    assert h.state() == before
    h.tx("codec", "account.ack_deposit", {"deposit_id": "d1"})  # the named counterparty
    h.ok()
    assert h.get(k_statement("L1", "2026-Q1"), Statement).status == "paid"  # overdue settled
    assert (balance(h, "oem"), balance(h, "codec")) == (4_000, 1_000)
    h.tx("bank", "account.ack_deposit", {"deposit_id": "d1"})
    assert code(h) == "duplicate"
    h.tx("oem", "account.deposit", deposit_body("d2", 1, counterparty=h.key["oem"]))
    assert code(h) == "bad_counterparty"  # nobody acknowledges their own transfer
    assert_money_conserved(h)


def test_a_withdrawal_is_reserved_then_confirmed_or_declined() -> None:
    h = Harness(MEMBERS, T0)
    h.tx("oem", "account.deposit", deposit_body("d1", 10_000))
    h.ok()
    h.tx("bank", "account.ack_deposit", {"deposit_id": "d1"})
    h.ok()
    h.tx("oem", "account.withdraw", withdraw_body("w1", 7_000))
    h.ok()
    assert balance(h, "oem") == 3_000  # reserved at once: cannot be spent twice
    h.tx("oem", "account.withdraw", withdraw_body("w2", 4_000))
    assert code(h) == "insufficient_funds"
    assert h.value(k_totals("EUR"))["in_transit"] == 7_000
    assert_money_conserved(h)

    h.tx("oem", "account.ack_withdrawal", {"withdrawal_id": "w1", "accept": True})
    assert code(h) == "not_a_bank"
    h.tx("bank", "account.ack_withdrawal", {"withdrawal_id": "w1", "accept": False})
    h.ok()
    assert balance(h, "oem") == 10_000  # declined: the amount returns
    h.tx("bank", "account.ack_withdrawal", {"withdrawal_id": "w1", "accept": True})
    assert code(h) == "duplicate"

    h.tx("oem", "account.withdraw", withdraw_body("w3", 6_000, counterparty=h.key["p1"]))
    h.ok()
    h.tx("p1", "account.ack_withdrawal", {"withdrawal_id": "w3", "accept": True})
    h.ok()
    assert balance(h, "oem") == 4_000
    assert h.value(k_totals("EUR")) == {"deposited": 10_000, "withdrawn": 6_000, "in_transit": 0}
    assert_money_conserved(h)
