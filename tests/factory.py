"""Deterministic test chains: block h always makes the same transactions and state changes,
so a test can rebuild the expected state of any prefix independently of the store."""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger import crypto
from node.ledger.block import ZERO_HASH, Block, BlockHeader, Event, Receipt, receipt_root, tx_root
from node.ledger.certificate import (
    CommitCertificate,
    CommitSignature,
    ValidatorSet,
    commit_vote_value,
)
from node.ledger.state import StateAccumulator
from node.ledger.tx import make_tx

CHAIN_ID = "alps-test"
VALIDATOR_SIGNERS = [crypto.Signer(bytes([i + 1]) * 32) for i in range(4)]
VALIDATORS = ValidatorSet(tuple(s.public_key for s in VALIDATOR_SIGNERS))
USER = crypto.Signer(b"\x42" * 32)


def state_changes_for(height: int) -> dict[bytes, bytes | None]:
    """What block `height` writes: a rotating counter, a new key, and a deletion."""
    changes: dict[bytes, bytes | None] = {
        f"k{height % 7}".encode(): f"v{height}".encode(),
        f"h{height}".encode(): b"x" * (height % 50),
    }
    if height >= 3:
        changes[f"h{height - 3}".encode()] = None
    return changes


def expected_state(up_to_height: int) -> dict[bytes, bytes]:
    """The state after blocks 0..up_to_height, computed without the ledger or the store."""
    state: dict[bytes, bytes] = {}
    for h in range(up_to_height + 1):
        for key, value in state_changes_for(h).items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def certify(header: BlockHeader, signers: list[crypto.Signer] | None = None) -> CommitCertificate:
    signers = VALIDATOR_SIGNERS[:3] if signers is None else signers
    value = commit_vote_value(0, header.height, header.hash())
    sigs = tuple(
        CommitSignature(s.public_key, s.sign(crypto.DOMAIN_COMMIT, header.chain_id, value))
        for s in signers
    )
    return CommitCertificate(header.height, 0, header.hash(), sigs)


@dataclass(frozen=True)
class BuiltBlock:
    block: Block
    receipts: list[Receipt]
    changes: dict[bytes, tuple[bytes | None, bytes | None]]
    accumulator: StateAccumulator
    certificate: CommitCertificate


def build_block(
    height: int, parent_hash: bytes, state: dict[bytes, bytes], acc: StateAccumulator
) -> BuiltBlock:
    """Block `height` on top of `state` (mutated in place to the post-block state)."""
    txs = tuple(
        make_tx(USER, CHAIN_ID, "test.write", {"height": height, "i": i}, nonce=height * 4 + i)
        for i in range(1 + height % 3)
    )
    receipts = [
        Receipt(tx.tx_id, True, "ok", "", (Event("wrote", {"height": height}),)) for tx in txs
    ]
    changes: dict[bytes, tuple[bytes | None, bytes | None]] = {}
    for key, new in sorted(state_changes_for(height).items()):
        old = state.get(key)
        if old != new:
            changes[key] = (old, new)
        if new is None:
            state.pop(key, None)
        else:
            state[key] = new
    acc = acc.apply(changes)
    header = BlockHeader(
        chain_id=CHAIN_ID,
        height=height,
        parent_hash=parent_hash,
        proposer=VALIDATORS.primary(height),
        timestamp_ms=1_700_000_000_000 + height * 1000,
        tx_count=len(txs),
        receipt_count=len(receipts),
        tx_root=tx_root(txs),
        receipt_root=receipt_root(receipts),
        state_digest=acc.digest(),
        validator_set_hash=VALIDATORS.hash(),
    )
    return BuiltBlock(Block(header, txs), receipts, changes, acc, certify(header))


def build_chain(n_blocks: int) -> list[BuiltBlock]:
    state: dict[bytes, bytes] = {}
    acc = StateAccumulator()
    parent = ZERO_HASH
    out = []
    for h in range(n_blocks):
        built = build_block(h, parent, state, acc)
        out.append(built)
        parent, acc = built.block.hash(), built.accumulator
    return out
