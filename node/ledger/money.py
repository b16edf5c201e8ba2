"""Settlement accounts, payments, late interest, pool apportionment and disputes.

Rules kept here:
- Money is integer minor units per currency. An external bank transfer in is a deposit
  the member signs, credited only when a `bank` member (or the counterparty the deposit
  names) acknowledges it. A withdrawal the owner signs takes the amount off the balance
  at once (it cannot be spent twice) and holds it in transit until a bank (or the named
  counterparty) confirms the transfer out, or declines it and the amount returns. In
  between money only moves, so per currency: sum of balances + in transit = deposited -
  withdrawn (`totals/<ccy>`).
- No account goes negative: a payment moves at most what the payer holds; the rest stays
  outstanding and accrues late interest on the unpaid principal at the licence's rate,
  actual/365 per whole day, rounded half-even. A payment settles interest first.
- A payment to a pool is apportioned among the pool's licensors by weight with the
  largest-remainder method, so the shares sum exactly to the payment. A sublicence's
  pass-through share goes to the upstream licence's licensor (or pool) first.
- A party or an auditor may dispute a statement line (once) with evidence; the line is
  frozen (not payable, no late interest) until both parties sign the same resolution or
  the licence's arbiter signs one alone. The statement's lines and total stay as closed:
  the resolution is a new `Adjustment` record and the statement's `adjustment` sum.
- Every payment of a statement (a `statement.pay`, a deposit settling overdue statements,
  the due-date settlement) emits one `statement_payment` event: the closed statement's
  hash, payer, currency, principal and interest paid, each payee's amount (after
  pass-through and pool apportionment) and the cumulative figures after it, so the
  payments of a statement form a chain a verifier checks for gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from contracts_vm import allocate, mul_div
from node.ledger import crypto
from node.ledger.calendar import MS_PER_DAY
from node.ledger.context import Ctx, Reject
from node.ledger.errors import LedgerError
from node.ledger.model import (
    BPS,
    CURRENCY_RE,
    Account,
    Adjustment,
    Dispute,
    Licence,
    LicenceTerms,
    Member,
    Statement,
    k_account,
    k_adjustment,
    k_deposit,
    k_dispute,
    k_licence,
    k_member,
    k_overdue,
    k_statement,
    k_statement_closed,
    k_totals,
    k_withdrawal,
    require_amount,
    require_id,
)
from node.ledger.records import Record, require, require_bytes, require_uint

MAX_LINE = 255  # statement lines are at most a few dozen; keys hold the index in 2 bytes


def _require_money(currency: str, amount: int) -> None:
    """A positive amount of minor units in an ISO 4217 currency."""
    require(bool(CURRENCY_RE.match(currency)), "currency")
    require_amount(amount, "amount")
    require(amount > 0, "amount > 0")


def _require_counterparty(counterparty: bytes) -> None:
    require(counterparty == b"" or len(counterparty) == 32, "counterparty: b'' or a member key")


@dataclass(frozen=True, slots=True)
class DepositBody(Record):
    deposit_id: str
    currency: str
    amount: int
    reference: str
    counterparty: bytes  # b"": any bank member acknowledges; else this member (or a bank)

    def __post_init__(self) -> None:
        require_id(self.deposit_id, "deposit_id")
        _require_money(self.currency, self.amount)
        require(len(self.reference) <= 128, "reference at most 128 characters")
        _require_counterparty(self.counterparty)


@dataclass(frozen=True, slots=True)
class AckBody(Record):
    deposit_id: str


@dataclass(frozen=True, slots=True)
class WithdrawBody(Record):
    withdrawal_id: str
    currency: str
    amount: int
    reference: str
    counterparty: bytes

    def __post_init__(self) -> None:
        require_id(self.withdrawal_id, "withdrawal_id")
        _require_money(self.currency, self.amount)
        require(len(self.reference) <= 128, "reference at most 128 characters")
        _require_counterparty(self.counterparty)


@dataclass(frozen=True, slots=True)
class AckWithdrawalBody(Record):
    withdrawal_id: str
    accept: bool  # True: the external transfer was made; False: declined, funds return


@dataclass(frozen=True, slots=True)
class ExternalTransfer(Record):
    """A deposit or withdrawal awaiting (or past) the counterparty's acknowledgement."""

    member: bytes
    currency: str
    amount: int
    counterparty: bytes
    status: str  # pending | done | declined

    def __post_init__(self) -> None:
        require(self.status in ("pending", "done", "declined"), "status")


