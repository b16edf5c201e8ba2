"""`alps deposit`, `alps withdraw`, `alps statement`: money in and out of settlement
accounts, and paying, disputing, resolving, showing and exporting statements.

Rule kept here: amounts are integer minor units (what the ledger keeps); tables show
them in major units too. A deposit or withdrawal id the user does not choose is made
unique here and printed, since the bank acknowledges it by that id.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import pathlib
import re
import sys
from typing import Any

import click

from cli.common import (
    Directory,
    connect,
    day,
    emit,
    key_option,
    member_key,
    money,
    node_options,
    output_option,
    pairs,
    report,
    submit_and_report,
    submitter,
    wait_option,
)
from node.ledger import crypto
from node.ledger.model import ID_RE, MAX_AMOUNT

CURRENCY = re.compile(r"^[A-Z]{3}$")
STATEMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}@[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def _amount(value: int | None, what: str = "--amount") -> int:
    if value is None:
        raise click.UsageError(f"{what} is required (integer minor units, e.g. cents)")
    if not 0 < value <= MAX_AMOUNT:
        raise click.BadParameter(f"must be between 1 and {MAX_AMOUNT} minor units", param_hint=what)
    return value


def _currency(value: str | None) -> str:
    if value is None or not CURRENCY.match(value):
        raise click.BadParameter("an ISO 4217 code such as USD", param_hint="--currency")
    return value


def _transfer_id(value: str | None, prefix: str) -> str:
    if value is None:
        stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%d")
        return f"{prefix}-{stamp}-{os.urandom(4).hex()}"
    if not ID_RE.match(value):
        raise click.BadParameter(f"{value[:80]!r} is not a valid id", param_hint="--id")
    return value


def _transfer(
    ctx: click.Context,
    kind: str,
    amount: int | None,
    currency: str | None,
    transfer_id: str | None,
    reference: str,
    counterparty: str | None,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path | None,
    wait_s: float,
) -> None:
    if key_file is None:
        raise click.UsageError("--key (or $ALPS_KEY) is required", ctx)
    if len(reference) > 128:
        raise click.BadParameter("at most 128 characters", param_hint="--reference")
    body_id = _transfer_id(transfer_id, "dep" if kind == "deposit" else "wd")
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        body: dict[str, Any] = {
            f"{kind}_id": body_id,
            "currency": _currency(currency),
            "amount": _amount(amount),
            "reference": reference,
            "counterparty": b""
            if not counterparty
            else member_key(sub.client, counterparty, "--counterparty"),
        }
        tx_type = "account.deposit" if kind == "deposit" else "account.withdraw"
        outcome = report(sub.submit(tx_type, body, wait_s), wait_s)
    if outcome.ok:
        click.echo(f"{kind} id: {body_id} (awaiting acknowledgement: alps {kind} ack {body_id})")


def _transfer_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--amount", type=int, help="integer minor units (e.g. cents)"),
            click.option("--currency", help="ISO 4217 code, e.g. USD"),
            click.option("--id", "transfer_id", help="your id for it (default: generated)"),
            click.option("--reference", default="", help="bank reference (<= 128 chars)"),
            click.option(
                "--counterparty", help="member who acknowledges it (default: any bank member)"
            ),
        ]
    ):
        f = option(f)
    return f


@click.group(invoke_without_command=True, subcommand_metavar="[ack ID]")
@_transfer_options
@node_options
@key_option(required=False)
@wait_option
@click.pass_context
def deposit(ctx: click.Context, /, **kw: Any) -> None:
    """Announce an external transfer into your settlement account; a bank (or the named
    counterparty) acknowledges it with `alps deposit ack ID` and only then is it credited."""
    if ctx.invoked_subcommand is None:
        _transfer(ctx, "deposit", **kw)


@deposit.command("ack")
@click.argument("deposit_id")
@node_options
@key_option()
@wait_option
def deposit_ack(
    deposit_id: str, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Acknowledge (as a bank or the named counterparty) that a deposit arrived."""
    body = {"deposit_id": deposit_id}
    submit_and_report(node_url, timeout, key_file, wait_s, "account.ack_deposit", body)


