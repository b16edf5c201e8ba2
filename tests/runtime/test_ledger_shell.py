"""LedgerShell: building, judging, committing and serving blocks on a real LevelDB store."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from consensus.messages import NULL_DIGEST
from node.ledger import crypto
from node.ledger.block import Block, tx_root
from node.ledger.certificate import CommitCertificate, CommitSignature, commit_vote_value
from node.ledger.errors import LedgerError
from node.ledger.tx import Transaction
from node.runtime.ledger_shell import NULL_PROPOSER, LedgerShell, SignatureCache
from node.runtime.mempool import Mempool
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.runtime.cluster import CHAIN, T0_MS, deposit, make_genesis

DRIFT = 10_000


@pytest.fixture
def setup(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    genesis, validators, user = make_genesis(4)
    kv = LevelDBKV(tmp_path / "db")
    shell = LedgerShell(ChainStore(kv), genesis, SignatureCache())
    yield shell, validators, user
    kv.close()


def cert_for(validators, height: int, block_hash: bytes) -> CommitCertificate:  # type: ignore[no-untyped-def]
    value = commit_vote_value(0, height, block_hash)
    sigs = tuple(
        sorted(
            (
                CommitSignature(v.public_key, v.sign(crypto.DOMAIN_COMMIT, CHAIN, value))
                for v in validators[:3]
            ),
            key=lambda s: s.validator,
        )
    )
    return CommitCertificate(height, 0, block_hash, sigs)


def test_built_block_is_judged_valid_and_commits_without_reexecution(setup) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    primary = validators[0].public_key
    built = shell.build([deposit(user, 1), deposit(user, 2)], primary, T0_MS + 1000)
    assert built.block.header.height == 1 and built.block.header.tx_count == 2
    assert shell.judge(1, built.payload, primary, T0_MS + 1000, DRIFT).valid
    calls = []
    real = shell._execute
    shell._execute = lambda *a: calls.append(a) or real(*a)
    _, result = shell.commit(1, built.payload, cert_for(validators, 1, built.block.hash()))
    assert calls == []  # the judged execution was reused
    assert shell.height == 1 and all(r.accepted for r in result.receipts)
    assert shell.store.certificate(1) is not None


def test_future_nonce_is_deferred_not_burnt(setup) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    built = shell.build([deposit(user, 1), deposit(user, 3)], validators[0].public_key, T0_MS)
    assert [tx.nonce for tx in built.block.txs] == [1]
    assert [tx.nonce for tx in built.deferred] == [3]


def _tampered(shell, built, **changes) -> bytes:  # type: ignore[no-untyped-def]
    header = dataclasses.replace(built.block.header, **changes)
    return Block(header, built.block.txs).encode()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"height": 2}, "height"),
        ({"parent_hash": b"\x01" * 32}, "wrong parent"),
        ({"timestamp_ms": T0_MS - 1}, "before its parent"),
        ({"timestamp_ms": T0_MS + 60_000}, "future"),
        ({"state_digest": b"\x02" * 32}, "state_digest"),
        ({"receipt_root": b"\x03" * 32}, "receipt_root"),
    ],
)
def test_judge_refuses_tampered_headers(setup, change, why) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    primary = validators[0].public_key
    built = shell.build([deposit(user, 1)], primary, T0_MS + 10)
    verdict = shell.judge(1, _tampered(shell, built, **change), primary, T0_MS + 10, DRIFT)
    assert verdict.ready and why in verdict.why
    assert shell.height == 0


def test_judge_refuses_garbage_wrong_proposer_and_forged_signatures(setup) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    primary = validators[0].public_key
    assert shell.judge(1, b"\x93garbage", primary, T0_MS, DRIFT).why.startswith("undecodable")
    built = shell.build([deposit(user, 1)], primary, T0_MS)
    assert "primary" in shell.judge(1, built.payload, validators[1].public_key, T0_MS, DRIFT).why
    tx = built.block.txs[0]
    forged = dataclasses.replace(tx, signature=bytes(64))
    fresh = LedgerShell(shell.store, shell.genesis, SignatureCache())  # no cached verdicts
    payload = Block(built.block.header, (forged,)).encode()
    assert "tx_root" in fresh.judge(1, payload, primary, T0_MS, DRIFT).why  # body != header's
    forged_header = dataclasses.replace(built.block.header, tx_root=tx_root((forged,)))
    payload = Block(forged_header, (forged,)).encode()
    assert "bad_signature" in fresh.judge(1, payload, primary, T0_MS, DRIFT).why


def test_a_body_its_header_does_not_commit_to_has_no_digest(setup) -> None:  # type: ignore[no-untyped-def]
    """Found by `make chaos` (a garbage-sending primary): the consensus digest is the
    header hash, so the real header with another body must not digest to it, or a backup
    that got the altered copy accepts it, sees the quorum commit the real block and then
    fails executing its own copy."""
    shell, validators, user = setup
    primary = validators[0].public_key
    built = shell.build([deposit(user, 1), deposit(user, 2)], primary, T0_MS)
    assert shell.digest(built.payload) == built.block.hash()
    reordered = Block(built.block.header, built.block.txs[::-1]).encode()
    other = Block(built.block.header, (deposit(user, 1), deposit(user, 3))).encode()
    for payload in (reordered, other):
        with pytest.raises(LedgerError):
            shell.digest(payload)


def test_null_block_is_deterministic_and_served_as_empty_payload(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shell, validators, _ = setup
    other_kv = LevelDBKV(tmp_path / "other")
    other = LedgerShell(ChainStore(other_kv), shell.genesis, SignatureCache())
    a, b = shell.null_block(1), other.null_block(1)
    assert a.block.hash() == b.block.hash() and a.block.header.proposer == NULL_PROPOSER
    cert = cert_for(validators, 1, NULL_DIGEST)
    shell.commit(1, b"", cert)
    payload, served_cert = shell.served_payload(1)
    assert payload == b"" and served_cert == cert
    assert shell.store.block(1).hash() == a.block.hash()
    other_kv.close()


def test_replayed_transaction_does_not_hide_the_executed_one_in_the_index(setup) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    primary = validators[0].public_key
    tx = deposit(user, 1)
    built = shell.build([tx], primary, T0_MS)
    shell.commit(1, built.payload, cert_for(validators, 1, built.block.hash()))
    again = shell.build([tx], primary, T0_MS + 1)  # a faulty primary re-includes it
    assert again.block.txs == (tx,)
    _, result = shell.commit(2, again.payload, cert_for(validators, 2, again.block.hash()))
    assert result.receipts[0].code == "replay"
    height, _, receipt = shell.receipt(tx.tx_id)
    assert height == 1 and receipt.accepted


def test_store_from_another_genesis_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    genesis, _, _ = make_genesis(4)
    other, _, _ = make_genesis(1)
    kv = LevelDBKV(tmp_path / "db")
    LedgerShell(ChainStore(kv), genesis, SignatureCache())
    with pytest.raises(Exception, match="genesis"):
        LedgerShell(ChainStore(kv), other, SignatureCache())
    kv.close()


def test_a_backup_takes_proposal_transactions_from_its_mempool(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shell, validators, user = setup
    txs = [deposit(user, n) for n in (1, 2, 3)]
    built = shell.build(txs, validators[0].public_key, T0_MS)
    pool = Mempool()
    # The backup decoded the first two from a forwarded batch; the third it never saw.
    held = [Transaction.decode_tx(tx.encode()) for tx in txs[:2]]
    pool.add_batch([(tx.tx_id, tx) for tx in held], 0, local=False)
    genesis, _, _ = make_genesis(4)
    kv = LevelDBKV(tmp_path / "backup")
    backup = LedgerShell(ChainStore(kv), genesis, SignatureCache(), pool.by_wire)
    try:
        block = backup.decode_block(built.payload)
        assert block == built.block
        assert block.txs[0] is held[0] and block.txs[1] is held[1]
        assert block.txs[2] is not txs[2]  # decoded from the payload
        assert backup.judge(1, built.payload, validators[0].public_key, T0_MS, DRIFT).valid
    finally:
        kv.close()


def _shell(tmp_path: pathlib.Path, name: str, genesis) -> tuple[LedgerShell, LevelDBKV]:  # type: ignore[no-untyped-def]
    kv = LevelDBKV(tmp_path / name)
    return LedgerShell(ChainStore(kv), genesis, SignatureCache()), kv


def test_pipelined_blocks_execute_on_their_uncommitted_parent(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The primary builds block 2 on its uncommitted block 1 (nonce 3 only runs after 1-2);
    a backup judges 1, then 2 on top of its judged 1; both commit 1 then 2, reusing every
    execution, and end with the state of a node that executed them one by one."""
    shell, validators, user = setup
    primary = validators[0].public_key
    backup, backup_kv = _shell(tmp_path, "backup", shell.genesis)
    serial, serial_kv = _shell(tmp_path, "serial", shell.genesis)
    b1 = shell.build([deposit(user, 1), deposit(user, 2)], primary, T0_MS + 10)
    assert not shell.executed(b"\x07" * 32) and shell.executed(b1.block.hash())
    b2 = shell.build([deposit(user, 3)], primary, T0_MS + 20, b1.block.hash())
    assert b2.block.header.parent_hash == b1.block.hash() and not b2.deferred
    assert b2.block.header.height == 2 and shell.height == 0
    first = backup.judge(2, b2.payload, primary, T0_MS + 20, DRIFT)
    assert not first.ready and first.parent_hash == b1.block.hash()  # parent not judged yet
    assert backup.judge(1, b1.payload, primary, T0_MS + 20, DRIFT).valid
    verdict = backup.judge(2, b2.payload, primary, T0_MS + 20, DRIFT)
    assert verdict.valid and verdict.parent_hash == b1.block.hash()

    for node in (shell, backup):
        calls = []
        real = node._execute
        node._execute = lambda *a, real=real, calls=calls: calls.append(a) or real(*a)
        for built in (b1, b2):
            h = built.block.header.height
            node.commit(h, built.payload, cert_for(validators, h, built.block.hash()))
        assert calls == []  # both executions were reused
    for h, built in ((1, b1), (2, b2)):
        serial.commit(h, built.payload, cert_for(validators, h, built.block.hash()))
    states = [dict(s.store.scan_state(b"")) for s in (shell, backup, serial)]
    assert states[0] == states[1] == states[2]
    assert shell.head_hash() == backup.head_hash() == serial.head_hash() == b2.block.hash()
    backup_kv.close()
    serial_kv.close()


