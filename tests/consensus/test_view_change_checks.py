"""§4.4 VIEW-CHANGE certificate checks, table-driven: each forgery has its own code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consensus.messages import (
    Checkpoint,
    Envelope,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
)
from consensus.viewchange import Context, Invalid, check_view_change
from node.ledger import crypto
from tests.consensus.harness import CHAIN, Net, decode

DIGEST = crypto.sha256(b"block")


def env(net: Net, signer: int, body: object) -> Envelope:
    return decode(net.forge(signer, body))[0]


def proof(
    net: Net,
    view: int = 0,
    seq: int = 1,
    preparers: tuple[int, ...] = (1, 2),
    primary: int = 0,
    digest: bytes = DIGEST,
) -> PreparedProof:
    prepares = tuple(env(net, i, Prepare(view, seq, digest)) for i in preparers)
    return PreparedProof(env(net, primary, PrePrepare(view, seq, digest)), prepares)


def checkpoint_proof(net: Net, signers: tuple[int, ...], seq: int = 4) -> tuple[Envelope, ...]:
    return tuple(env(net, i, Checkpoint(seq, b"state")) for i in signers)


def context(net: Net) -> Context:
    return Context(CHAIN, crypto.verify_raw, net.vset, lambda seq: net.vset, 4, 8, b"")


def with_bad_signature(p: PreparedProof) -> PreparedProof:
    first = p.prepares[0]
    forged = Envelope(first.kind, first.body, first.sender, b"\x00" * 64, b"")
    return PreparedProof(p.pre_prepare, (forged, *p.prepares[1:]))


CASES: list[tuple[str, Callable[[Net], ViewChange], str | None]] = [
    ("honest, nothing prepared", lambda net: ViewChange(1, 0, b"", (), ()), None),
    (
        "honest, one prepared certificate",
        lambda net: ViewChange(1, 0, b"", (), (proof(net),)),
        None,
    ),
    (
        "honest, stable checkpoint proved",
        lambda net: ViewChange(1, 4, b"state", checkpoint_proof(net, (0, 1, 2)), ()),
        None,
    ),
    (
        "checkpoint proof short of 2f+1",
        lambda net: ViewChange(1, 4, b"state", checkpoint_proof(net, (0, 1)), ()),
        "checkpoint_no_quorum",
    ),
    (
        "checkpoint proof for another digest",
        lambda net: ViewChange(1, 4, b"other", checkpoint_proof(net, (0, 1, 2)), ()),
        "checkpoint_mismatch",
    ),
    (
        "claimed checkpoint without proof",
        lambda net: ViewChange(1, 4, b"state", (), ()),
        "checkpoint_no_quorum",
    ),
    (
        "genesis with a made-up digest",
        lambda net: ViewChange(1, 0, b"lie", (), ()),
        "bad_genesis_checkpoint",
    ),
    (
        "only f prepares",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, preparers=(1,)),)),
        "prepared_no_quorum",
    ),
    (
        "same preparer twice",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, preparers=(1, 1)),)),
        "duplicate_signer",
    ),
    (
        "primary counted as preparer",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, preparers=(0, 1)),)),
        "duplicate_signer",
    ),
    (
        "pre-prepare not from that view's primary",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, primary=2, preparers=(1, 3)),)),
        "pre_prepare_not_from_primary",
    ),
    (
        "prepared in a view not below the new one",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, view=1, primary=1, preparers=(2, 3)),)),
        "prepared_view_too_high",
    ),
    (
        "prepared seq beyond the window",
        lambda net: ViewChange(1, 0, b"", (), (proof(net, seq=9),)),
        "prepared_seq_out_of_range",
    ),
    (
        "forged prepare signature",
        lambda net: ViewChange(1, 0, b"", (), (with_bad_signature(proof(net)),)),
        "bad_signature",
    ),
]


@pytest.mark.parametrize("name,build,code", CASES, ids=[c[0] for c in CASES])
def test_s4_4_view_change_certificates(
    name: str, build: Callable[[Net], ViewChange], code: str | None
) -> None:
    net = Net()
    vc = build(net)
    if code is None:
        check_view_change(context(net), vc)
    else:
        with pytest.raises(Invalid) as info:
            check_view_change(context(net), vc)
        assert info.value.code == code, name
