"""`alps verify tx|receipt|statement <id>`: prove a transaction, a receipt or a statement
(with its payments and, with --usage-tx, the signed usage it billed) without trusting
the node that answers.

Rule kept here: the node is only a courier. Everything it sends is checked offline by
node/api/proofs.py against the genesis file the user holds: first the validator history
(each membership change certified by the sets before it), then the proof itself. A
tampered proof, a forged certificate, another chain, an unknown id or an unreachable
node ends as one `Error:` line and exit status 1; success prints what was proven.
"""

from __future__ import annotations

import json
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import click

from node.api import proofs
from node.genesis_file import read_genesis
from node.ledger.errors import ProofError
from node.ledger.genesis import Genesis
from node.ledger.tx import Transaction
from node.ledger.usage import usage_report_of

ANSWER_BYTES_MAX = 64 * 1024 * 1024
TIMEOUT_S = 30.0
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")


class VerifyFailed(click.ClickException):
    """One line for the user; exit status 1."""


# -- fetching (the only I/O) ---------------------------------------------------------------


def fetch_json(node: str, path: str, query: dict[str, str] | None = None) -> Any:
    """GET node + path as JSON, bounded in size and time; raises VerifyFailed."""
    url = node.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            body = answer.read(ANSWER_BYTES_MAX + 1)
    except urllib.error.HTTPError as exc:
        raise VerifyFailed(_refusal(exc)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VerifyFailed(f"node unreachable at {node}: {reason}") from None
    if len(body) > ANSWER_BYTES_MAX:
        raise VerifyFailed(f"node answer to {path} is over {ANSWER_BYTES_MAX} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise VerifyFailed(f"node sent a malformed answer to {path}") from None


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read(64 * 1024))
        code, detail = str(doc.get("error", "")), str(doc.get("detail", ""))
    except (ValueError, AttributeError, OSError):
        code, detail = "", ""
    if exc.code == 404 and code == "not_certified":
        return f"not final yet: {detail}"
    if exc.code == 404:
        return f"unknown to the node: {detail or code or 'not found'}"
    return f"node refused (HTTP {exc.code}): {code} {detail}".strip()


def _node_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise click.BadParameter("an http:// or https:// URL, e.g. http://127.0.0.1:8700")
    return value


# -- verifying -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Names:
    """Member names from the genesis file, for readable keys."""

    by_key: dict[bytes, str]

    @classmethod
    def of(cls, genesis: Genesis) -> Names:
        return cls({m.public_key: m.name for m in genesis.members})

    def __call__(self, key: bytes) -> str:
        name = self.by_key.get(key)
        return f"{name} ({key.hex()[:16]})" if name else key.hex()[:16]


def load_history(node: str, genesis: Genesis) -> proofs.ValidatorHistory:
    doc = fetch_json(node, "/v1/validator-history")
    if isinstance(doc, dict) and doc.get("chain_id") not in (None, genesis.chain_id):
        raise VerifyFailed(
            f"wrong chain: the node serves {doc.get('chain_id')!r}, "
            f"the genesis file is for {genesis.chain_id!r}"
        )
    return proofs.verify_validator_history(proofs.history_from_json(doc), genesis)


def verify_inclusion(
    kind: proofs.ProofKind, ident: str, node: str, genesis: Genesis
) -> dict[str, Any]:
    history = load_history(node, genesis)
    path = f"/v1/{'txs' if kind == 'tx' else 'receipts'}/{ident}/proof"
    doc = proofs.InclusionProofDoc.from_json(fetch_json(node, path))
    if doc.kind != kind or doc.tx_id.hex() != ident:
        raise ProofError("bad_proof", f"the node answered a proof of something else for {ident}")
    verified = proofs.verify_tx_proof(doc, genesis.chain_id, history)
    out = _finality(verified.height, verified.certified_height, verified.signers, history)
    out.update(kind=kind, id=ident, index=doc.index)
    if verified.tx is not None:
        out.update(tx=_tx_summary(verified.tx))
    if verified.receipt is not None:
        r = verified.receipt
        out.update(
            accepted=r.accepted,
            code=r.code,
            detail=r.detail,
            events=[{"kind": e.kind, "attrs": _plain(e.attrs)} for e in r.events],
        )
    return out


def verify_statement(
    ident: str, node: str, genesis: Genesis, usage_tx: str | None
) -> dict[str, Any]:
    history = load_history(node, genesis)
    query = {"usage_tx": usage_tx} if usage_tx else None
    answer = fetch_json(node, f"/v1/statements/{urllib.parse.quote(ident)}/proof", query)
    doc = proofs.StatementProofDoc.from_json(answer)
    if doc.statement_id != ident:
        raise ProofError("bad_proof", f"the node answered a proof of {doc.statement_id}")
    if usage_tx and (doc.usage is None or doc.usage.tx.tx_id.hex() != usage_tx):
        raise ProofError("bad_proof", "the node left out the usage record asked for")
    v = proofs.verify_statement_proof(doc, genesis.chain_id, history)
    s = v.statement
    out: dict[str, Any] = {"kind": "statement", "id": ident, "statement_hash": v.statement_hash}
    out["closed"] = _finality(v.closed.height, v.closed.certified_height, v.closed.signers, history)
    out["statement"] = _plain(s.to_value())
    out["payments"] = [
        {
            **_finality(p.height, p.certified_height, p.signers, history),
            **{k: _plain(p.attrs[k]) for k in _PAYMENT_FIELDS if k in p.attrs},
        }
        for p in v.payments
    ]
    out["paid_total"], out["interest_paid_total"] = v.paid_total, v.interest_paid_total
    if v.usage is not None:
        out["usage"] = {
            **_finality(v.usage.height, v.usage.certified_height, v.usage.signers, history),
            "leaf_index": v.usage.leaf_index,
            "tx": _tx_summary(v.usage.tx),
        }
    return out


_PAYMENT_FIELDS = (
    "payer",
    "currency",
    "principal",
    "interest",
    "transfers",
    "paid_total",
    "interest_paid_total",
    "outstanding",
    "interest_outstanding",
    "status",
)


def _finality(
    height: int, certified: int, signers: tuple[bytes, ...], history: proofs.ValidatorHistory
) -> dict[str, Any]:
    validators = history.set_for(certified)
    return {
        "height": height,
        "certified_height": certified,
        "signers": list(signers),
        "validators": len(validators.validators),
        "quorum": validators.quorum,
    }


def _tx_summary(tx: Transaction) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tx_id": tx.tx_id,
        "tx_type": tx.tx_type,
        "signer": tx.signer,
        "nonce": tx.nonce,
    }
    if tx.tx_type == "usage.report":
        report = usage_report_of(tx)
        out.update(
            device=tx.signer,
            seq=tx.nonce,
            sku=report.sku,
            territory=report.territory,
            registers=report.registers,
        )
    else:
        out["body"] = tx.body
    return _plain(out)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """JSON-ready: bytes as hex, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- rendering -----------------------------------------------------------------------------


def render(result: dict[str, Any], names: Names, chain_id: str) -> list[str]:
    kind, ident = result["kind"], result["id"]
    lines = [f"VERIFIED {kind} {ident} on chain {chain_id} against the genesis file"]
    if kind == "statement":
        lines += _render_statement(result, names)
    else:
        lines.append(f"  in block {result['height']} at index {result['index']}")
        lines.append(_certified_line(result, names))
        if "tx" in result:
            lines += _render_tx(result["tx"], names)
        if "accepted" in result:
            verdict = "accepted" if result["accepted"] else f"rejected: {result['code']}"
            lines.append(f"  outcome: {verdict} {result['detail']}".rstrip())
            lines += [f"  event {e['kind']}: {_attrs(e['attrs'])}" for e in result["events"]]
    return lines


def _certified_line(r: dict[str, Any], names: Names) -> str:
    via = "" if r["certified_height"] == r["height"] else f" (via block {r['certified_height']})"
    who = ", ".join(names(bytes.fromhex(s)) for s in r["signers"])
    return (
        f"  final{via}: {len(r['signers'])} of {r['validators']} validators signed "
        f"(quorum {r['quorum']}): {who}"
    )


def _render_tx(tx: dict[str, Any], names: Names) -> list[str]:
    lines = [f"  transaction {tx['tx_type']} by {names(bytes.fromhex(tx['signer']))}"]
    if tx["tx_type"] == "usage.report":
        lines.append(
            f"  device {tx['device'][:16]} seq {tx['seq']} sku {tx['sku']} "
            f"territory {tx['territory']} registers {tx['registers']}"
        )
    return lines


def _render_statement(r: dict[str, Any], names: Names) -> list[str]:
    s = r["statement"]
    ccy = s["currency"]
    lines = [
        f"  statement {r['statement_hash'][:16]}: licensor {names(bytes.fromhex(s['licensor']))},"
        f" licensee {names(bytes.fromhex(s['licensee']))}",
        f"  total {s['total']} {ccy} (minor units), {len(s['lines'])} lines, "
        f"{s['usage_count']} usage records (root {s['usage_root'][:16]})",
        f"  closed in block {r['closed']['height']}",
        _certified_line(r["closed"], names),
    ]
    for i, p in enumerate(r["payments"], 1):
        to = ", ".join(f"{names(bytes.fromhex(k))} {a}" for k, a in p["transfers"])
        lines.append(
            f"  payment {i} in block {p['height']}: {p['principal']} principal + "
            f"{p['interest']} interest {ccy} from {names(bytes.fromhex(p['payer']))}"
            f" to {to or 'nobody (no balance)'}"
        )
        lines.append(_certified_line(p, names))
    outstanding = r["payments"][-1]["outstanding"] if r["payments"] else s["total"]
    lines.append(
        f"  paid {r['paid_total']} of {s['total']} {ccy} (+ {r['interest_paid_total']} interest);"
        f" outstanding {outstanding} as of the last payment shown"
    )
    if "usage" in r:
        u = r["usage"]
        lines.append(
            f"  usage record {u['leaf_index']} of {s['usage_count']} billed, in block {u['height']}"
        )
        lines += _render_tx(u["tx"], names)
        lines.append(_certified_line(u, names))
    return lines


def _attrs(attrs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v if not isinstance(v, str) else v[:24]}" for k, v in attrs.items())


# -- the command ---------------------------------------------------------------------------


@click.command("verify")
@click.argument("kind", type=click.Choice(["tx", "receipt", "statement"]))
@click.argument("ident", metavar="ID")
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="the genesis file you trust (validator keys)",
)
@click.option(
    "--node",
    default="http://127.0.0.1:8700",
    show_default=True,
    callback=_node_url,
    help="any node's API (it need not be trusted)",
)
@click.option("--usage-tx", default=None, help="statement: also prove this billed usage record")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(
    kind: str, ident: str, genesis_path: pathlib.Path, node: str, usage_tx: str | None, output: str
) -> None:
    """Prove a transaction, receipt or statement (with its payments) is final, offline."""
    _check_id(kind, ident, usage_tx)
    genesis = read_genesis(genesis_path)
    try:
        if kind == "statement":
            result = verify_statement(ident, node, genesis, usage_tx)
        else:
            result = verify_inclusion("tx" if kind == "tx" else "receipt", ident, node, genesis)
    except ProofError as exc:
        raise VerifyFailed(f"REJECTED: {exc.code}: {exc.detail}") from None
    if output == "json":
        click.echo(json.dumps({"verified": True, **_plain(result)}, indent=2))
    else:
        click.echo("\n".join(render(_plain(result), Names.of(genesis), genesis.chain_id)))


def _check_id(kind: str, ident: str, usage_tx: str | None) -> None:
    if kind == "statement":
        try:
            proofs.parse_statement_id(ident)
        except ProofError:
            raise click.BadParameter("a statement id is <licence_id>@<period_id>") from None
    elif not _HEX_ID.match(ident):
        raise click.BadParameter(f"a {kind} id is 64 lowercase hex digits")
    if usage_tx is not None and (kind != "statement" or not _HEX_ID.match(usage_tx)):
        raise click.BadParameter("--usage-tx is a usage.report tx id (statements only)")
