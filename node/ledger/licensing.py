"""Licence rules, licence agreements and the bill of IP.

Rules kept here:
- A rule is deployed by its source; its id is the SHA-256 of the source (the VM's code
  hash). Deploying validates it, so a licence can only name a rule that compiles.
- A licence is proposed by one of its parties with all its terms and becomes active only
  when every party (licensor and licensee) has signed the same terms hash.
- An amendment is signed the same way and takes effect from a period start that is not
  yet closed, so a closed period is never rewritten. Termination by either party stops
  accrual from its effective time; periods already closed stay as they were.
- The bill of IP maps a licensee's SKU to the licences that apply to it (stacking).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from node.ledger.calendar import period_of
from node.ledger.context import Ctx, Reject
from node.ledger.model import (
    Licence,
    LicenceTerms,
    Member,
    TermsVersion,
    k_bom,
    k_close_due,
    k_licence,
    k_member,
    k_rule,
    require_id,
)
from node.ledger.records import Record, require, require_bytes, require_uint
from node.ledger.rules import compile_rule

MAX_BOM_LICENCES = 32


@dataclass(frozen=True, slots=True)
class DeployBody(Record):
    source: str


@dataclass(frozen=True, slots=True)
class ProposeBody(Record):
    terms: LicenceTerms


@dataclass(frozen=True, slots=True)
class SignBody(Record):
    licence_id: str
    terms_hash: bytes

    def __post_init__(self) -> None:
        require_bytes(self.terms_hash, 32, "terms_hash")


@dataclass(frozen=True, slots=True)
class AmendBody(Record):
    terms: LicenceTerms
    effective_ms: int


@dataclass(frozen=True, slots=True)
class TerminateBody(Record):
    licence_id: str
    effective_ms: int


@dataclass(frozen=True, slots=True)
class BomBody(Record):
    sku: str
    licences: tuple[str, ...]

    def __post_init__(self) -> None:
        require_id(self.sku, "sku")
        require(len(self.licences) <= MAX_BOM_LICENCES, "too many licences for one SKU")
        require(len(set(self.licences)) == len(self.licences), "duplicate licence")


def deploy_rule(ctx: Ctx, body: dict[str, Any]) -> None:
    program = compile_rule(DeployBody.from_value(body).source)
    if ctx.state.get(k_rule(program.code_hash)) is None:
        ctx.put_value(k_rule(program.code_hash), program.source)
    ctx.emit("rule_deployed", code_hash=program.code_hash)


def rule_source(ctx: Ctx, code_hash: bytes) -> str:
    source = ctx.get_value(k_rule(code_hash))
    if not isinstance(source, str):
        raise Reject("unknown_rule", code_hash.hex())
    return source


def _check_terms(ctx: Ctx, terms: LicenceTerms) -> None:
    if ctx.signer not in terms.parties():
        raise Reject("not_a_party", "only the licensor or the licensee may do this")
    for key, role in ((terms.licensor, ("licensor", "pool")), (terms.licensee, ("licensee",))):
        member = ctx.get(k_member(key), Member)
        if member is None or not set(role) & set(member.roles):
            raise Reject("bad_party", f"{key.hex()[:16]} must be a member with role {role}")
    for share in terms.pool:
        if ctx.get(k_member(share.licensor), Member) is None:
            raise Reject("bad_party", "every pool licensor must be a member")
    if terms.arbiter and ctx.get(k_member(terms.arbiter), Member) is None:
        raise Reject("bad_party", "the arbiter must be a member")
    rule_source(ctx, terms.rule)
    if terms.upstream_licence and ctx.get(k_licence(terms.upstream_licence), Licence) is None:
        raise Reject("unknown_licence", f"upstream {terms.upstream_licence}")


def propose(ctx: Ctx, body: dict[str, Any]) -> None:
    terms = ProposeBody.from_value(body).terms
    _check_terms(ctx, terms)
    if ctx.state.get(k_licence(terms.licence_id)) is not None:
        raise Reject("duplicate", f"licence {terms.licence_id} exists")
    first = period_of(terms.period, terms.start_ms)
    pending = TermsVersion(terms, terms.start_ms, (ctx.signer,))
    licence = Licence(
        terms.licence_id, "proposed", (), pending, first.start_ms, 0, terms.advance, False
    )
    ctx.put(k_licence(terms.licence_id), licence)
    ctx.emit("licence_proposed", licence_id=terms.licence_id, terms_hash=terms.terms_hash())


def sign(ctx: Ctx, body: dict[str, Any]) -> None:
    b = SignBody.from_value(body)
    lic = ctx.must(k_licence(b.licence_id), Licence, "unknown_licence", b.licence_id)
    pending = lic.pending
    if pending is None:
        raise Reject("nothing_to_sign", "no terms await signatures")
    if pending.terms.terms_hash() != b.terms_hash:
        raise Reject("terms_mismatch", "signed terms hash differs from the proposed terms")
    if ctx.signer not in pending.terms.parties():
        raise Reject("not_a_party", "only the licensor or the licensee may sign")
    if ctx.signer in pending.signed_by:
        raise Reject("duplicate", "already signed")
    pending = replace(pending, signed_by=tuple(sorted((*pending.signed_by, ctx.signer))))
    if set(pending.signed_by) != set(pending.terms.parties()):
        ctx.put(k_licence(lic.licence_id), replace(lic, pending=pending))
        ctx.emit("licence_signed", licence_id=lic.licence_id)
        return
    if lic.status == "proposed":
        first = period_of(pending.terms.period, pending.terms.start_ms)
        ctx.put_value(k_close_due(first.end_ms, lic.licence_id), lic.licence_id)
        lic = replace(lic, status="active")
    ctx.put(
        k_licence(lic.licence_id), replace(lic, versions=(*lic.versions, pending), pending=None)
    )
    ctx.emit(
        "licence_active",
        licence_id=lic.licence_id,
        effective_ms=pending.effective_ms,
        terms_hash=b.terms_hash,
    )


def amend(ctx: Ctx, body: dict[str, Any]) -> None:
    b = AmendBody.from_value(body)
    require_uint(b.effective_ms, "effective_ms")
    lic = ctx.must(k_licence(b.terms.licence_id), Licence, "unknown_licence", b.terms.licence_id)
    if lic.status != "active":
        raise Reject("not_active", "only an active licence can be amended")
    current = lic.current
    _check_terms(ctx, b.terms)
    same = ("licensor", "licensee", "currency", "period")
    if any(getattr(b.terms, f) != getattr(current, f) for f in same):
        raise Reject("bad_amendment", f"an amendment keeps {same}")
    if period_of(current.period, b.effective_ms).start_ms != b.effective_ms:
        raise Reject("bad_amendment", "an amendment takes effect at a period start")
    now = period_of(current.period, ctx.block.time_ms).start_ms
    if b.effective_ms < max(lic.open_period_start_ms, now):
        raise Reject("closed_period", "an amendment cannot change a closed or ended period")
    pending = TermsVersion(b.terms, b.effective_ms, (ctx.signer,))
    ctx.put(k_licence(lic.licence_id), replace(lic, pending=pending))
    ctx.emit("licence_amendment_proposed", licence_id=lic.licence_id, effective_ms=b.effective_ms)


def terminate(ctx: Ctx, body: dict[str, Any]) -> None:
    b = TerminateBody.from_value(body)
    lic = ctx.must(k_licence(b.licence_id), Licence, "unknown_licence", b.licence_id)
    if ctx.signer not in lic.current.parties():
        raise Reject("not_a_party", "only a party may terminate")
    if lic.terminated_ms:
        raise Reject("already_terminated", b.licence_id)
    if b.effective_ms < max(ctx.block.time_ms, lic.open_period_start_ms):
        raise Reject("closed_period", "termination cannot be backdated")
    ctx.put(k_licence(lic.licence_id), replace(lic, terminated_ms=b.effective_ms))
    ctx.emit("licence_terminated", licence_id=lic.licence_id, effective_ms=b.effective_ms)


def set_bom(ctx: Ctx, body: dict[str, Any]) -> None:
    b = BomBody.from_value(body)
    for licence_id in b.licences:
        lic = ctx.must(k_licence(licence_id), Licence, "unknown_licence", licence_id)
        terms = lic.current if lic.versions else lic.first_terms
        if terms.licensee != ctx.signer:
            raise Reject("not_licensee", f"{licence_id} is not the signer's licence")
        if b.sku not in terms.skus:
            raise Reject("sku_not_licensed", f"{licence_id} does not cover {b.sku}")
    ctx.put_value(k_bom(ctx.signer, b.sku), list(b.licences))
    ctx.emit("bom_set", sku=b.sku, licences=list(b.licences))


HANDLERS = {
    "rule.deploy": deploy_rule,
    "licence.propose": propose,
    "licence.sign": sign,
    "licence.amend": amend,
    "licence.terminate": terminate,
    "bom.set": set_bom,
}
