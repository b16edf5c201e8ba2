"""View change (§4.4): checking certificates and computing NEW-VIEW, as pure functions.

Rule kept here: a VIEW-CHANGE is accepted only if every certificate in it verifies (the
checkpoint proof has 2f+1 matching signed CHECKPOINTs, each prepared certificate has a
PRE-PREPARE signed by that view's primary and 2f matching PREPAREs from other members),
and NEW-VIEW is accepted only if recomputing its re-proposals from its view changes gives
exactly what the primary sent. The new primary and every backup call the same
`compute_new_view`, so they agree on the set O without trusting the primary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus.messages import (
    CHECKPOINT,
    NULL_DIGEST,
    PRE_PREPARE,
    PREPARE,
    Checkpoint,
    Envelope,
    Prepare,
    PrePrepare,
    Verifier,
    ViewChange,
    body_of,
    signature_ok,
)
from node.ledger.certificate import ValidatorSet
from node.ledger.errors import LedgerError


@dataclass(frozen=True, slots=True)
class Context:
    chain_id: str
    verifier: Verifier
    validators: ValidatorSet  # the set governing the window this view change is about
    validators_for: Callable[[int], ValidatorSet]  # the set in force at a sequence number
    checkpoint_interval: int
    watermark_window: int
    genesis_state_digest: bytes


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """The outcome of §4.4's NEW-VIEW rule: start from checkpoint `min_s` (proved by the
    view change at `proof_source`) and re-propose `proposals` = ((seq, digest), ...)."""

    min_s: int
    stable_digest: bytes
    proof_source: int
    proposals: tuple[tuple[int, bytes], ...]


class Invalid(Exception):
    """Internal: a certificate failed; `code` becomes a misbehaviour code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def checked_body(
    ctx: Context, envelope: Envelope, kind: str, validators: ValidatorSet | None = None
) -> object:
    if envelope.kind != kind:
        raise Invalid("wrong_kind")
    if envelope.sender not in (validators or ctx.validators).validators:
        raise Invalid("unknown_signer")
    try:
        body = body_of(envelope)
    except LedgerError as exc:
        raise Invalid("malformed") from exc
    if not signature_ok(ctx.chain_id, envelope, body, ctx.verifier):
        raise Invalid("bad_signature")
    return body


def check_checkpoint_proof(
    ctx: Context, seq: int, state_digest: bytes, proof: tuple[Envelope, ...]
) -> None:
    """§4.3: 2f+1 distinct members signed CHECKPOINT(seq, state_digest). Seq 0 is genesis."""
    if seq == 0:
        if state_digest != ctx.genesis_state_digest or proof:
            raise Invalid("bad_genesis_checkpoint")
        return
    if seq % ctx.checkpoint_interval:
        raise Invalid("checkpoint_not_on_interval")
    validators = ctx.validators_for(seq + 1)  # the set the checkpoint hands over to
    signers: set[bytes] = set()
    for envelope in proof:
        body = checked_body(ctx, envelope, CHECKPOINT, validators)
        assert isinstance(body, Checkpoint)
        if body.seq != seq or body.state_digest != state_digest:
            raise Invalid("checkpoint_mismatch")
        if envelope.sender in signers:
            raise Invalid("duplicate_signer")
        signers.add(envelope.sender)
    if len(signers) < validators.quorum:
        raise Invalid("checkpoint_no_quorum")


def check_view_change(ctx: Context, vc: ViewChange) -> None:
    """Raise Invalid unless every certificate in `vc` verifies (§4.4)."""
    check_checkpoint_proof(ctx, vc.stable_seq, vc.stable_digest, vc.checkpoint_proof)
    last_seq = vc.stable_seq
    for proof in vc.prepared:
        pre_prepare = checked_body(ctx, proof.pre_prepare, PRE_PREPARE)
        assert isinstance(pre_prepare, PrePrepare)
        if proof.pre_prepare.payload:
            raise Invalid("payload_in_proof")
        if not last_seq < pre_prepare.seq <= vc.stable_seq + ctx.watermark_window:
            raise Invalid("prepared_seq_out_of_range")
        last_seq = pre_prepare.seq
        if pre_prepare.view >= vc.view:
            raise Invalid("prepared_view_too_high")
        primary = ctx.validators.primary(pre_prepare.view)
        if proof.pre_prepare.sender != primary:
            raise Invalid("pre_prepare_not_from_primary")
        signers: set[bytes] = set()
        for envelope in proof.prepares:
            prepare = checked_body(ctx, envelope, PREPARE)
            assert isinstance(prepare, Prepare)
            if (prepare.view, prepare.seq, prepare.digest) != (
                pre_prepare.view,
                pre_prepare.seq,
                pre_prepare.digest,
            ):
                raise Invalid("prepare_mismatch")
            if envelope.sender == primary or envelope.sender in signers:
                raise Invalid("duplicate_signer")
            signers.add(envelope.sender)
        if len(signers) < 2 * ctx.validators.f:
            raise Invalid("prepared_no_quorum")


def compute_new_view(view_changes: list[ViewChange]) -> NewViewPlan:
    """§4.4: min-s is the highest stable checkpoint among the view changes, max-s the highest
    prepared seq; each seq between gets the digest prepared in the highest view, or a null
    request. Inputs must already be checked."""
    if not view_changes:
        raise ValueError("no view changes")
    proof_source = max(range(len(view_changes)), key=lambda i: view_changes[i].stable_seq)
    min_s = view_changes[proof_source].stable_seq
    best: dict[int, tuple[int, bytes]] = {}
    for vc in view_changes:
        for proof in vc.prepared:
            pre_prepare = body_of(proof.pre_prepare)
            assert isinstance(pre_prepare, PrePrepare)
            if pre_prepare.seq <= min_s:
                continue
            known = best.get(pre_prepare.seq)
            if known is None or pre_prepare.view > known[0]:
                best[pre_prepare.seq] = (pre_prepare.view, pre_prepare.digest)
    max_s = max(best, default=min_s)
    proposals = tuple(
        (seq, best[seq][1] if seq in best else NULL_DIGEST) for seq in range(min_s + 1, max_s + 1)
    )
    return NewViewPlan(min_s, view_changes[proof_source].stable_digest, proof_source, proposals)