@dataclass(frozen=True, slots=True)
class PayBody(Record):
    licence_id: str
    period_id: str
    amount: int

    def __post_init__(self) -> None:
        require_amount(self.amount, "amount")
        require(self.amount > 0, "amount > 0")


@dataclass(frozen=True, slots=True)
class DisputeBody(Record):
    licence_id: str
    period_id: str
    line: int
    evidence_hash: bytes

    def __post_init__(self) -> None:
        require_uint(self.line, "line", MAX_LINE)
        require_bytes(self.evidence_hash, 32, "evidence_hash")


@dataclass(frozen=True, slots=True)
class ResolveBody(Record):
    licence_id: str
    period_id: str
    line: int
    amount: int  # the agreed amount for the disputed line

    def __post_init__(self) -> None:
        require_uint(self.line, "line", MAX_LINE)
        require_amount(self.amount, "amount")


# -- balances ----------------------------------------------------------------------------


def balance(ctx: Ctx, member: bytes, currency: str) -> int:
    acct = ctx.get(k_account(member, currency), Account)
    return acct.balance if acct else 0


def _set_balance(ctx: Ctx, member: bytes, currency: str, amount: int) -> None:
    ctx.put(k_account(member, currency), Account(amount))


def transfer(ctx: Ctx, payer: bytes, payee: bytes, currency: str, amount: int, why: str) -> None:
    have = balance(ctx, payer, currency)
    if amount > have:
        raise Reject("insufficient_funds", f"{amount} needed, {have} held")
    _set_balance(ctx, payer, currency, have - amount)
    _set_balance(ctx, payee, currency, balance(ctx, payee, currency) + amount)
    ctx.emit("transfer", payer=payer, payee=payee, currency=currency, amount=amount, why=why)


def _totals(ctx: Ctx, currency: str) -> dict[str, int]:
    """Per currency: deposited and withdrawn (acknowledged), and withdrawals in transit."""
    found: dict[str, int] | None = ctx.get_value(k_totals(currency))
    return {"deposited": 0, "withdrawn": 0, "in_transit": 0, **(found or {})}


def _add_totals(ctx: Ctx, currency: str, **deltas: int) -> None:
    totals = _totals(ctx, currency)
    ctx.put_value(k_totals(currency), {k: v + deltas.get(k, 0) for k, v in totals.items()})


def _check_counterparty(ctx: Ctx, counterparty: bytes) -> None:
    if counterparty and (
        counterparty == ctx.signer or ctx.get(k_member(counterparty), Member) is None
    ):
        raise Reject("bad_counterparty", "the counterparty is another member")


def _may_acknowledge(ctx: Ctx, pending: ExternalTransfer) -> None:
    if pending.counterparty and ctx.signer == pending.counterparty:
        return
    member = ctx.get(k_member(ctx.signer), Member)
    if member is None or "bank" not in member.roles:
        raise Reject("not_a_bank", "only a bank member or the named counterparty acknowledges")


def deposit(ctx: Ctx, body: dict[str, Any]) -> None:
    """A member announces an external transfer in; nothing is credited until it is acked."""
    b = DepositBody.from_value(body)
    if ctx.state.get(k_deposit(b.deposit_id)) is not None:
        raise Reject("duplicate", f"deposit {b.deposit_id} exists")
    _check_counterparty(ctx, b.counterparty)
    pending = ExternalTransfer(ctx.signer, b.currency, b.amount, b.counterparty, "pending")
    ctx.put(k_deposit(b.deposit_id), pending)
    ctx.emit("deposit_requested", deposit_id=b.deposit_id, amount=b.amount, currency=b.currency)


def ack_deposit(ctx: Ctx, body: dict[str, Any]) -> None:
    b = AckBody.from_value(body)
    dep = ctx.must(k_deposit(b.deposit_id), ExternalTransfer, "unknown_deposit", b.deposit_id)
    _may_acknowledge(ctx, dep)
    if dep.status != "pending":
        raise Reject("duplicate", "deposit already acknowledged")
    ctx.put(k_deposit(b.deposit_id), replace(dep, status="done"))
    member, currency, amount = dep.member, dep.currency, dep.amount
    _set_balance(ctx, member, currency, balance(ctx, member, currency) + amount)
    _add_totals(ctx, currency, deposited=amount)
    ctx.emit("deposit", member=member, currency=currency, amount=amount, acked_by=ctx.signer)
    settle_overdue(ctx, member)


