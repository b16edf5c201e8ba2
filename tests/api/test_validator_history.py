"""Following validator membership (node/api/finality.py): the history of set changes is
checked from the genesis set on, each change proven by the sets before it, the new set
governs from consensus.activation_seq on, and a certificate by the wrong set for a height
is rejected. Certificates here are made by the set the test computes itself."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from consensus import Config, Executed, Replica, activation_seq
from node.api.app import make_app
from node.api.finality import ValidatorHistory
from node.api.proofs import (
    SetChangeDoc,
    build_tx_proof,
    build_validator_history,
    history_from_json,
    validator_set_at,
    verify_tx_proof,
    verify_validator_history,
)
from node.ledger.block import BlockHeader
from node.ledger.certificate import CHECKPOINT_INTERVAL, WATERMARK_WINDOW, ValidatorSet
from node.ledger.errors import ProofError
from tests.api.fakecontrol import FakeControl
from tests.api.proof_chains import (
    ACTIVATION,
    CHANGE_HEIGHT,
    LAST_HEIGHT,
    NEW_SET,
    NEW_SIGNERS,
    OLD_SIGNERS,
    MembershipChain,
    build_membership_chain,
    certify_digest,
)
from tests.ledger.harness import CHAIN, signer_for


@pytest.fixture(scope="module")
def mchain() -> Iterator[MembershipChain]:
    yield build_membership_chain()


def history(chain: MembershipChain) -> list[SetChangeDoc]:
    return build_validator_history(chain.h.store)


def test_the_change_is_found_and_activates_at_the_protocol_height(mchain: MembershipChain) -> None:
    assert (CHECKPOINT_INTERVAL, WATERMARK_WINDOW) == (16, 32)
    assert ACTIVATION == activation_seq(CHANGE_HEIGHT, 16, 32) == 49
    (change,) = history(mchain)
    assert change.height == CHANGE_HEIGHT and change.validators == NEW_SET
    assert len(change.descendants) == 1  # the change block is null-certified
    genesis = mchain.h.genesis
    old, new = genesis.validator_set, ValidatorSet(NEW_SET)
    for height, want in ((1, old), (CHANGE_HEIGHT, old), (ACTIVATION - 1, old)):
        assert validator_set_at([change], genesis, height) == want
    for height in (ACTIVATION, LAST_HEIGHT, 10**6):
        assert validator_set_at([change], genesis, height) == new
    verified = verify_validator_history([change], genesis)
    assert verified.latest_at(CHANGE_HEIGHT - 1) == old and verified.latest_at(CHANGE_HEIGHT) == new


def test_proofs_on_both_sides_of_the_activation_verify(mchain: MembershipChain) -> None:
    sets = verify_validator_history(history(mchain), mchain.h.genesis)
    for height, tx in mchain.txs.items():
        proof = build_tx_proof(mchain.h.store, tx.tx_id)
        assert proof is not None
        verified = verify_tx_proof(proof, CHAIN, sets)
        assert verified.height == height and verified.tx == tx
        signers = OLD_SIGNERS if height < ACTIVATION else NEW_SIGNERS
        assert verified.signers == tuple(s.public_key for s in signers)
        with pytest.raises(ProofError):  # the genesis set alone no longer fits
            verify_tx_proof(proof, CHAIN, mchain.h.genesis.validator_set)


def _recertified(chain: MembershipChain, height: int, signers: list) -> object:
    proof = build_tx_proof(chain.h.store, chain.txs[height].tx_id)
    assert proof is not None
    header = BlockHeader.decode(proof.header)
    forged = certify_digest(header, header.hash(), signers)
    return dataclasses.replace(proof, certificate=forged.encode())


def test_a_certificate_by_the_old_set_after_activation_is_rejected(
    mchain: MembershipChain,
) -> None:
    sets = verify_validator_history(history(mchain), mchain.h.genesis)
    for height in (ACTIVATION, LAST_HEIGHT):
        with pytest.raises(ProofError, match="unknown_validator"):  # validator-0 retired
            verify_tx_proof(_recertified(mchain, height, OLD_SIGNERS), CHAIN, sets)  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="unknown_validator"):  # validator-4 not yet in
        verify_tx_proof(_recertified(mchain, ACTIVATION - 1, NEW_SIGNERS), CHAIN, sets)  # type: ignore[arg-type]


def test_a_hidden_change_is_detected(mchain: MembershipChain) -> None:
    proof = build_tx_proof(mchain.h.store, mchain.txs[LAST_HEIGHT].tx_id)
    assert proof is not None
    empty = verify_validator_history([], mchain.h.genesis)
    with pytest.raises(ProofError, match="validator_history"):
        verify_tx_proof(proof, CHAIN, empty)


def _self_appointed(chain: MembershipChain, c: SetChangeDoc) -> SetChangeDoc:
    """The new set certifies its own appointment: headers up to its activation height."""
    store = chain.h.store
    headers = []
    for height in range(CHANGE_HEIGHT + 1, ACTIVATION + 1):
        block = store.block(height)
        assert block is not None
        headers.append(block.header)
    cert = certify_digest(headers[-1], headers[-1].hash(), NEW_SIGNERS)
    return dataclasses.replace(
        c, descendants=tuple(h.encode() for h in headers), certificate=cert.encode()
    )


def _outsiders(chain: MembershipChain, c: SetChangeDoc) -> SetChangeDoc:
    header = BlockHeader.decode(c.descendants[-1])
    outsiders = [signer_for(f"outsider-{i}") for i in range(3)]
    return dataclasses.replace(
        c, certificate=certify_digest(header, header.hash(), outsiders).encode()
    )


HISTORY_TAMPERINGS: dict[str, Callable[[MembershipChain, SetChangeDoc], list[SetChangeDoc]]] = {
    "validators_swapped": lambda m, c: [
        dataclasses.replace(c, validators=(*c.validators[:-1], signer_for("outsider-0").public_key))
    ],
    "height_moved": lambda m, c: [dataclasses.replace(c, height=c.height + 1)],
    "descendants_dropped": lambda m, c: [dataclasses.replace(c, descendants=())],
    "certificate_by_outsiders": lambda m, c: [_outsiders(m, c)],
    "self_appointed": lambda m, c: [_self_appointed(m, c)],
    "listed_twice": lambda m, c: [c, c],
    "no_change": lambda m, c: [
        dataclasses.replace(c, validators=m.h.genesis.validators),
    ],
}


@pytest.mark.parametrize("name", sorted(HISTORY_TAMPERINGS))
def test_tampered_histories_are_rejected(mchain: MembershipChain, name: str) -> None:
    (change,) = history(mchain)
    tampered = HISTORY_TAMPERINGS[name](mchain, change)
    with pytest.raises(ProofError):
        verify_validator_history(tampered, mchain.h.genesis)


def test_history_wire_form(mchain: MembershipChain) -> None:
    doc = {"chain_id": CHAIN, "changes": [c.to_json() for c in history(mchain)]}
    assert history_from_json(json.loads(json.dumps(doc))) == history(mchain)
    for bad in (None, [], {}, {"changes": "x"}, {"changes": [{"height": "3"}]}):
        with pytest.raises(ProofError):
            history_from_json(bad)


def test_later_changes_follow_the_replica_epochs() -> None:
    """Changes at 3, 17 and 20: 17 and 20 activate at the same checkpoint (65), so 20's
    set replaces 17's before it ever governs (consensus/replica.py `_on_executed`)."""
    sets = [ValidatorSet((signer_for(f"s{i}").public_key,)) for i in range(4)]
    h = ValidatorHistory(sets[0], ((3, sets[1]), (17, sets[2]), (20, sets[3])))
    a3, a17 = activation_seq(3, 16, 32), activation_seq(17, 16, 32)
    assert (a3, a17, activation_seq(20, 16, 32)) == (49, 65, 65)
    governing = [h.set_for(x) for x in (48, 49, 64, 65, 1000)]
    assert governing == [sets[0], sets[1], sets[1], sets[3], sets[3]]
    latest = [h.latest_at(x) for x in (2, 3, 17, 19, 20)]
    assert latest == [sets[0], sets[1], sets[2], sets[2], sets[3]]


