"""Consortium governance: adding and removing members and changing the validator set.

Rule kept here: a change needs approvals from MORE than two thirds of the members at the
time it executes, and takes effect at its stated height (end of that block), never
earlier; a proposal that lacks approvals at its height expires. Validator keys must
belong to members.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from node.ledger.certificate import ValidatorSet
from node.ledger.context import Ctx, Reject
from node.ledger.genesis import K_VALIDATORS
from node.ledger.model import Member, Proposal, k_member, k_proposal, require_id
from node.ledger.records import Record, require, require_uint

ACTIONS = ("add_member", "remove_member", "set_validators")
K_GOV_DUE = b"gov-due/"


@dataclass(frozen=True, slots=True)
class ProposeBody(Record):
    proposal_id: str
    action: str
    member: Member | None
    remove_key: bytes
    validators: tuple[bytes, ...]
    effective_height: int

    def __post_init__(self) -> None:
        require_id(self.proposal_id, "proposal_id")
        require(self.action in ACTIONS, f"action must be one of {ACTIONS}")
        require_uint(self.effective_height, "effective_height")
        require((self.member is not None) == (self.action == "add_member"), "member")
        require(bool(self.remove_key) == (self.action == "remove_member"), "remove_key")
        require(bool(self.validators) == (self.action == "set_validators"), "validators")
        if self.validators:
            ValidatorSet(self.validators)


@dataclass(frozen=True, slots=True)
class ApproveBody(Record):
    proposal_id: str


def members(ctx: Ctx) -> list[Member]:
    return [Member.decode(v) for _, v in ctx.scan(b"member/")]


def propose(ctx: Ctx, body: dict[str, Any]) -> None:
    b = ProposeBody.from_value(body)
    if b.effective_height <= ctx.block.height:
        raise Reject("too_late", "effective_height must be after this block")
    if ctx.get(k_proposal(b.proposal_id), Proposal) is not None:
        raise Reject("duplicate", f"proposal {b.proposal_id} exists")
    proposal = Proposal(
        b.proposal_id,
        b.action,
        b.member,
        b.remove_key,
        b.validators,
        b.effective_height,
        (ctx.signer,),
        False,
    )
    ctx.put(k_proposal(b.proposal_id), proposal)
    ctx.put_value(_due_key(b.effective_height, b.proposal_id), b.proposal_id)
    ctx.emit("gov_proposed", proposal_id=b.proposal_id, action=b.action)


def approve(ctx: Ctx, body: dict[str, Any]) -> None:
    b = ApproveBody.from_value(body)
    p = ctx.must(k_proposal(b.proposal_id), Proposal, "unknown_proposal", b.proposal_id)
    if p.executed or p.effective_height <= ctx.block.height:
        raise Reject("closed", "proposal already decided")
    if ctx.signer in p.approvals:
        raise Reject("duplicate", "already approved")
    ctx.put(
        k_proposal(p.proposal_id), replace(p, approvals=tuple(sorted((*p.approvals, ctx.signer))))
    )
    ctx.emit("gov_approved", proposal_id=p.proposal_id)


def _due_key(height: int, proposal_id: str) -> bytes:
    return K_GOV_DUE + height.to_bytes(8, "big") + proposal_id.encode()


def end_of_block(ctx: Ctx) -> None:
    """Execute or expire proposals whose effective height is this block's."""
    limit = K_GOV_DUE + ctx.block.height.to_bytes(8, "big") + b"\xff"
    due = [(k, v) for k, v in ctx.scan(K_GOV_DUE) if k < limit]
    for key, _ in due:
        ctx.delete(key)
        proposal_id = key[len(K_GOV_DUE) + 8 :].decode()
        p = ctx.must(k_proposal(proposal_id), Proposal, "unknown_proposal", proposal_id)
        current = {m.public_key for m in members(ctx)}
        approvals = [a for a in p.approvals if a in current]
        if 3 * len(approvals) > 2 * len(current) and _apply(ctx, p):
            ctx.put(k_proposal(p.proposal_id), replace(p, executed=True))
            ctx.emit("gov_executed", proposal_id=p.proposal_id, action=p.action)
        else:
            ctx.emit("gov_expired", proposal_id=p.proposal_id)


def _apply(ctx: Ctx, p: Proposal) -> bool:
    if p.action == "add_member" and p.member is not None:
        if ctx.get(k_member(p.member.public_key), Member) is not None:
            return False
        ctx.put(k_member(p.member.public_key), p.member)
        return True
    if p.action == "remove_member":
        validators = ValidatorSet.decode(ctx.state.get(K_VALIDATORS) or b"")
        if p.remove_key in validators.validators or ctx.state.get(k_member(p.remove_key)) is None:
            return False  # remove it from the validator set first
        ctx.delete(k_member(p.remove_key))
        return True
    if p.action == "set_validators":
        if any(ctx.state.get(k_member(v)) is None for v in p.validators):
            return False
        ctx.put(K_VALIDATORS, ValidatorSet(p.validators))
        return True
    return False


HANDLERS = {"gov.propose": propose, "gov.approve": approve}
