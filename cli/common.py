"""What every node-facing `alps` command shares: the --node/--key/--output/--wait options,
output (stable JSON or readable tables), money and time formatting, member names, and
reporting a submitted transaction.

Rules kept here: `--output json` prints the node's answer as JSON (sorted keys; the
fields are the API's, docs/api.md), so scripts get a stable shape; tables are for people
and may change. A transaction that did not commit with code "ok" ends the command with
exit status 1 and one line saying why.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from cli.client import DEFAULT_TIMEOUT_S, NodeClient, Outcome, Submitter
from node.keys import load_signer
from node.ledger import crypto
from node.ledger.calendar import ms_of_date

F = TypeVar("F", bound=Callable[..., Any])
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# ISO 4217 minor-unit exponents that are not 2 (tables only; amounts stay minor units).
CURRENCY_EXPONENT = {
    **dict.fromkeys(("JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "UGX", "PYG"), 0),
    **dict.fromkeys(("BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD"), 3),
}


# -- options --------------------------------------------------------------------------------


def node_options(f: F) -> F:
    """--node URL ($ALPS_NODE, default http://127.0.0.1:8700) and --timeout SECONDS."""
    f = click.option(
        "--timeout",
        type=click.FloatRange(0.1, 600),
        default=DEFAULT_TIMEOUT_S,
        show_default=True,
        help="seconds to wait for each answer",
    )(f)
    return click.option(
        "--node",
        "node_url",
        envvar="ALPS_NODE",
        default="http://127.0.0.1:8700",
        show_default=True,
        metavar="URL",
        help="node API URL (env ALPS_NODE)",
    )(f)


def key_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "--key",
        "key_file",
        envvar="ALPS_KEY",
        required=required,
        type=click.Path(dir_okay=False, path_type=pathlib.Path),
        help="member key file that signs (env ALPS_KEY)",
    )


def output_option(f: F) -> F:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="readable table, or JSON for scripts",
    )(f)


def wait_option(f: F) -> F:
    return click.option(
        "--wait",
        "wait_s",
        type=click.FloatRange(0, 60),
        default=30,
        show_default=True,
        help="seconds to wait for the transaction to commit",
    )(f)


def connect(node_url: str, timeout: float) -> NodeClient:
    return NodeClient(node_url, timeout)


def submitter(node_url: str, timeout: float, key_file: pathlib.Path) -> Submitter:
    return Submitter(connect(node_url, timeout), load_signer(key_file), str(key_file))


# -- submitting ----------------------------------------------------------------------------


def report(outcome: Outcome, wait_s: float) -> Outcome:
    """Print a committed transaction; anything else is a one-line error (exit 1)."""
    if outcome.status == "pending" and wait_s > 0:
        raise click.ClickException(
            f"{outcome.tx_type} not committed within {wait_s:g} s (tx {outcome.tx_id}); "
            f"check with: alps tx {outcome.tx_id}"
        )
    if outcome.status == "pending":
        click.echo(f"{outcome.tx_type} submitted (tx {outcome.tx_id})")
        return outcome
    if not outcome.ok:
        raise click.ClickException(outcome.describe())
    click.echo(outcome.describe())
    return outcome


def submit_and_report(
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
    tx_type: str,
    body: dict[str, Any],
) -> Outcome:
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        if wait_s > 0 and sys.stderr.isatty():  # progress for people; errors stay one line
            click.echo(f"submitting {tx_type}, waiting up to {wait_s:g} s to commit...", err=True)
        return report(sub.submit(tx_type, body, wait_s), wait_s)


# -- output --------------------------------------------------------------------------------


def emit(doc: Any, output: str, render: Callable[[Any], None]) -> None:
    if output == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        render(doc)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> None:
    """Columns padded to their widest cell; `right` lists right-aligned column indices."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    click.echo(line(list(headers)))
    for row in cells:
        click.echo(line(row))
    if not cells:
        click.echo("(none)")


def pairs(items: Iterable[tuple[str, Any]]) -> None:
    """A two-column "field: value" listing."""
    items = list(items)
    width = max((len(k) for k, _ in items), default=0)
    for k, v in items:
        click.echo(f"{k.ljust(width)}  {v}")


def money(amount: int, currency: str) -> str:
    """Minor units shown in major units: 123456 USD -> "1,234.56 USD"."""
    exp = CURRENCY_EXPONENT.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{sign}{text} {currency}"


def when(ms: int | None) -> str:
    if not ms:
        return "-"
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%SZ")


def day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def short(hex_text: str, n: int = 16) -> str:
    return hex_text if len(hex_text) <= n else hex_text[:n] + "…"


def parse_date(text: str, what: str) -> int:
    """YYYY-MM-DD (UTC midnight) -> milliseconds; ValueError says why."""
    m = DATE_RE.match(text.strip())
    if not m:
        raise ValueError(f"{what}: expected a date YYYY-MM-DD, got {text!r}")
    year, month, day_ = (int(g) for g in m.groups())
    try:
        dt.date(year, month, day_)
    except ValueError as exc:
        raise ValueError(f"{what}: {text!r} is not a date ({exc})") from exc
    return ms_of_date(year, month, day_)


# -- members -------------------------------------------------------------------------------


class Directory:
    """Member names and keys as the node knows them (fetched once, on first use)."""

    def __init__(self, client: NodeClient) -> None:
        self.client = client
        self._members: list[dict[str, Any]] | None = None

    @property
    def members(self) -> list[dict[str, Any]]:
        if self._members is None:
            self._members = self.client.pages("/v1/members", "members")
        return self._members

    def key_of(self, text: str, what: str) -> bytes:
        """A member name or a 64-hex key -> the key; ValueError names the field."""
        text = text.strip()
        if HEX64.match(text):
            return bytes.fromhex(text.lower())
        for m in self.members:
            if m.get("name") == text:
                return bytes.fromhex(str(m["public_key"]))
        names = ", ".join(sorted(str(m.get("name")) for m in self.members)[:20])
        raise ValueError(f"{what}: no member named {text!r} (members: {names})")

    def name_of(self, key_hex: str) -> str:
        if not key_hex:
            return "-"
        for m in self.members:
            if m.get("public_key") == key_hex:
                return str(m.get("name"))
        return short(key_hex)


def member_key(client: NodeClient, text: str, what: str) -> bytes:
    try:
        return Directory(client).key_of(text, what)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def public_key_arg(text: str, what: str) -> bytes:
    if not HEX64.match(text):
        raise click.BadParameter(f"{what} must be 64 hex digits, got {text[:80]!r}")
    return bytes.fromhex(text.lower())


def own_key(key_file: pathlib.Path) -> bytes:
    return load_signer(key_file).public_key


def code_hash(source: str) -> bytes:
    """A rule's id: the SHA-256 of its UTF-8 source (the VM's code hash)."""
    return crypto.sha256(source.encode())