def test_a_speculative_branch_dies_when_another_block_commits_under_it(setup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A backup judged 1 and then 2 on top of it, but another block 1' commits (a view
    change): 2 is no longer executable here, its child is not ready, and 2 itself is now
    refused as the child of the committed head it does not extend."""
    shell, validators, user = setup
    primary, next_primary = validators[0].public_key, validators[1].public_key
    backup, backup_kv = _shell(tmp_path, "backup", shell.genesis)
    b1 = shell.build([deposit(user, 1)], primary, T0_MS + 10)
    b2 = shell.build([deposit(user, 2)], primary, T0_MS + 20, b1.block.hash())
    assert backup.judge(1, b1.payload, primary, T0_MS + 20, DRIFT).valid
    assert backup.judge(2, b2.payload, primary, T0_MS + 20, DRIFT).valid
    other, other_kv = _shell(tmp_path, "other", shell.genesis)
    b1x = other.build([deposit(user, 1)], next_primary, T0_MS + 15)
    assert b1x.block.hash() != b1.block.hash()
    backup.commit(1, b1x.payload, cert_for(validators, 1, b1x.block.hash()))
    assert not backup.executed(b2.block.hash()) and not backup.executed(b1.block.hash())
    assert "wrong parent" in backup.judge(2, b2.payload, primary, T0_MS + 20, DRIFT).why
    b3 = shell.build([deposit(user, 3)], primary, T0_MS + 30, b2.block.hash())
    assert not backup.judge(3, b3.payload, primary, T0_MS + 30, DRIFT).ready
    with pytest.raises(LedgerError):
        backup.build([deposit(user, 2)], next_primary, T0_MS + 40, b1.block.hash())
    backup_kv.close()
    other_kv.close()


def test_a_block_on_an_uncommitted_parent_leaves_out_its_ancestors_transactions(setup) -> None:  # type: ignore[no-untyped-def]
    """Found by `make chaos` (seed 7): a new primary built on the carried, uncommitted
    block 102 from a mempool still holding 102's transactions, so 103 repeated them (as
    rejected replays). A transaction in an uncommitted ancestor is never built again."""
    shell, validators, user = setup
    primary = validators[0].public_key
    b1 = shell.build([deposit(user, 1), deposit(user, 2)], primary, T0_MS + 10)
    b2 = shell.build(
        [deposit(user, 1), deposit(user, 2), deposit(user, 3)], primary, T0_MS + 20, b1.block.hash()
    )
    assert [tx.nonce for tx in b2.block.txs] == [3] and not b2.deferred
    b3 = shell.build([deposit(user, 1), deposit(user, 4)], primary, T0_MS + 30, b2.block.hash())
    assert [tx.nonce for tx in b3.block.txs] == [4]