def test_the_verifier_agrees_with_the_replica_on_every_height() -> None:
    """The real PBFT replica, told of the same changes, governs each height with the set
    the verifier derives (consensus.Replica.set_for)."""
    keys = [signer_for(f"v{i}") for i in range(7)]
    genesis = ValidatorSet(tuple(k.public_key for k in keys[:4]))
    changes = {
        seq: ValidatorSet(tuple(k.public_key for k in keys[first : first + 4]))
        for seq, first in ((3, 1), (17, 2), (20, 3), (40, 2))
    }
    config = Config("c", keys[0], genesis, CHECKPOINT_INTERVAL, WATERMARK_WINDOW)
    replica = Replica(config, None)
    for seq in range(1, 45):
        replica.step(Executed(seq, b"\x01" * 32, changes.get(seq)))
    verifier = ValidatorHistory(genesis, tuple(sorted(changes.items())))
    assert all(replica.set_for(x) == verifier.set_for(x) for x in range(1, 300))
    expected = [genesis, changes[3], changes[20], changes[40]]  # 17's set never governs
    assert [verifier.set_for(x) for x in (48, 49, 65, 81)] == expected


@pytest.mark.trio
async def test_history_over_http(mchain: MembershipChain) -> None:
    transport = httpx.ASGITransport(app=make_app(FakeControl(mchain.h.store, CHAIN)))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        answer = await c.get("/v1/validator-history")
    assert answer.status_code == 200 and answer.json()["chain_id"] == CHAIN
    sets = verify_validator_history(history_from_json(answer.json()), mchain.h.genesis)
    assert sets.set_for(ACTIVATION) == ValidatorSet(NEW_SET)