def withdraw(ctx: Ctx, body: dict[str, Any]) -> None:
    """The amount leaves the member's balance at once (it cannot be spent twice) and is in
    transit until a bank or the named counterparty confirms the external transfer."""
    b = WithdrawBody.from_value(body)
    if ctx.state.get(k_withdrawal(b.withdrawal_id)) is not None:
        raise Reject("duplicate", f"withdrawal {b.withdrawal_id} exists")
    _check_counterparty(ctx, b.counterparty)
    have = balance(ctx, ctx.signer, b.currency)
    if b.amount > have:
        raise Reject("insufficient_funds", f"{b.amount} requested, {have} held")
    _set_balance(ctx, ctx.signer, b.currency, have - b.amount)
    _add_totals(ctx, b.currency, in_transit=b.amount)
    pending = ExternalTransfer(ctx.signer, b.currency, b.amount, b.counterparty, "pending")
    ctx.put(k_withdrawal(b.withdrawal_id), pending)
    ctx.emit(
        "withdrawal_requested", withdrawal_id=b.withdrawal_id, amount=b.amount, currency=b.currency
    )


def ack_withdrawal(ctx: Ctx, body: dict[str, Any]) -> None:
    b = AckWithdrawalBody.from_value(body)
    out = ctx.must(
        k_withdrawal(b.withdrawal_id), ExternalTransfer, "unknown_withdrawal", b.withdrawal_id
    )
    _may_acknowledge(ctx, out)
    if out.status != "pending":
        raise Reject("duplicate", "withdrawal already acknowledged")
    if b.accept:
        _add_totals(ctx, out.currency, in_transit=-out.amount, withdrawn=out.amount)
        ctx.emit("withdrawal", member=out.member, currency=out.currency, amount=out.amount)
    else:
        _add_totals(ctx, out.currency, in_transit=-out.amount)
        have = balance(ctx, out.member, out.currency)
        _set_balance(ctx, out.member, out.currency, have + out.amount)
        ctx.emit("withdrawal_declined", member=out.member, amount=out.amount)
    ctx.put(k_withdrawal(b.withdrawal_id), replace(out, status="done" if b.accept else "declined"))


# -- statements ---------------------------------------------------------------------------


def late_interest(principal: int, rate_bps: int, days: int) -> int:
    """Simple interest, actual/365, half-even: 1,000,000 at 800 bps for 30 days -> 6,575."""
    return mul_div(principal * rate_bps, days, 365 * BPS, "half-even")


def accrue_interest(s: Statement, terms: LicenceTerms, now_ms: int) -> Statement:
    """Bring late interest up to `now_ms` (whole days past due on the unpaid principal)."""
    start = max(s.interest_from_ms, s.due_ms)
    if now_ms <= start or not terms.late_interest_bps:
        return s
    days = (now_ms - start) // MS_PER_DAY
    if days == 0:
        return s
    owed = late_interest(s.principal_outstanding, terms.late_interest_bps, days)
    return replace(
        s, interest_accrued=s.interest_accrued + owed, interest_from_ms=start + days * MS_PER_DAY
    )


def _recipients(ctx: Ctx, terms: LicenceTerms, amount: int) -> list[tuple[bytes, int]]:
    """Who receives `amount` paid under `terms`: upstream pass-through, then pool shares."""
    out: list[tuple[bytes, int]] = []
    if terms.upstream_licence:
        up = ctx.must(k_licence(terms.upstream_licence), Licence, "unknown_licence", "upstream")
        owed = mul_div(amount, terms.passthrough_bps, BPS, "half-even")
        out.extend(
            _recipients(ctx, replace(up.current, upstream_licence="", passthrough_bps=0), owed)
        )
        amount -= owed
    if terms.pool:
        shares = allocate(amount, [p.weight for p in terms.pool])
        out.extend((p.licensor, share) for p, share in zip(terms.pool, shares, strict=True))
    else:
        out.append((terms.licensor, amount))
    return out


