"""`alps rule`, `alps licence` and `alps bom`: licence rules, agreements and the bill of IP.

Rule kept here: a party signs only terms it computed the hash of itself. `licence sign`
rebuilds the pending `LicenceTerms` from the node's answer and hashes it locally (with
`--terms FILE` it must also equal that file's terms), so a node that shows one thing
cannot get a signature for another: the ledger checks the same hash.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import click

from cli.common import (
    Directory,
    code_hash,
    connect,
    day,
    emit,
    key_option,
    money,
    node_options,
    output_option,
    pairs,
    parse_date,
    report,
    submit_and_report,
    submitter,
    table,
    wait_option,
)
from cli.terms import TermsError, TermsFile, load_terms, terms_from_json
from contracts_vm.rules import LEDGER_RULES
from node.ledger.calendar import period_of
from node.ledger.errors import LedgerError
from node.ledger.model import ID_RE, LicenceTerms

RULE_FILE_BYTES_MAX = 64 * 1024


# -- rules -----------------------------------------------------------------------------------


@click.group()
def rule() -> None:
    """Licence rules (VM programs; a rule's id is the SHA-256 of its source)."""


@rule.command("deploy")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option("--library", "library", metavar="NAME", help="a rule of the built-in library")
@node_options
@key_option()
@wait_option
def rule_deploy(
    file: pathlib.Path | None,
    library: str | None,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Deploy a rule from FILE or the library; prints its code hash."""
    if (file is None) == (library is None):
        raise click.UsageError("give a rule FILE or --library NAME (one of them)")
    if library is not None:
        if library not in LEDGER_RULES:
            raise click.BadParameter(
                f"{library!r} is not in the library ({', '.join(LEDGER_RULES)})",
                param_hint="--library",
            )
        source = LEDGER_RULES[library]
    else:
        assert file is not None
        source = _read_rule(file)
    submit_and_report(node_url, timeout, key_file, wait_s, "rule.deploy", {"source": source})
    click.echo(code_hash(source).hex())


def _read_rule(path: pathlib.Path) -> str:
    with path.open("rb") as f:
        data = f.read(RULE_FILE_BYTES_MAX + 1)
    if len(data) > RULE_FILE_BYTES_MAX:
        raise click.ClickException(f"{path}: rule source over {RULE_FILE_BYTES_MAX} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 text") from exc


@rule.command("library")
@output_option
def rule_library(output: str) -> None:
    """The built-in rule library: names and code hashes (for terms files)."""
    doc = {name: code_hash(src).hex() for name, src in LEDGER_RULES.items()}
    emit(doc, output, lambda d: table(["rule", "code hash"], sorted(d.items())))


# -- licences --------------------------------------------------------------------------------


@click.group()
def licence() -> None:
    """Licence agreements: propose, sign, amend, terminate, show, list."""


def _load(path: pathlib.Path, directory: Directory, licence_id: str | None = None) -> TermsFile:
    return load_terms(path, directory.key_of, licence_id)


@licence.command("propose")
@click.argument("terms_file", metavar="TERMS", type=click.Path(path_type=pathlib.Path))
@node_options
@key_option()
@wait_option
def licence_propose(
    terms_file: pathlib.Path, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Propose a licence from a TOML or JSON terms file (you sign as one party)."""
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        loaded = _load(terms_file, Directory(sub.client))
        terms = loaded.terms
        outcome = report(sub.submit("licence.propose", {"terms": terms.to_value()}, wait_s), wait_s)
    if outcome.ok:
        click.echo(f"licence {terms.licence_id} proposed; terms hash {terms.terms_hash().hex()}")


@licence.command("sign")
@click.argument("licence_id")
@click.option(
    "--terms",
    "terms_file",
    type=click.Path(path_type=pathlib.Path),
    help="sign only if the pending terms are exactly this file's",
)
@node_options
@key_option()
@wait_option
def licence_sign(
    licence_id: str,
    terms_file: pathlib.Path | None,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Sign the terms awaiting signatures (a proposal or an amendment)."""
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        doc = _licence_doc(sub.client, licence_id)
        pending = doc.get("pending")
        if not pending:
            raise click.ClickException(f"licence {licence_id} has no terms awaiting signatures")
        try:
            terms = terms_from_json(pending["terms"])
        except (LedgerError, KeyError, TypeError, ValueError) as exc:
            raise click.ClickException(
                f"licence {licence_id}: the node's terms cannot be rebuilt ({exc})"
            ) from exc
        if terms_file is not None:
            expected = _load(terms_file, Directory(sub.client), licence_id).terms
            if expected.terms_hash() != terms.terms_hash():
                raise click.ClickException(
                    f"licence {licence_id}: the pending terms differ from {terms_file} "
                    f"({_differences(expected, terms)}); not signing"
                )
        body = {"licence_id": licence_id, "terms_hash": terms.terms_hash()}
        report(sub.submit("licence.sign", body, wait_s), wait_s)


def _differences(a: LicenceTerms, b: LicenceTerms) -> str:
    va, vb = a.to_value(), b.to_value()
    return ", ".join(k for k in va if va[k] != vb.get(k)) or "encoding"


def _licence_doc(client: Any, licence_id: str) -> dict[str, Any]:
    _check_id(licence_id, "licence id")
    doc: dict[str, Any] | None = client.get_optional(f"/v1/licences/{licence_id}")
    if doc is None:
        raise click.ClickException(f"unknown licence {licence_id!r}")
    return doc


def _check_id(text: str, what: str) -> None:
    if not ID_RE.match(text):
        raise click.BadParameter(f"{what} {text[:80]!r} is not a valid id")


@licence.command("amend")
@click.argument("licence_id")
@click.argument("terms_file", metavar="TERMS", type=click.Path(path_type=pathlib.Path))
@click.option(
    "--from-period",
    "from_period",
    required=True,
    metavar="PERIOD|DATE",
    help="first period the amendment governs: a period id (2026-Q3, 2026-07, 2026) or its "
    "start date",
)
@node_options
@key_option()
@wait_option
def licence_amend(
    licence_id: str,
    terms_file: pathlib.Path,
    from_period: str,
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Propose amended terms from a period on (the other party signs them)."""
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        current = _licence_doc(sub.client, licence_id)
        kind = current["versions"][-1]["terms"]["period"] if current.get("versions") else None
        if kind is None:
            raise click.ClickException(f"licence {licence_id} is not active yet; nothing to amend")
        effective = period_start(from_period, kind)
        terms = _load(terms_file, Directory(sub.client), licence_id).terms
        body = {"terms": terms.to_value(), "effective_ms": effective}
        outcome = report(sub.submit("licence.amend", body, wait_s), wait_s)
    if outcome.ok:
        click.echo(
            f"amendment from {day(effective)} proposed; terms hash {terms.terms_hash().hex()}"
        )


def period_start(text: str, kind: str) -> int:
    """A period id of `kind` ("2026-07", "2026-Q3", "2026") or a period's first day
    (YYYY-MM-DD) -> its start in ms."""
    forms = {"month": r"(\d{4})-(\d{2})", "quarter": r"(\d{4})-Q([1-4])", "year": r"(\d{4})"}
    m = re.fullmatch(forms[kind], text)
    if m:
        year = m.group(1)
        month = 1 if kind == "year" else int(m.group(2))
        text_date = f"{year}-{3 * month - 2 if kind == 'quarter' else month:02d}-01"
    else:
        text_date = text
    try:
        ms = parse_date(text_date, "--from-period")
    except ValueError as exc:
        example = {"month": "2026-07", "quarter": "2026-Q3", "year": "2026"}[kind]
        raise click.BadParameter(
            f"{text!r} is neither a {kind} id (e.g. {example}) nor a date YYYY-MM-DD",
            param_hint="--from-period",
        ) from exc
    if period_of(kind, ms).start_ms != ms:
        raise click.BadParameter(f"{text} is not the start of a {kind}", param_hint="--from-period")
    return ms


@licence.command("terminate")
@click.argument("licence_id")
@click.option("--at", "at", default="now", show_default=True, help="YYYY-MM-DD or now")
@node_options
@key_option()
@wait_option
def licence_terminate(
    licence_id: str, at: str, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Terminate a licence (either party): accrual stops from --at."""
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        _licence_doc(sub.client, licence_id)
        if at == "now":
            head = sub.client.get("/v1/blocks/latest")
            effective = int(head["timestamp_ms"]) + 60_000  # after the block that includes it
        else:
            try:
                effective = parse_date(at, "--at")
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--at") from exc
        body = {"licence_id": licence_id, "effective_ms": effective}
        report(sub.submit("licence.terminate", body, wait_s), wait_s)


@licence.command("show")
@click.argument("licence_id")
@node_options
@output_option
def licence_show(licence_id: str, node_url: str, timeout: float, output: str) -> None:
    """A licence: status, the terms in force, any pending amendment."""
    with connect(node_url, timeout) as client:
        doc = _licence_doc(client, licence_id)
        directory = Directory(client)
        emit(doc, output, lambda d: _render_licence(d, directory))


def _render_licence(doc: dict[str, Any], directory: Directory) -> None:
    rows: list[tuple[str, Any]] = [("licence", doc["licence_id"]), ("status", doc["status"])]
    versions = doc.get("versions") or []
    shown = versions[-1] if versions else doc.get("pending")
    if shown:
        t = shown["terms"]
        rows += [
            ("licensor", directory.name_of(t["licensor"])),
            ("licensee", directory.name_of(t["licensee"])),
            ("skus", ", ".join(t["skus"])),
            ("territories", ", ".join(t["territories"]) or "worldwide"),
            ("currency", t["currency"]),
            ("period", t["period"]),
            ("term", f"{day(t['start_ms'])} .. {day(t['end_ms'])}"),
            ("rule", t["rule"]),
            ("rule params", t["rule_params"]),
            ("payment due", f"{t['payment_due_days']} days"),
        ]
        for name in ("upfront_fee", "minimum_annual", "annual_cap", "advance"):
            if t[name]:
                rows.append((name.replace("_", " "), money(t[name], t["currency"])))
        if t["pool"]:
            pool = ", ".join(f"{directory.name_of(p['licensor'])}:{p['weight']}" for p in t["pool"])
            rows.append(("pool", pool))
        if t["upstream_licence"]:
            rows.append(("upstream", f"{t['upstream_licence']} ({t['passthrough_bps']} bps)"))
        signers = ", ".join(directory.name_of(k) for k in shown["signed_by"])
        rows.append(("signed by", signers))
    rows.append(("versions", len(versions)))
    if doc.get("pending") and versions:
        p = doc["pending"]
        rows.append(("pending amendment", f"from {day(p['effective_ms'])}"))
    if doc.get("terminated_ms"):
        rows.append(("terminated", day(doc["terminated_ms"])))
    rows.append(("open period from", day(doc["open_period_start_ms"])))
    pairs(rows)


@licence.command("list")
@node_options
@output_option
def licence_list(node_url: str, timeout: float, output: str) -> None:
    """Every licence with its parties, status and term."""
    with connect(node_url, timeout) as client:
        items = client.pages("/v1/licences", "licences")
        directory = Directory(client)

        def render(items: list[dict[str, Any]]) -> None:
            table(
                ["licence", "status", "licensor", "licensee", "skus", "period", "term"],
                [
                    (
                        x["licence_id"],
                        x["status"],
                        directory.name_of(x["licensor"]),
                        directory.name_of(x["licensee"]),
                        ",".join(x["skus"]),
                        x["period"],
                        f"{day(x['start_ms'])}..{day(x['end_ms'])}",
                    )
                    for x in items
                ],
            )

        emit({"licences": items}, output, lambda d: render(d["licences"]))


# -- bill of IP ---------------------------------------------------------------------------------


@click.group()
def bom() -> None:
    """The bill of IP: which licences apply to each of your SKUs."""


@bom.command("set")
@click.argument("sku")
@click.argument("licences", nargs=-1)
@node_options
@key_option()
@wait_option
def bom_set(
    sku: str,
    licences: tuple[str, ...],
    node_url: str,
    timeout: float,
    key_file: pathlib.Path,
    wait_s: float,
) -> None:
    """Map SKU to LICENCES (all that apply; none clears it). You must be their licensee."""
    _check_id(sku, "sku")
    for licence_id in licences:
        _check_id(licence_id, "licence id")
    body = {"sku": sku, "licences": list(licences)}
    submit_and_report(node_url, timeout, key_file, wait_s, "bom.set", body)


__all__ = ["TermsError", "bom", "licence", "rule"]
