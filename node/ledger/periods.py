"""Period close: turning a licence's accrued usage into a fixed statement.

Rules kept here:
- When block time reaches a period's end, the statement for that licence and period is
  fixed in the same block: the rule's line items on exactly the usage accrued in the
  period (whose usage records' Merkle root the statement carries), then the licence-level
  terms the ledger applies natively, in this order: annual cap on royalties, minimum
  annual guarantee true-up at contract-year end, advance recoupment, and the one-time
  upfront fee and advance billed with the first statement. "Annual" means the contract
  year: twelve months from the start of the licence's first reporting period (calendar.
  contract_year), so a licence signed on 1 April trues up its minimum each 31 March; for
  the short period kinds (calendar.SHORT_PERIOD_MS) it is twelve periods.
- The terms applied are the version in force at the period's start; the rule and VM
  versions used are recorded, so anyone can recompute the statement.
- On the due date, the statement is paid from the licensee's account as far as the
  balance allows; the rest stays outstanding (see money.py).
- The record a close fixes is also kept unchanged under `k_statement_closed`; every event
  about the statement (close, payments) carries its SHA-256, `statement_hash`, so a
  verifier holding the closed record ties each payment back to it. The events of this
  time-driven work go into the block's end-of-block receipts (app.py).
- Time-driven work never stops the chain: each close and each settlement runs in its
  own overlay, and one that fails (a rule's lines summing past the amount limit, a
  year-to-date quantity past the integer range, ...) is discarded and recorded instead
  as a `rule_failed` statement billing nothing, with the reason in a `rule_failed`
  event (a settlement that fails emits `settlement_failed` and stays payable by a
  deposit). Every node fails the same way, so this is as deterministic as success.
- The work is bounded per block (MAX_CLOSES_PER_BLOCK, MAX_SETTLEMENTS_PER_BLOCK); what
  is left over is done by the next blocks in due order. A statement closed late is still
  the statement of its period (usage after the period end accrues to the next period),
  and a settlement delayed by a backlog charges no interest for the delay (it is made
  as of the due date).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from node.ledger import codec, crypto, governance, merkle
from node.ledger.calendar import (
    MS_PER_DAY,
    ContractYear,
    Period,
    contract_year,
    next_period,
    period_of,
)
from node.ledger.context import BlockInfo, Ctx, Reject, ScanOverlay, ScanReader
from node.ledger.errors import LedgerError
from node.ledger.genesis import K_PARAMS, Params
from node.ledger.licensing import rule_source
from node.ledger.model import (
    Accrual,
    Licence,
    LicenceTerms,
    LineItem,
    Statement,
    k_accrual,
    k_close_due,
    k_licence,
    k_settle_due,
    k_statement,
    k_statement_closed,
    k_ytd,
)
from node.ledger.money import pay_statement
from node.ledger.rules import run_rule

K_CLOSE_DUE, K_SETTLE_DUE = b"due-close/", b"due-pay/"
# Bounds on the time-driven work of one block. A close runs a rule (bounded by the
# rule gas limit), a settlement a few transfers; a backlog drains over later blocks.
MAX_CLOSES_PER_BLOCK = 32
MAX_SETTLEMENTS_PER_BLOCK = 128


@dataclass(frozen=True, slots=True)
class YearToDate:
    earned: int
    billed: int
    quantities: dict[str, int]


def end_of_block(ctx: Ctx) -> None:
    """Time-driven work, bounded per block: at most MAX_CLOSES_PER_BLOCK period closes and
    MAX_SETTLEMENTS_PER_BLOCK due-date settlements, oldest (then lowest key) first; the
    rest stays in the due indexes and is taken by the following blocks in the same order."""
    governance.end_of_block(ctx)
    now = ctx.block.time_ms
    for key, value in _due(ctx, K_CLOSE_DUE, now, MAX_CLOSES_PER_BLOCK):
        ctx.delete(key)
        licence_id = codec.decode(value)
        end_ms = int.from_bytes(key[len(K_CLOSE_DUE) :][:8], "big")
        why = _isolated(ctx, partial(_close, licence_id=licence_id, end_ms=end_ms))
        if why:
            failed = _isolated(
                ctx, partial(_close, licence_id=licence_id, end_ms=end_ms, failed=why)
            )
            if failed:  # not even an empty statement (e.g. the licence is gone): say so
                ctx.emit("rule_failed", licence_id=licence_id, period_id="", detail=failed)
    for key, value in _due(ctx, K_SETTLE_DUE, now, MAX_SETTLEMENTS_PER_BLOCK):
        ctx.delete(key)
        stmt_key = codec.decode(value)
        why = _isolated(ctx, partial(_settle, stmt_key=stmt_key))
        if why:
            ctx.emit("settlement_failed", statement=stmt_key, detail=why)


def _close(ctx: Ctx, *, licence_id: str, end_ms: int, failed: str = "") -> None:
    close_period(ctx, licence_id, end_ms, failed)


def _settle(ctx: Ctx, *, stmt_key: bytes) -> None:
    s = ctx.must(stmt_key, Statement, "unknown_statement", "settlement index")
    lic = ctx.must(k_licence(s.licence_id), Licence, "unknown_licence", s.licence_id)
    pay_statement(ctx, stmt_key, s, lic.current, 2**62, as_of_ms=s.due_ms)


def _isolated(ctx: Ctx, work: Callable[[Ctx], None]) -> str:
    """Run `work` on a child overlay of `ctx`: kept with its events if it succeeds ("" is
    returned), discarded whole if it raises a LedgerError or ValueError (the reason is
    returned, at most 256 characters)."""
    sub = Ctx(ctx.state.child(), ctx.block, ctx.signer, records=ctx.records)
    try:
        work(sub)
    except LedgerError as exc:
        return f"{exc.code}: {exc.detail}"[:256]
    except ValueError as exc:  # a record's bounds, checked in its constructor
        return f"invalid: {exc}"[:256]
    sub.state.merge_into_parent()
    ctx.events.extend(sub.events)
    return ""


def _due(ctx: Ctx, prefix: bytes, now: int, most: int) -> list[tuple[bytes, bytes]]:
    """Up to `most` index entries due at `now`, in key (= due time, then id) order."""
    limit = prefix + now.to_bytes(8, "big") + b"\xff"
    out: list[tuple[bytes, bytes]] = []
    for key, value in ctx.scan(prefix):
        if key >= limit or len(out) == most:
            break
        out.append((key, value))
    return out


def period_context(period: Period, year: ContractYear) -> dict[str, object]:
    return {
        "id": period.period_id,
        "start_day": period.start_ms // MS_PER_DAY,
        "end_day": period.end_ms // MS_PER_DAY,
        "year": period.year,
        "contract_year": year.number,
        "is_year_end": year.is_year_end,
    }


def licence_year(lic: Licence, period: Period) -> ContractYear:
    anchor = period_of(period.kind, lic.first_terms.start_ms).start_ms
    return contract_year(anchor, period)


def close_period(ctx: Ctx, licence_id: str, end_ms: int, failed: str = "") -> Statement:
    """Close the licence's period ending at `end_ms`. With `failed` (the reason an earlier
    attempt failed) the statement bills nothing, has status `rule_failed` and leaves the
    year-to-date figures as they were."""
    lic = ctx.must(k_licence(licence_id), Licence, "unknown_licence", licence_id)
    period = period_of(lic.current.period, end_ms - 1)
    terms = lic.terms_at(period.start_ms)
    accrual = ctx.get(k_accrual(licence_id, period.period_id), Accrual) or Accrual({}, 0)
    leaves = [v for _, v in ctx.scan(k_accrual(licence_id, period.period_id) + b"/")]
    year = licence_year(lic, period)
    ytd_key = k_ytd(licence_id, year.number)
    ytd = YearToDate(**(ctx.get_value(ytd_key) or {"earned": 0, "billed": 0, "quantities": {}}))
    params = ctx.get(K_PARAMS, Params)
    assert params is not None, "genesis parameters missing"
    aggregates: dict[str, object] = {"ytd_earned": ytd.earned}
    aggregates.update({f"ytd_{m}": q for m, q in sorted(ytd.quantities.items())})
    status = "open"
    try:
        if failed:
            raise Reject("rule_failed", failed)
        rule_lines, _gas = run_rule(
            rule_source(ctx, terms.rule),
            terms.rule_params,
            accrual.quantities,
            period_context(period, year),
            aggregates,
            params.rule_gas_limit,
        )
    except Reject as exc:
        ctx.emit(
            "rule_failed", licence_id=licence_id, period_id=period.period_id, detail=exc.detail
        )
        rule_lines, status = [], "rule_failed"
    if failed:
        lines: list[tuple[str, int]] = []
        earned = 0
    else:
        lines, billed, lic = _apply_terms(lic, terms, year, ytd, rule_lines)
        quantities = dict(ytd.quantities)
        for classes in accrual.quantities.values():
            for metrics in classes.values():
                for metric, qty in metrics.items():
                    quantities[metric] = quantities.get(metric, 0) + qty
        earned = sum(a for _, a in rule_lines)
        ytd_after = {"earned": ytd.earned + earned, "billed": ytd.billed + billed}
        ctx.put_value(ytd_key, {**ytd_after, "quantities": quantities})
    due_ms = period.end_ms + terms.payment_due_days * MS_PER_DAY
    total = sum(a for _, a in lines)
    statement = Statement(
        licence_id=licence_id,
        period_id=period.period_id,
        licensor=terms.licensor,
        licensee=terms.licensee,
        currency=terms.currency,
        lines=tuple(LineItem(label, amount) for label, amount in lines),
        total=total,
        earned=earned,
        due_ms=due_ms,
        usage_root=merkle.root(leaves),
        usage_count=accrual.records,
        rule=terms.rule,
        vm_version=params.vm_version,
        paid=0,
        interest_accrued=0,
        interest_paid=0,
        interest_from_ms=due_ms,
        frozen=(),
        adjustment=0,
        status="paid" if status == "open" and not total else status,
    )
    key = k_statement(licence_id, period.period_id)
    ctx.put(key, statement)
    closed = statement.encode()
    ctx.state.put(k_statement_closed(licence_id, period.period_id), closed)
    if statement.total:
        ctx.put_value(k_settle_due(due_ms, licence_id, period.period_id), key)
    ctx.emit(
        "statement_closed",
        licence_id=licence_id,
        period_id=period.period_id,
        statement_hash=crypto.sha256(closed),
        status=statement.status,
        licensor=statement.licensor,
        licensee=statement.licensee,
        currency=statement.currency,
        total=statement.total,
        due_ms=due_ms,
        usage_root=statement.usage_root,
        usage_count=statement.usage_count,
    )
    nxt = next_period(period)
    if nxt.start_ms < lic.current.end_ms and (
        not lic.terminated_ms or nxt.start_ms < lic.terminated_ms
    ):
        ctx.put_value(k_close_due(nxt.end_ms, licence_id), licence_id)
    ctx.put(k_licence(licence_id), replace(lic, open_period_start_ms=nxt.start_ms))
    return statement


def _apply_terms(
    lic: Licence,
    terms: LicenceTerms,
    year: ContractYear,
    ytd: YearToDate,
    rule_lines: list[tuple[str, int]],
) -> tuple[list[tuple[str, int]], int, Licence]:
    """Cap, MG true-up, recoupment and one-time fees around the rule's lines."""
    lines = list(rule_lines)
    billed = sum(a for _, a in rule_lines)
    if terms.annual_cap:
        room = max(0, terms.annual_cap - ytd.billed)
        if billed > room:
            lines.append(("annual cap", room - billed))
            billed = room
    if terms.minimum_annual and year.is_year_end:
        shortfall = terms.minimum_annual - (ytd.billed + billed)
        if shortfall > 0:
            lines.append(("minimum annual guarantee true-up", shortfall))
            billed += shortfall
    if lic.advance_remaining and billed:
        recoup = min(lic.advance_remaining, billed)
        lines.append(("advance recouped", -recoup))
        lic = replace(lic, advance_remaining=lic.advance_remaining - recoup)
    if not lic.upfront_billed:
        if terms.upfront_fee:
            lines.append(("upfront fee", terms.upfront_fee))
        if terms.advance:
            lines.append(("advance", terms.advance))
        lic = replace(lic, upfront_billed=True)
    return lines, billed, lic


def estimate(base: ScanReader, chain_id: str, licence_id: str, time_ms: int) -> Statement:
    """A live estimate: the statement the open period would get if it closed now.

    It runs exactly the period-close code on a throwaway overlay, so the estimate and the
    real statement cannot drift apart; nothing is written.
    """
    ctx = Ctx(ScanOverlay(base), BlockInfo(chain_id, 0, time_ms), b"")
    lic = ctx.must(k_licence(licence_id), Licence, "unknown_licence", licence_id)
    if lic.status != "active":
        raise Reject("not_active", f"licence {licence_id} is {lic.status}")
    period = period_of(lic.current.period, max(time_ms, lic.open_period_start_ms))
    return close_period(ctx, licence_id, period.end_ms)
