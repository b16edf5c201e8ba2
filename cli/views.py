"""Read-only `alps` commands: accruals, statements, balances, blocks, transactions,
receipts, accounts, and the node's status and peers.

Rule kept here: every command reads only, and prints either the node's answer as JSON
(`--output json`, the API's fields) or a table; nothing here signs or submits.
"""

from __future__ import annotations

import ipaddress
import pathlib
from typing import Any

import click

from cli.client import NodeClient, NodeError
from cli.common import (
    HEX64,
    Directory,
    connect,
    day,
    emit,
    key_option,
    money,
    node_options,
    output_option,
    own_key,
    pairs,
    parse_date,
    short,
    table,
    when,
)
from cli.money import split_statement_id
from node.ledger.model import ID_RE


def _statement_rows(items: list[dict[str, Any]], directory: Directory) -> list[tuple[Any, ...]]:
    return [
        (
            s["statement_id"],
            directory.name_of(s["licensor"]),
            directory.name_of(s["licensee"]),
            money(s["total"], s["currency"]),
            money(s["paid"], s["currency"]),
            money(s["principal_outstanding"] + s["interest_outstanding"], s["currency"]),
            day(s["due_ms"]),
            s["status"],
        )
        for s in items
    ]


STATEMENT_HEADERS = (
    "statement",
    "licensor",
    "licensee",
    "total",
    "paid",
    "outstanding",
    "due",
    "status",
)


@click.command("statements")
@click.option("--licence", "licence_id", help="only this licence's statements")
@click.option("--period", "period_id", help="only this period (e.g. 2026-Q1)")
@node_options
@output_option
def statements(
    licence_id: str | None, period_id: str | None, node_url: str, timeout: float, output: str
) -> None:
    """Closed statements, optionally of one licence and/or period."""
    for value, what in ((licence_id, "--licence"), (period_id, "--period")):
        if value is not None and not ID_RE.match(value):
            raise click.BadParameter(f"{value[:80]!r} is not a valid id", param_hint=what)
    with connect(node_url, timeout) as client:
        items = client.pages(
            "/v1/statements", "statements", {"licence": licence_id, "period": period_id}
        )
        directory = Directory(client)
        emit(
            {"statements": items},
            output,
            lambda d: table(
                STATEMENT_HEADERS, _statement_rows(d["statements"], directory), right=(3, 4, 5)
            ),
        )


@click.command("accruals")
@click.argument("licence_id", metavar="LICENCE")
@click.option("--at", "at", help="estimate as of this date (default: the latest block's time)")
@node_options
@output_option
def accruals(licence_id: str, at: str | None, node_url: str, timeout: float, output: str) -> None:
    """Usage accrued per period and a live estimate of the open period's statement."""
    if not ID_RE.match(licence_id):
        raise click.BadParameter(f"{licence_id[:80]!r} is not a valid licence id")
    params: dict[str, Any] = {}
    if at is not None:
        try:
            params["at_ms"] = parse_date(at, "--at")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from exc
    with connect(node_url, timeout) as client:
        doc = client.get_optional(f"/v1/licences/{licence_id}/accruals", params)
        if doc is None:
            raise click.ClickException(f"unknown licence {licence_id!r}")
        emit(doc, output, _render_accruals)


def _render_accruals(doc: dict[str, Any]) -> None:
    rows = []
    for p in doc["periods"]:
        for territory, classes in sorted(p["quantities"].items()):
            for product_class, metrics in sorted(classes.items()):
                for metric, qty in sorted(metrics.items()):
                    rows.append(
                        (p["period_id"], p["records"], territory, product_class, metric, f"{qty:,}")
                    )
    click.echo(f"licence {doc['licence_id']}: accrued usage")
    table(["period", "records", "territory", "class", "metric", "quantity"], rows, right=(1, 5))
    click.echo("")
    est = doc.get("estimate")
    if est is None:
        click.echo(f"no estimate: {doc.get('estimate_error') or 'none'}")
        return
    click.echo(f"estimate for {est['period_id']} if it closed at {when(doc['estimate_at_ms'])}:")
    for li in est["lines"]:
        click.echo(f"  {li['label']}: {money(li['amount'], est['currency'])}")
    click.echo(f"  total: {money(est['total'], est['currency'])}")


