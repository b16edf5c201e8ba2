"""A single-node ledger driver for tests: genesis, signed transactions, blocks executed by
the real executor and committed through the real ChainStore (over the in-memory KV)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import contracts_vm
from node.ledger import codec, crypto
from node.ledger.app import BlockResult, execute_block
from node.ledger.block import Block, BlockHeader, Receipt
from node.ledger.context import BlockInfo
from node.ledger.genesis import Genesis, Params
from node.ledger.model import Member, k_nonce
from node.ledger.records import Record
from node.ledger.tx import Transaction, make_tx
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report, possession_value
from node.store.chain import ChainStore
from node.store.kv import MemoryKV

CHAIN = "alps-ledger-test"


def signer_for(name: str) -> crypto.Signer:
    return crypto.Signer(crypto.sha256(name.encode()))


class Harness:
    def __init__(self, members: dict[str, tuple[str, ...]], t0_ms: int) -> None:
        self.signers = {name: signer_for(name) for name in members}
        self.key = {name: s.public_key for name, s in self.signers.items()}
        validators = tuple(signer_for(f"validator-{i}").public_key for i in range(4))
        genesis = Genesis(
            CHAIN,
            t0_ms,
            tuple(Member(n, self.key[n], tuple(sorted(r))) for n, r in sorted(members.items())),
            validators,
            Params(contracts_vm.VM_VERSION, 2_000_000, 10_000),
        )
        self.genesis = genesis
        self.store = ChainStore(MemoryKV())
        block0, changes, acc = genesis.block()
        self.store.commit_block(block0, [], None, changes, acc)
        self.time_ms = t0_ms
        self.queue: list[Transaction] = []
        self.device_seq: Counter[bytes] = Counter()
        self.device_prev: dict[bytes, bytes] = {}

    # -- building transactions -------------------------------------------------------------

    def tx(self, name: str, tx_type: str, body: dict[str, Any] | Record) -> Transaction:
        if isinstance(body, Record):
            body = body.to_value()
        key = self.key[name]
        raw = self.store.get(k_nonce(key))
        queued = sum(1 for t in self.queue if t.signer == key)
        nonce = (codec.decode(raw) if raw else 0) + queued + 1
        tx = make_tx(self.signers[name], CHAIN, tx_type, body, nonce)
        self.queue.append(tx)
        return tx

    def enrol(self, owner: str, device: crypto.Signer, sku: str) -> Transaction:
        proof = device.sign(
            crypto.DOMAIN_POSSESSION, CHAIN, possession_value(device.public_key, self.key[owner])
        )
        return self.tx(
            owner, "device.enrol", {"device": device.public_key, "sku": sku, "proof": proof}
        )

    def usage(
        self,
        device: crypto.Signer,
        sku: str,
        territory: str,
        registers: dict[str, int],
        seq: int | None = None,
    ) -> Transaction:
        d = device.public_key
        seq = self.device_seq[d] + 1 if seq is None else seq
        report = UsageReport(
            sku, territory, self.time_ms, self.device_prev.get(d, GENESIS_PREV), registers
        )
        tx = make_usage_report(device, CHAIN, seq, report)
        self.device_seq[d] = max(self.device_seq[d], seq)
        self.device_prev[d] = tx.tx_id
        self.queue.append(tx)
        return tx

    # -- blocks ------------------------------------------------------------------------------

    def block(self, time_ms: int | None = None) -> list[Receipt]:
        """Execute and commit the queued transactions at `time_ms` (default: now + 1 s)."""
        self.time_ms = self.time_ms + 1000 if time_ms is None else time_ms
        txs, self.queue = self.queue, []
        height = self.store.next_height
        info = BlockInfo(CHAIN, height, self.time_ms)
        result = execute_block(self.store, self.store.accumulator(), info, txs)
        self.commit(result, txs)
        self.last_result = result
        return list(result.receipts)

    def commit(self, result: BlockResult, txs: list[Transaction]) -> None:
        head = self.store.head()
        assert head is not None
        header = BlockHeader(
            CHAIN,
            self.store.next_height,
            head.block_hash,
            self.genesis.validators[0],
            self.time_ms,
            len(txs),
            result.receipt_count,
            result.tx_root,
            result.receipt_root,
            result.state_digest,
            result.validator_set.hash(),
        )
        self.store.commit_block(
            Block(header, tuple(txs)), result.receipts, None, result.changes, result.accumulator
        )

    def ok(self, time_ms: int | None = None) -> list[Receipt]:
        receipts = self.block(time_ms)
        bad = [(r.code, r.detail) for r in receipts if not r.accepted]
        assert not bad, bad
        return receipts

    def get(self, key: bytes, cls: type[Any]) -> Any:
        raw = self.store.get(key)
        return None if raw is None else cls.decode(raw)

    def value(self, key: bytes) -> Any:
        raw = self.store.get(key)
        return None if raw is None else codec.decode(raw)

    def state(self) -> dict[bytes, bytes]:
        return dict(self.store.scan_state(b""))
