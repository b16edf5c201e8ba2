"""`alps audit` on a chain with a null block and a validator set change, served by the real
API over loopback (tests/cli/live.py). The chain is built by the node's own LedgerShell
on LevelDB: block 1 carries a governance change that shrinks the validator set to
validator 0 at height 3, block 2 is a PBFT null block (certified over NULL_DIGEST),
and the new set governs from consensus.activation_seq(3, 16, 32) = 49, so blocks 4..48
are certified by validators 1-3 and blocks 49.. by validator 0 alone. The audit must
accept exactly that, and flag a certificate from the wrong set, a null block certified
like a normal one, and a block whose transaction signature was altered."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from consensus.messages import NULL_DIGEST
from consensus.state import activation_seq
from node.genesis_file import write_genesis
from node.ledger import codec, crypto
from node.ledger.block import Block
from node.ledger.certificate import CommitCertificate, CommitSignature, commit_vote_value
from node.ledger.tx import Transaction, make_tx
from node.runtime.ledger_shell import NULL_PROPOSER, LedgerShell, SignatureCache
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.api.fakecontrol import FakeControl
from tests.cli.helpers import run
from tests.cli.live import serve_in_thread, tampering_proxy
from tests.runtime.cluster import CHAIN, T0_MS, deposit, make_genesis

CHANGE_HEIGHT = 3
ACTIVATION = activation_seq(CHANGE_HEIGHT, 16, 32)
TOP = ACTIVATION + 3
NULL_HEIGHT = 2


def certify(signers: list[crypto.Signer], height: int, target: bytes) -> CommitCertificate:
    vote = commit_vote_value(0, height, target)
    sigs = sorted(
        (CommitSignature(s.public_key, s.sign(crypto.DOMAIN_COMMIT, CHAIN, vote)) for s in signers),
        key=lambda c: c.validator,
    )
    return CommitCertificate(height, 0, target, tuple(sigs))


@dataclass
class Built:
    store: ChainStore
    genesis_file: pathlib.Path
    old_signers: list[crypto.Signer]  # validators 1..3
    new_signers: list[crypto.Signer]  # validator 0
    deposit_height: int


def gov(signer: crypto.Signer, tx_type: str, body: dict[str, object]) -> Transaction:
    return make_tx(signer, CHAIN, tx_type, body, 1)


def build_chain(tmp: pathlib.Path) -> Built:
    genesis, validators, user = make_genesis(4)
    kv = LevelDBKV(tmp / "chain")
    shell = LedgerShell(ChainStore(kv), genesis, SignatureCache())
    v0 = validators[0]
    proposal = {
        "proposal_id": "shrink",
        "action": "set_validators",
        "member": None,
        "remove_key": b"",
        "validators": [v0.public_key],
        "effective_height": CHANGE_HEIGHT,
    }
    txs = [gov(v0, "gov.propose", proposal)]
    txs += [gov(v, "gov.approve", {"proposal_id": "shrink"}) for v in validators[1:]]
    old, new = validators[1:], [v0]
    deposit_height = 10
    for h in range(1, TOP + 1):
        signers = new if h >= ACTIVATION else old
        if h == NULL_HEIGHT:
            shell.commit(h, b"", certify(signers, h, NULL_DIGEST))
            continue
        batch = txs if h == 1 else [deposit(user, 1)] if h == deposit_height else []
        built = shell.build(batch, v0.public_key, T0_MS + 1000 * h)
        assert all(r.accepted for r in built.result.receipts), built.result.receipts
        shell.commit(h, built.payload, certify(signers, h, built.block.hash()))
    assert shell.validator_set().validators == (v0.public_key,)
    null = shell.store.block(NULL_HEIGHT)
    assert null is not None and null.header.proposer == NULL_PROPOSER
    genesis_file = tmp / "genesis.json"
    write_genesis(genesis_file, genesis)
    return Built(shell.store, genesis_file, old, new, deposit_height)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Built, str]]:
    built = build_chain(tmp_path_factory.mktemp("audit-chain"))

    async def start(_nursery: trio.Nursery) -> FakeControl:
        return FakeControl(built.store, CHAIN)

    with serve_in_thread(start, built.store.close) as served:
        yield built, served.url


def audit(genesis_file: pathlib.Path, url: str, *extra: str) -> tuple[int, str, str]:
    result = run("audit", "--genesis", genesis_file, "--node", url, *extra)
    return result.exit_code, result.stdout, result.stderr


def test_audit_follows_the_validator_set_change_and_the_null_block(
    chain: tuple[Built, str], tmp_path: pathlib.Path
) -> None:
    built, url = chain
    store_dir = tmp_path / "replayed"
    code, out, err = audit(built.genesis_file, url, "-o", "json", "--store", str(store_dir))
    assert code == 0, err
    summary = json.loads(out.split("audit passed")[0])
    assert summary["ok"] and summary["height"] == TOP and summary["blocks"] == TOP + 1
    assert summary["null_blocks"] == 1 and summary["validator_set_changes"] == 1
    assert summary["certificates"] == TOP and summary["txs"] == 5
    # one receipt per transaction plus the end-of-block receipt of the validator change
    assert summary["receipts"] == 6
    # --store keeps the replayed chain: the same head as the node's
    kv = LevelDBKV(store_dir)
    try:
        head = ChainStore(kv).head()
        node_head = built.store.head()
        assert head is not None and node_head is not None
        assert head.block_hash == node_head.block_hash
    finally:
        kv.close()
    # and a store that is not fresh is refused
    code, _, err = audit(built.genesis_file, url, "--store", str(store_dir))
    assert code == 1 and "not empty" in err


def _raw_swap(height: int, swap: object) -> object:
    def tamper(path: str, body: bytes) -> bytes:
        if path == f"/v1/blocks/{height}/raw":
            doc = codec.decode(body)
            swap(doc)  # type: ignore[operator]
            return codec.encode(doc)
        return body

    return tamper


def test_certificate_from_the_retired_set_is_caught(chain: tuple[Built, str]) -> None:
    built, url = chain
    h = ACTIVATION + 1
    block = built.store.block(h)
    assert block is not None
    stale = certify(built.old_signers, h, block.hash())  # 3 of the old 4: was a quorum

    def swap(doc: dict[str, object]) -> None:
        doc["certificate"] = stale.encode()

    with tampering_proxy(url, _raw_swap(h, swap)) as liar:  # type: ignore[arg-type]
        code, _, err = audit(built.genesis_file, liar)
    assert code == 1
    assert f"MISMATCH block {h}: certificate: unknown_validator" in err


def test_null_block_certified_as_a_normal_block_is_caught(chain: tuple[Built, str]) -> None:
    built, url = chain
    null = built.store.block(NULL_HEIGHT)
    assert null is not None
    wrong = certify(built.old_signers, NULL_HEIGHT, null.hash())

    def swap(doc: dict[str, object]) -> None:
        doc["certificate"] = wrong.encode()

    with tampering_proxy(url, _raw_swap(NULL_HEIGHT, swap)) as liar:  # type: ignore[arg-type]
        code, _, err = audit(built.genesis_file, liar)
    assert code == 1 and f"MISMATCH block {NULL_HEIGHT}: certificate: wrong_block" in err


def test_altered_transaction_stops_the_replay(chain: tuple[Built, str]) -> None:
    built, url = chain
    h = built.deposit_height
    block = built.store.block(h)
    assert block is not None
    (tx,) = block.txs
    body = {**tx.body, "amount": tx.body["amount"] * 1000}
    forged = Transaction(tx.chain_id, tx.tx_type, body, tx.signer, tx.nonce, tx.signature)

    def swap(doc: dict[str, object]) -> None:
        doc["block"] = Block(block.header, (forged,)).encode()

    with tampering_proxy(url, _raw_swap(h, swap)) as liar:  # type: ignore[arg-type]
        code, _, err = audit(built.genesis_file, liar)
    assert code == 1
    assert f"MISMATCH block {h}: replay bad_signature" in err
    assert f"replay stopped at block {h}" in err.splitlines()[-1]


def test_audit_of_another_chain_is_refused(
    chain: tuple[Built, str], tmp_path: pathlib.Path
) -> None:
    built, url = chain
    other = tmp_path / "other.json"
    doc = json.loads(built.genesis_file.read_text())
    doc["chain_id"] = "some-other-chain"
    other.write_text(json.dumps(doc))
    code, _, err = audit(other, url)
    assert code == 1 and "the node serves chain" in err and err.count("\n") == 1