@click.command("balance")
@click.argument("member", required=False)
@key_option(required=False)
@node_options
@output_option
def balance(
    member: str | None, key_file: pathlib.Path | None, node_url: str, timeout: float, output: str
) -> None:
    """A member's accounts and outstanding statements (default MEMBER: your --key)."""
    with connect(node_url, timeout) as client:
        directory = Directory(client)
        key = _member_or_own(directory, member, key_file)
        account = client.get_optional(f"/v1/accounts/{key.hex()}") or {
            "member": key.hex(),
            "name": None,
            "balances": [],
        }
        everything = client.pages("/v1/statements", "statements")
        open_ = [
            s
            for s in everything
            if s["principal_outstanding"] or s["interest_outstanding"] or s["disputed_amount"]
        ]
        doc = {
            **account,
            "payable": [s for s in open_ if s["licensee"] == key.hex()],
            "receivable": [s for s in open_ if s["licensor"] == key.hex()],
        }
        emit(doc, output, lambda d: _render_balance(d, directory))


def _member_or_own(
    directory: Directory, member: str | None, key_file: pathlib.Path | None
) -> bytes:
    if member is not None:
        try:
            return directory.key_of(member, "MEMBER")
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
    if key_file is None:
        raise click.UsageError("give a MEMBER (name or key) or --key / $ALPS_KEY")
    return own_key(key_file)


def _render_balance(doc: dict[str, Any], directory: Directory) -> None:
    click.echo(f"{doc.get('name') or directory.name_of(doc['member'])} ({doc['member']})")
    table(
        ["currency", "balance"],
        [(b["currency"], money(b["balance"], b["currency"])) for b in doc["balances"]],
        right=(1,),
    )
    for what in ("payable", "receivable"):
        click.echo("")
        click.echo(f"outstanding statements, {what}:")
        table(STATEMENT_HEADERS, _statement_rows(doc[what], directory), right=(3, 4, 5))


# -- ledger ----------------------------------------------------------------------------------


@click.command("block")
@click.argument("height", default="latest", metavar="[HEIGHT|latest]")
@node_options
@output_option
def block(height: str, node_url: str, timeout: float, output: str) -> None:
    """A block's header fields and transaction ids."""
    if height != "latest" and not height.isdigit():
        raise click.BadParameter(f"{height!r} is not a height or 'latest'")
    with connect(node_url, timeout) as client:
        doc = client.get_optional(f"/v1/blocks/{height}")
        if doc is None:
            raise click.ClickException(f"no block {height}")

        def render(d: dict[str, Any]) -> None:
            pairs(
                [
                    ("height", d["height"]),
                    ("hash", d["hash"]),
                    ("parent", d["parent_hash"]),
                    ("time", when(d["timestamp_ms"])),
                    ("proposer", d["proposer"]),
                    ("transactions", d["tx_count"]),
                    ("state digest", d["state_digest"]),
                    ("validator set", d["validator_set_hash"]),
                    ("certified", "yes" if d["certified"] else "no"),
                ]
            )
            for tx_id in d["tx_ids"]:
                click.echo(f"  {tx_id}")

        emit(doc, output, render)


@click.command("tx")
@click.argument("tx_id", metavar="ID")
@node_options
@output_option
def tx(tx_id: str, node_url: str, timeout: float, output: str) -> None:
    """Where a transaction is (pending, committed, unknown) and its receipt."""
    if not HEX64.match(tx_id):
        raise click.BadParameter("a transaction id is 64 hex digits")
    with connect(node_url, timeout) as client:
        doc = client.get(f"/v1/txs/{tx_id.lower()}")

        def render(d: dict[str, Any]) -> None:
            rows: list[tuple[str, Any]] = [("tx", d["tx_id"]), ("status", d["status"])]
            if d["status"] == "committed":
                r, t = d["receipt"], d.get("tx") or {}
                rows += [("height", d["height"]), ("index", d["index"])]
                rows += [
                    ("type", t.get("tx_type", "?")),
                    ("signer", t.get("signer", "?")),
                    ("nonce", t.get("nonce", "?")),
                ]
                rows.append(("result", r["code"] + (f": {r['detail']}" if r["detail"] else "")))
            pairs(rows)
            if d["status"] == "committed":
                _events(d["receipt"]["events"])

        emit(doc, output, render)


def _events(events: list[dict[str, Any]]) -> None:
    for e in events:
        attrs = ", ".join(f"{k}={short(str(v), 20)}" for k, v in sorted(e["attrs"].items()))
        click.echo(f"  event {e['kind']}: {attrs}")