def pay_statement(
    ctx: Ctx, key: bytes, s: Statement, terms: LicenceTerms, limit: int, as_of_ms: int = -1
) -> Statement:
    """Pay up to `limit` from the licensee's account: interest first, then principal.

    Interest is brought up to `as_of_ms` (default: the block time). The automatic payment
    on the due date passes the due date itself: a licensee whose balance covers the
    statement is not charged for the time until the next block happened to come.
    """
    s = accrue_interest(s, terms, ctx.block.time_ms if as_of_ms < 0 else as_of_ms)
    available = min(limit, balance(ctx, s.licensee, s.currency))
    to_interest = min(available, s.interest_outstanding)
    to_principal = min(available - to_interest, s.principal_outstanding)
    paying = to_interest + to_principal
    why = f"{s.licence_id}/{s.period_id}"
    paid_to = [(p, a) for p, a in _recipients(ctx, terms, paying) if a] if paying else []
    for payee, amount in paid_to:
        transfer(ctx, s.licensee, payee, s.currency, amount, why)
    s = replace(s, interest_paid=s.interest_paid + to_interest, paid=s.paid + to_principal)
    settled = not s.frozen and s.paid == s.payable_total and s.interest_outstanding == 0
    s = replace(s, status="paid" if settled else s.status)
    ctx.put(key, s)
    ctx.emit(
        "statement_payment",
        licence_id=s.licence_id,
        period_id=s.period_id,
        statement_hash=closed_statement_hash(ctx, s),
        currency=s.currency,
        payer=s.licensee,
        principal=to_principal,
        interest=to_interest,
        transfers=[[payee, amount] for payee, amount in paid_to],
        paid_total=s.paid,
        interest_paid_total=s.interest_paid,
        interest_accrued=s.interest_accrued,
        payable_total=s.payable_total,
        outstanding=s.principal_outstanding,
        interest_outstanding=s.interest_outstanding,
        status=s.status,
    )
    if s.principal_outstanding or s.interest_outstanding:
        ctx.put_value(k_overdue(s.licensee, s.due_ms, key), key)
    else:
        ctx.delete(k_overdue(s.licensee, s.due_ms, key))
    return s


def closed_statement_hash(ctx: Ctx, s: Statement) -> bytes:
    """SHA-256 of the statement's record as its period close fixed it."""
    closed = ctx.state.get(k_statement_closed(s.licence_id, s.period_id))
    if closed is None:
        raise LedgerError("invariant", f"statement {s.licence_id}/{s.period_id} never closed")
    return crypto.sha256(closed)


def _terms_for(ctx: Ctx, s: Statement) -> LicenceTerms:
    lic = ctx.must(k_licence(s.licence_id), Licence, "unknown_licence", s.licence_id)
    return lic.current


def settle_overdue(ctx: Ctx, licensee: bytes) -> None:
    """After a deposit, pay the licensee's overdue statements oldest first."""
    for _, key in list(ctx.scan(b"overdue/" + licensee)):
        stmt_key = _decode_key(key)
        s = ctx.must(stmt_key, Statement, "unknown_statement", "overdue index")
        pay_statement(ctx, stmt_key, s, _terms_for(ctx, s), 2**62)


def _decode_key(raw: bytes) -> bytes:
    from node.ledger import codec

    value = codec.decode(raw)
    assert isinstance(value, bytes)
    return value


def pay(ctx: Ctx, body: dict[str, Any]) -> None:
    b = PayBody.from_value(body)
    key = k_statement(b.licence_id, b.period_id)
    s = ctx.must(key, Statement, "unknown_statement", f"{b.licence_id}/{b.period_id}")
    if s.licensee != ctx.signer:
        raise Reject("not_licensee", "only the licensee pays its statements")
    if (
        s.principal_outstanding == 0
        and accrue_interest(s, _terms_for(ctx, s), ctx.block.time_ms).interest_outstanding == 0
    ):
        raise Reject("nothing_due", "statement has nothing payable")
    if balance(ctx, s.licensee, s.currency) == 0:
        raise Reject("insufficient_funds", "no balance in the statement currency")
    pay_statement(ctx, key, s, _terms_for(ctx, s), b.amount)


