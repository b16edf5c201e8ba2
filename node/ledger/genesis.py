"""The genesis document: the consortium's starting members, validators and parameters.

Rule kept here: every node and every outside verifier derives the same initial state and
the same genesis block from the same genesis file, so "anyone holding the genesis file"
can check the whole chain from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.ledger import codec, crypto
from node.ledger.block import ZERO_HASH, Block, BlockHeader, receipt_root, tx_root
from node.ledger.certificate import ValidatorSet
from node.ledger.model import Member, k_member
from node.ledger.records import Record, require, require_uint
from node.ledger.state import StateAccumulator
from node.ledger.tx import check_chain_id

Changes = dict[bytes, tuple[bytes | None, bytes | None]]
K_VALIDATORS = b"consortium/validators"
K_PARAMS = b"consortium/params"
K_GENESIS = b"consortium/genesis"


@dataclass(frozen=True, slots=True)
class Params(Record):
    """Chain parameters every replica must share."""

    vm_version: int
    rule_gas_limit: int
    max_block_txs: int

    def __post_init__(self) -> None:
        require_uint(self.vm_version, "vm_version", 2**16)
        require_uint(self.rule_gas_limit, "rule_gas_limit", 10**9)
        require(1 <= self.max_block_txs <= 10_000, "max_block_txs")


@dataclass(frozen=True, slots=True)
class Genesis(Record):
    chain_id: str
    genesis_time_ms: int
    members: tuple[Member, ...]
    validators: tuple[bytes, ...]
    params: Params

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        require_uint(self.genesis_time_ms, "genesis_time_ms")
        keys = [m.public_key for m in self.members]
        require(len(set(keys)) == len(keys), "duplicate member key")
        require(len({m.name for m in self.members}) == len(keys), "duplicate member name")
        ValidatorSet(self.validators)  # validates shape

    @property
    def validator_set(self) -> ValidatorSet:
        return ValidatorSet(self.validators)

    def state(self) -> dict[bytes, bytes]:
        out = {k_member(m.public_key): m.encode() for m in self.members}
        out[K_VALIDATORS] = self.validator_set.encode()
        out[K_PARAMS] = self.params.encode()
        out[K_GENESIS] = crypto.sha256(self.encode())
        return out

    def block(
        self,
    ) -> tuple[Block, dict[bytes, tuple[bytes | None, bytes | None]], StateAccumulator]:
        """Block 0: no transactions; its header commits to the genesis state."""
        changes: Changes = {k: (None, v) for k, v in sorted(self.state().items())}
        acc = StateAccumulator().apply(changes)
        header = BlockHeader(
            chain_id=self.chain_id,
            height=0,
            parent_hash=ZERO_HASH,
            proposer=self.validators[0],
            timestamp_ms=self.genesis_time_ms,
            tx_count=0,
            receipt_count=0,
            tx_root=tx_root(()),
            receipt_root=receipt_root(()),
            state_digest=acc.digest(),
            validator_set_hash=self.validator_set.hash(),
        )
        return Block(header, ()), changes, acc

    def to_json_value(self) -> object:
        return codec.decode(self.encode())