@click.command("receipts")
@click.argument("height", type=click.IntRange(0))
@node_options
@output_option
def receipts(height: int, node_url: str, timeout: float, output: str) -> None:
    """Every receipt of the block at HEIGHT."""
    with connect(node_url, timeout) as client:
        items = all_receipts(client, height)
        emit(
            {"height": height, "receipts": items},
            output,
            lambda d: table(
                ["#", "tx", "result", "events"],
                [
                    (
                        i,
                        r["tx_id"],
                        r["code"] + (f": {r['detail'][:60]}" if r["detail"] else ""),
                        ",".join(e["kind"] for e in r["events"]),
                    )
                    for i, r in enumerate(d["receipts"])
                ],
            ),
        )


def all_receipts(client: NodeClient, height: int) -> list[dict[str, Any]]:
    """Every receipt of a block (following `next` pages); NodeError if there is no block."""
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    for _ in range(100):
        doc = client.get(f"/v1/blocks/{height}/receipts", {"offset": offset, "limit": 1000})
        items.extend(doc["receipts"])
        offset = doc.get("next")
        if offset is None:
            return items
    raise NodeError("bad_answer", f"block {height}: too many receipt pages")


@click.command("account")
@click.argument("member", metavar="KEY")
@node_options
@output_option
def account(member: str, node_url: str, timeout: float, output: str) -> None:
    """A member's settlement account balances (KEY: public key or member name)."""
    with connect(node_url, timeout) as client:
        try:
            key = Directory(client).key_of(member, "KEY")
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        doc = client.get_optional(f"/v1/accounts/{key.hex()}")
        if doc is None:
            raise click.ClickException(f"{member} has no account and is not a member")

        def render(d: dict[str, Any]) -> None:
            click.echo(f"{d.get('name') or '-'} ({d['member']})")
            table(
                ["currency", "balance"],
                [(b["currency"], money(b["balance"], b["currency"])) for b in d["balances"]],
                right=(1,),
            )

        emit(doc, output, render)


# -- the node --------------------------------------------------------------------------------


@click.command("status")
@node_options
@output_option
def node_status(node_url: str, timeout: float, output: str) -> None:
    """The node's chain, height, view, primary, peers and mempool."""
    with connect(node_url, timeout) as client:
        doc = client.get("/v1/status")

        def render(d: dict[str, Any]) -> None:
            pairs(
                [
                    ("chain", d.get("chain_id")),
                    ("genesis hash", d.get("genesis_hash") or "-"),
                    ("height", d.get("height")),
                    ("view", d.get("view")),
                    ("primary", d.get("primary")),
                    ("validators", len(d.get("validators", []))),
                    ("peers connected", len(d.get("peers", []))),
                    ("mempool", f"{d.get('mempool')} / {d.get('mempool_max')}"),
                    ("syncing", "yes" if d.get("syncing") else "no"),
                ]
            )

        emit(doc, output, render)


@click.command("peers")
@click.option(
    "--admin",
    "admin_url",
    envvar="ALPS_ADMIN",
    help="admin API URL (default for a local node: its API port + 1)",
)
@node_options
@output_option
def node_peers(admin_url: str | None, node_url: str, timeout: float, output: str) -> None:
    """Validators and which are connected (from the admin API when the node is local)."""
    with connect(node_url, timeout) as client:
        source = "public"
        doc: dict[str, Any] | None = None
        admin = admin_url or (_local_admin(client))
        if admin is not None:
            try:
                with NodeClient(admin, timeout) as admin_client:
                    doc = admin_client.get("/admin/peers")
                    source = "admin"
            except NodeError:
                if admin_url is not None:
                    raise
        if doc is None:
            status = client.get("/v1/status")
            doc = {"validators": status.get("validators", []), "peers": status.get("peers", [])}
        doc = {**doc, "source": source}

        def render(d: dict[str, Any]) -> None:
            connected = set(d.get("peers", []))
            table(
                ["validator", "connected"],
                [(v, "yes" if v in connected else "-") for v in d["validators"]],
            )
            click.echo(f"({len(connected)} peers connected; from the {d['source']} API)")

        emit(doc, output, render)


def _local_admin(client: NodeClient) -> str | None:
    host = client.host
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return f"http://{host}:{client.port + 1}" if local else None


__all__ = ["split_statement_id"]