def dispute(ctx: Ctx, body: dict[str, Any]) -> None:
    b = DisputeBody.from_value(body)
    key = k_statement(b.licence_id, b.period_id)
    s = ctx.must(key, Statement, "unknown_statement", f"{b.licence_id}/{b.period_id}")
    member = ctx.get(k_member(ctx.signer), Member)
    auditor = member is not None and "auditor" in member.roles
    if ctx.signer not in (s.licensor, s.licensee) and not auditor:
        raise Reject("not_a_party", "only a party or an auditor may dispute")
    if not 0 <= b.line < len(s.lines) or s.lines[b.line].amount <= 0:
        raise Reject("bad_line", "no such line with an amount due")
    if ctx.state.get(k_dispute(key, b.line)) is not None:
        raise Reject("duplicate", "this line has been disputed before")
    line = s.lines[b.line]
    if line.amount > s.principal_outstanding:
        raise Reject("already_paid", "the line has been paid")
    record = Dispute(
        key, b.line, line.amount, ctx.signer, b.evidence_hash, ctx.block.time_ms, {}, "open"
    )
    ctx.put(k_dispute(key, b.line), record)
    s = accrue_interest(s, _terms_for(ctx, s), ctx.block.time_ms)  # up to the freeze
    frozen = tuple(sorted((*s.frozen, b.line)))
    ctx.put(key, replace(s, frozen=frozen, status="disputed"))
    ctx.emit(
        "dispute_opened",
        licence_id=b.licence_id,
        period_id=b.period_id,
        line=b.line,
        evidence_hash=b.evidence_hash,
    )


def resolve(ctx: Ctx, body: dict[str, Any]) -> None:
    """Both parties sign the same amount, or the licence's arbiter signs alone."""
    b = ResolveBody.from_value(body)
    key = k_statement(b.licence_id, b.period_id)
    s = ctx.must(key, Statement, "unknown_statement", f"{b.licence_id}/{b.period_id}")
    arbiter = _terms_for(ctx, s).arbiter
    is_arbiter = bool(arbiter) and ctx.signer == arbiter
    if ctx.signer not in (s.licensor, s.licensee) and not is_arbiter:
        raise Reject("not_authorised", "only the parties or the licence's arbiter resolve")
    d = ctx.get(k_dispute(key, b.line), Dispute)
    if d is None or d.status != "open":
        raise Reject("bad_line", "no open dispute on this line")
    if not 0 <= b.amount <= d.original:
        raise Reject("bad_amount", "a resolution sets the line to between 0 and its amount")
    if is_arbiter:
        resolved_by: tuple[bytes, ...] = (ctx.signer,)
    else:
        votes = {**d.votes, ctx.signer.hex(): b.amount}
        agreed = {votes.get(s.licensor.hex()), votes.get(s.licensee.hex())}
        if len(agreed) != 1 or None in agreed:
            ctx.put(k_dispute(key, b.line), replace(d, votes=votes))
            ctx.emit("dispute_vote", licence_id=b.licence_id, period_id=b.period_id, line=b.line)
            return
        resolved_by = tuple(sorted((s.licensor, s.licensee)))
    ctx.put(k_dispute(key, b.line), replace(d, status="resolved"))
    adjustment = Adjustment(
        key,
        b.line,
        d.original,
        b.amount,
        b.amount - d.original,
        resolved_by,
        ctx.block.time_ms,
        d.evidence_hash,
    )
    ctx.put(k_adjustment(key, b.line), adjustment)
    s = accrue_interest(s, _terms_for(ctx, s), ctx.block.time_ms)  # a frozen line owes none
    frozen = tuple(i for i in s.frozen if i != b.line)
    s = replace(
        s,
        frozen=frozen,
        adjustment=s.adjustment + adjustment.delta,
        status="disputed" if frozen else "open",
    )
    ctx.put(key, s)
    ctx.emit(
        "dispute_resolved",
        licence_id=b.licence_id,
        period_id=b.period_id,
        line=b.line,
        amount=b.amount,
        by_arbiter=is_arbiter,
    )
    if s.due_ms <= ctx.block.time_ms:
        pay_statement(ctx, key, s, _terms_for(ctx, s), 2**62)


HANDLERS = {
    "account.deposit": deposit,
    "account.ack_deposit": ack_deposit,
    "account.withdraw": withdraw,
    "account.ack_withdrawal": ack_withdrawal,
    "statement.pay": pay,
    "statement.dispute": dispute,
    "statement.resolve": resolve,
}