@click.group(invoke_without_command=True, subcommand_metavar="[ack ID]")
@_transfer_options
@node_options
@key_option(required=False)
@wait_option
@click.pass_context
def withdraw(ctx: click.Context, /, **kw: Any) -> None:
    """Withdraw from your settlement account: the amount leaves your balance at once and
    is in transit until a bank confirms (`alps withdraw ack ID`) or declines it."""
    if ctx.invoked_subcommand is None:
        _transfer(ctx, "withdrawal", **kw)


@withdraw.command("ack")
@click.argument("withdrawal_id")
@click.option("--decline", is_flag=True, help="the transfer out failed: return the funds")
@node_options
@key_option()
@wait_option
def withdraw_ack(
    withdrawal_id: str,
    decline: bool,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Confirm (as a bank or the named counterparty) that a withdrawal was paid out."""
    body = {"withdrawal_id": withdrawal_id, "accept": not decline}
    submit_and_report(node_url, timeout, key_file, wait_s, "account.ack_withdrawal", body)


# -- statements -------------------------------------------------------------------------------


@click.group()
def statement() -> None:
    """One statement (ID = LICENCE@PERIOD, e.g. CODEC@2026-Q1): pay, dispute, resolve,
    show, export."""


def split_statement_id(text: str) -> tuple[str, str]:
    if not STATEMENT_ID.match(text):
        raise click.BadParameter(
            f"{text[:80]!r}: a statement id is LICENCE@PERIOD, e.g. CODEC@2026-Q1"
        )
    licence_id, _, period_id = text.partition("@")
    return licence_id, period_id


def fetch_statement(client: Any, statement_id: str) -> dict[str, Any]:
    split_statement_id(statement_id)
    doc: dict[str, Any] | None = client.get_optional(f"/v1/statements/{statement_id}")
    if doc is None:
        raise click.ClickException(f"unknown statement {statement_id}")
    return doc


@statement.command("pay")
@click.argument("statement_id", metavar="ID")
@click.option("--amount", type=int, help="at most this much (default: everything due)")
@node_options
@key_option()
@wait_option
def statement_pay(
    statement_id: str,
    amount: int | None,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Pay a statement from your account (interest first, then principal)."""
    licence_id, period_id = split_statement_id(statement_id)
    limit = MAX_AMOUNT if amount is None else _amount(amount)
    body = {"licence_id": licence_id, "period_id": period_id, "amount": limit}
    submit_and_report(node_url, timeout, key_file, wait_s, "statement.pay", body)


@statement.command("dispute")
@click.argument("statement_id", metavar="ID")
@click.option("--line", type=click.IntRange(0, 255), required=True, help="line number (0-based)")
@click.option(
    "--evidence",
    type=click.Path(dir_okay=False, exists=True, path_type=pathlib.Path),
    help="evidence file (its SHA-256 goes on the ledger)",
)
@click.option("--evidence-hash", help="or the evidence's SHA-256 (64 hex)")
@node_options
@key_option()
@wait_option
def statement_dispute(
    statement_id: str,
    line: int,
    evidence: pathlib.Path | None,
    evidence_hash: str | None,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Dispute one line (a party or an auditor): it is frozen until resolved."""
    licence_id, period_id = split_statement_id(statement_id)
    if (evidence is None) == (evidence_hash is None):
        raise click.UsageError("give --evidence FILE or --evidence-hash HEX (one of them)")
    if evidence is not None:
        digest = crypto.sha256(evidence.read_bytes())
    else:
        assert evidence_hash is not None
        if not re.fullmatch(r"[0-9a-fA-F]{64}", evidence_hash):
            raise click.BadParameter("64 hex digits", param_hint="--evidence-hash")
        digest = bytes.fromhex(evidence_hash)
    body = {"licence_id": licence_id, "period_id": period_id, "line": line, "evidence_hash": digest}
    submit_and_report(node_url, timeout, key_file, wait_s, "statement.dispute", body)


@statement.command("resolve")
@click.argument("statement_id", metavar="ID")
@click.option("--line", type=click.IntRange(0, 255), required=True)
@click.option("--amount", type=int, required=True, help="the agreed amount for the line")
@node_options
@key_option()
@wait_option
def statement_resolve(
    statement_id: str,
    line: int,
    amount: int,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Sign a dispute resolution (both parties the same amount, or the arbiter alone)."""
    licence_id, period_id = split_statement_id(statement_id)
    if not 0 <= amount <= MAX_AMOUNT:
        raise click.BadParameter("between 0 and the line's amount", param_hint="--amount")
    body = {"licence_id": licence_id, "period_id": period_id, "line": line, "amount": amount}
    submit_and_report(node_url, timeout, key_file, wait_s, "statement.resolve", body)


@statement.command("show")
@click.argument("statement_id", metavar="ID")
@node_options
@output_option
def statement_show(statement_id: str, node_url: str, timeout: float, output: str) -> None:
    """A statement with its line items, payments and what is outstanding."""
    with connect(node_url, timeout) as client:
        doc = fetch_statement(client, statement_id)
        directory = Directory(client)
        emit(doc, output, lambda d: render_statement(d, directory))


def render_statement(s: dict[str, Any], directory: Directory) -> None:
    ccy = s["currency"]
    pairs(
        [
            ("statement", s["statement_id"]),
            ("licensor", directory.name_of(s["licensor"])),
            ("licensee", directory.name_of(s["licensee"])),
            ("status", s["status"]),
            ("due", day(s["due_ms"])),
            ("usage records", s["usage_count"]),
            ("rule", s["rule"]),
        ]
    )
    click.echo("")
    width = max([len(li["label"]) for li in s["lines"]] + [len("total")])
    for i, li in enumerate(s["lines"]):
        flag = "  (disputed)" if li["disputed"] else ""
        click.echo(f"  {i:>2}  {li['label'].ljust(width)}  {money(li['amount'], ccy):>20}{flag}")
    click.echo(f"      {'total'.ljust(width)}  {money(s['total'], ccy):>20}")
    click.echo("")
    rows = [("paid", money(s["paid"], ccy))]
    if s["adjustment"]:
        rows.append(("adjustment", money(s["adjustment"], ccy)))
    if s["interest_accrued"]:
        rows.append(("late interest", money(s["interest_accrued"], ccy)))
    rows += [
        ("outstanding", money(s["principal_outstanding"], ccy)),
        ("interest outstanding", money(s["interest_outstanding"], ccy)),
    ]
    if s["disputed_amount"]:
        rows.append(("disputed", money(s["disputed_amount"], ccy)))
    pairs(rows)


CSV_HEADER = (
    "statement_id",
    "licence_id",
    "period_id",
    "currency",
    "line",
    "label",
    "amount",
    "disputed",
)


@statement.command("export")
@click.argument("statement_id", metavar="ID")
@click.option(
    "--csv",
    "csv_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="write the line items here ('-' for stdout)",
)
@node_options
def statement_export(
    statement_id: str, csv_file: pathlib.Path, node_url: str, timeout: float
) -> None:
    """Export a statement as CSV (amounts in minor units): one row per line item, then
    `total` (as closed), and when disputes changed it `adjustment` and `payable`."""
    with connect(node_url, timeout) as client:
        s = fetch_statement(client, statement_id)
    head = (s["statement_id"], s["licence_id"], s["period_id"], s["currency"])
    rows: list[tuple[Any, ...]] = [
        (*head, i, li["label"], li["amount"], "yes" if li["disputed"] else "no")
        for i, li in enumerate(s["lines"])
    ]
    rows.append((*head, "total", "total", s["total"], ""))
    if s["adjustment"]:
        rows.append((*head, "adjustment", "dispute resolutions", s["adjustment"], ""))
        rows.append((*head, "payable", "payable total", s["payable_total"], ""))
    if str(csv_file) == "-":
        _write_csv(sys.stdout, rows)
        return
    with csv_file.open("w", newline="", encoding="utf-8") as f:
        _write_csv(f, rows)
    click.echo(f"wrote {len(s['lines'])} line items of {statement_id} to {csv_file}", err=True)


def _write_csv(stream: Any, rows: list[tuple[Any, ...]]) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
