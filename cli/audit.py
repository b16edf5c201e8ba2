"""`alps audit`: replay the whole chain from genesis in a fresh store and compare.

Rules kept here:
- Nothing the node says is trusted. Blocks come as their stored bytes
  (GET /v1/blocks/<h>/raw); every block must extend the previous one, carry a commit
  certificate that 2f+1 validators of the set in force signed, and re-execute
  (`node.ledger.app.replay_block`: every signature checked, every rule re-run in the VM)
  to exactly the roots, state digest and validator set its header claims. What the node
  serves to clients (receipts, block JSON, statements) must equal what the replay made.
- The validator set in force starts as the genesis set; a block that changes
  `validator_set_hash` makes the new set govern from
  `consensus.activation_seq(height, checkpoint_interval, watermark_window)`, as replicas do.
- A null block (PBFT null request: proposer all zero, no transactions, its parent's
  timestamp) is certified over `consensus.messages.NULL_DIGEST`, not its header hash.
- Statements are compared once the replay has caught up with the node; a statement that
  changed while the node's answer was being fetched is compared again after replaying
  further (bounded rounds), so a live chain does not cause false alarms.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from cli.client import NodeClient, NodeError
from cli.common import node_options, output_option
from cli.views import all_receipts
from consensus.messages import NULL_DIGEST
from consensus.state import activation_seq
from node.genesis_file import read_genesis
from node.ledger.app import BlockResult, replay_block
from node.ledger.block import Block, Receipt
from node.ledger.certificate import CommitCertificate, ValidatorSet
from node.ledger.errors import LedgerError
from node.ledger.genesis import Genesis
from node.ledger.model import Statement

if TYPE_CHECKING:  # the storage engine (plyvel) is imported only when an audit runs
    from node.store.chain import ChainStore

NULL_PROPOSER = b"\x00" * 32
STATEMENT_ROUNDS = 5
MISMATCHES_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Mismatch:
    height: int  # -1: not tied to one block (statements)
    what: str
    detail: str

    def line(self) -> str:
        where = f"block {self.height}" if self.height >= 0 else "state"
        return f"MISMATCH {where}: {self.what}: {self.detail}"


@dataclass
class AuditReport:
    height: int = 0
    blocks: int = 0
    null_blocks: int = 0
    txs: int = 0
    receipts: int = 0
    certificates: int = 0
    statements: int = 0
    validator_set_changes: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    complete: bool = True  # False when the replay had to stop at a broken block

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "blocks": self.blocks,
            "null_blocks": self.null_blocks,
            "txs": self.txs,
            "receipts": self.receipts,
            "certificates": self.certificates,
            "statements": self.statements,
            "validator_set_changes": self.validator_set_changes,
            "complete": self.complete,
            "ok": not self.mismatches,
            "mismatches": [
                {"height": m.height, "what": m.what, "detail": m.detail} for m in self.mismatches
            ],
        }


class Stop(Exception):
    """The replay cannot go past this block (it does not decode, link or execute)."""


def jsonable(value: Any) -> Any:
    """A canonical value as the API renders it: bytes as lowercase hex, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "tx_id": r.tx_id.hex(),
        "accepted": r.accepted,
        "code": r.code,
        "detail": r.detail,
        "events": [{"kind": e.kind, "attrs": jsonable(e.attrs)} for e in r.events],
    }


class ValidatorSchedule:
    """Which validator set certifies which height."""

    def __init__(self, genesis_set: ValidatorSet, checkpoint_interval: int, window: int) -> None:
        self.entries: list[tuple[int, ValidatorSet]] = [(1, genesis_set)]
        self.checkpoint_interval = checkpoint_interval
        self.window = window

    def governing(self, height: int) -> ValidatorSet:
        chosen = self.entries[0][1]
        for start, vs in self.entries:
            if start <= height:
                chosen = vs
        return chosen

    def changed_at(self, height: int, new_set: ValidatorSet) -> int:
        start = activation_seq(height, self.checkpoint_interval, self.window)
        self.entries.append((start, new_set))
        return start


class Auditor:
    def __init__(
        self,
        client: NodeClient,
        genesis: Genesis,
        store: ChainStore,
        checkpoint_interval: int = 16,
        watermark_window: int = 32,
    ) -> None:
        self.client = client
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.store = store
        self.schedule = ValidatorSchedule(
            genesis.validator_set, checkpoint_interval, watermark_window
        )
        self.report = AuditReport()
        self.last_change: dict[bytes, int] = {}  # statement key -> last height it changed
        self._prev: Block | None = None

    def mismatch(self, height: int, what: str, detail: str) -> None:
        self.report.mismatches.append(Mismatch(height, what, detail))

    # -- the walk ------------------------------------------------------------------------

    def start(self) -> int:
        """Check the node is on this chain, install genesis; the node's latest height."""
        status = self.client.get("/v1/status")
        if status.get("chain_id") != self.chain_id:
            raise click.ClickException(
                f"the node serves chain {status.get('chain_id')!r}, the genesis is for "
                f"{self.chain_id!r}"
            )
        if self.store.head() is not None:
            raise click.ClickException("the audit store is not empty; give a fresh --store DIR")
        block0, changes, acc = self.genesis.block()
        self.store.commit_block(block0, [], None, changes, acc, sync=False)
        raw = self._raw(0)
        if raw["block"] != block0.encode():
            self.mismatch(0, "genesis", "the node's block 0 is not this genesis' block")
            raise Stop
        self._prev = block0
        self.report.blocks = 1
        return self.latest()

    def latest(self) -> int:
        return int(self.client.get("/v1/blocks/latest")["height"])

    def replay_to(self, height: int, progress: Callable[[int], None]) -> None:
        first = self.store.next_height
        for h in range(first, height + 1):
            self.block(h)
            progress(1)

    def _raw(self, height: int) -> dict[str, Any]:
        doc = self.client.get_msgpack(f"/v1/blocks/{height}/raw")
        if not isinstance(doc, dict) or not isinstance(doc.get("block"), bytes):
            self.mismatch(height, "raw block", "answer is not {height, block, certificate}")
            raise Stop
        if doc.get("height") != height:
            self.mismatch(height, "raw block", f"answer is for height {doc.get('height')}")
            raise Stop
        return doc

    def block(self, h: int) -> None:
        raw = self._raw(h)
        try:
            block = Block.decode(raw["block"])
        except LedgerError as exc:
            self.mismatch(h, "block bytes", f"undecodable: {exc}")
            raise Stop from exc
        if block.encode() != raw["block"]:
            self.mismatch(h, "block bytes", "not the canonical encoding")
        self._link(h, block)
        is_null = block.header.proposer == NULL_PROPOSER
        self._certificate(h, block, raw.get("certificate"), is_null)
        try:
            result = replay_block(self.store, self.store.accumulator(), block)
        except LedgerError as exc:  # BlockInvalid: signature, roots, digest, validator set
            self.mismatch(h, f"replay {exc.code}", exc.detail or str(exc))
            raise Stop from exc
        self._receipts(h, result.receipts)
        self._block_json(h, block)
        self._commit(h, block, result, is_null)

    def _link(self, h: int, block: Block) -> None:
        prev = self._prev
        assert prev is not None
        hd = block.header
        problems = (
            (hd.height != h, f"header height {hd.height}"),
            (hd.chain_id != self.chain_id, f"chain {hd.chain_id!r}"),
            (hd.parent_hash != prev.hash(), "parent hash is not the previous block's hash"),
            (hd.timestamp_ms < prev.header.timestamp_ms, "timestamp before its parent's"),
        )
        bad = [why for wrong, why in problems if wrong]
        if hd.proposer == NULL_PROPOSER and (
            block.txs or hd.timestamp_ms != prev.header.timestamp_ms
        ):
            bad.append("null block with transactions or its own timestamp")
        if bad:
            self.mismatch(h, "header", "; ".join(bad))
            raise Stop

    def _certificate(self, h: int, block: Block, encoded: Any, is_null: bool) -> None:
        if not isinstance(encoded, bytes):
            self.mismatch(h, "certificate", "the node has no commit certificate for this block")
            return
        target = NULL_DIGEST if is_null else block.hash()
        validators = self.schedule.governing(h)
        try:
            cert = CommitCertificate.decode(encoded)
            if cert.height != h:
                self.mismatch(h, "certificate", f"certificate is for height {cert.height}")
                return
            cert.verify(self.chain_id, validators, target)
        except LedgerError as exc:
            self.mismatch(h, "certificate", f"{exc.code}: {exc.detail}")
            return
        self.report.certificates += 1

    def _receipts(self, h: int, computed: tuple[Receipt, ...]) -> None:
        try:
            served = all_receipts(self.client, h)
        except NodeError as exc:
            self.mismatch(h, "receipts", f"cannot fetch: {exc.format_message()}")
            return
        expected = [receipt_json(r) for r in computed]
        if len(served) != len(expected):
            self.mismatch(h, "receipts", f"node serves {len(served)}, replay made {len(expected)}")
            return
        for i, (got, want) in enumerate(zip(served, expected, strict=True)):
            if got != want:
                fields = sorted(k for k in want if got.get(k) != want[k]) or ["extra fields"]
                self.mismatch(
                    h,
                    f"receipt {i}",
                    f"tx {want['tx_id'][:16]}: {', '.join(fields)} differ "
                    f"(node: {_brief(got, fields)}; replay: {_brief(want, fields)})",
                )
        self.report.receipts += len(expected)

    def _block_json(self, h: int, block: Block) -> None:
        doc = self.client.get(f"/v1/blocks/{h}")
        want = {
            **jsonable(block.header.to_value()),
            "hash": block.hash().hex(),
            "tx_ids": [tx.tx_id.hex() for tx in block.txs],
        }
        differ = sorted(k for k, v in want.items() if doc.get(k) != v)
        if differ:
            self.mismatch(h, "block answer", f"{', '.join(differ)} differ from the certified block")

    def _commit(self, h: int, block: Block, result: BlockResult, is_null: bool) -> None:
        prev = self._prev
        assert prev is not None
        self.store.commit_block(
            block, result.receipts, None, result.changes, result.accumulator, sync=False
        )
        if block.header.validator_set_hash != prev.header.validator_set_hash:
            self.schedule.changed_at(h, result.validator_set)
            self.report.validator_set_changes += 1
        for key in result.changes:
            if key.startswith(b"stmt/"):
                self.last_change[key] = h
        self._prev = block
        r = self.report
        r.height, r.blocks, r.txs = h, r.blocks + 1, r.txs + len(block.txs)
        r.null_blocks += is_null

    # -- statements ------------------------------------------------------------------------

    def statements(self, progress: Callable[[int], None]) -> None:
        """Compare every statement the node serves with the replayed state (bounded rounds
        while the chain moves on)."""
        pending: set[str] | None = None
        for _ in range(STATEMENT_ROUNDS):
            before = self.store.head()
            assert before is not None
            served = {
                s["statement_id"]: s for s in self.client.pages("/v1/statements", "statements")
            }
            after = self.latest()
            self.replay_to(after, progress)
            local = self._local_statements()
            ids = set(served) | set(local)
            if pending is not None:
                ids &= pending
            unsettled: set[str] = set()
            for sid in sorted(ids):
                key = _statement_key(sid)
                if self.last_change.get(key, -1) > before.height:
                    unsettled.add(sid)  # changed while we looked: compare next round
                    continue
                self._compare_statement(sid, served.get(sid), local.get(sid))
            if not unsettled:
                return
            pending = unsettled
        self.mismatch(-1, "statements", f"{len(pending or ())} kept changing; not compared")

    def _local_statements(self) -> dict[str, Statement]:
        out = {}
        for _key, value in self.store.scan_state(b"stmt/"):
            s = Statement.decode(value)
            out[f"{s.licence_id}@{s.period_id}"] = s
        return out

    def _compare_statement(self, sid: str, served: Any, local: Statement | None) -> None:
        if local is None:
            self.mismatch(-1, f"statement {sid}", "served by the node but not in the replay")
            return
        if served is None:
            self.mismatch(-1, f"statement {sid}", "in the replay but not served by the node")
            return
        want = jsonable(local.to_value())
        lines = [{"label": li["label"], "amount": li["amount"]} for li in want.pop("lines")]
        got_lines = [
            {"label": li.get("label"), "amount": li.get("amount")} for li in served.get("lines", [])
        ]
        differ = sorted(k for k, v in want.items() if served.get(k) != v)
        if got_lines != lines:
            differ.append("lines")
        if differ:
            self.mismatch(-1, f"statement {sid}", f"{', '.join(differ)} differ from the replay")
        self.report.statements += 1


def _statement_key(statement_id: str) -> bytes:
    licence_id, _, period_id = statement_id.partition("@")
    return b"stmt/" + licence_id.encode() + b"/" + period_id.encode()


def _brief(doc: dict[str, Any], fields: list[str]) -> str:
    text = ", ".join(f"{k}={doc.get(k)!r}" for k in fields if k != "extra fields")
    return text[:160]


@contextmanager
def open_store(path: pathlib.Path | None) -> Iterator[ChainStore]:
    """A fresh ChainStore on LevelDB in `path` (must be new or empty) or a temp dir."""
    try:
        from node.store.chain import ChainStore
        from node.store.kv import LevelDBKV, StoreError
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"alps audit needs LevelDB ({exc.name} is missing): pip install 'alps[cli]'"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="alps-audit-") as tmp:
        where = path if path is not None else pathlib.Path(tmp) / "chain"
        if path is not None and path.exists() and any(path.iterdir()):
            raise click.ClickException(f"{path} is not empty; the audit replays into a fresh store")
        try:
            kv = LevelDBKV(where)
        except StoreError as exc:
            raise click.ClickException(f"audit store: {exc}") from exc
        try:
            yield ChainStore(kv)
        finally:
            kv.close()


@click.command("audit")
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="the consortium's genesis.json (the only thing trusted)",
)
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="replay into this (new or empty) directory and keep it (default: a temp dir)",
)
@click.option("--checkpoint-interval", type=click.IntRange(1), default=16, show_default=True)
@click.option("--watermark-window", type=click.IntRange(1), default=32, show_default=True)
@node_options
@output_option
def audit(
    genesis_file: pathlib.Path,
    store_dir: pathlib.Path | None,
    checkpoint_interval: int,
    watermark_window: int,
    node_url: str,
    timeout: float,
    output: str,
) -> None:
    """Replay the whole chain from genesis and check every block, signature, rule run,
    receipt, state digest, certificate and statement the node serves. Exit 1 on any
    mismatch."""
    genesis = read_genesis(genesis_file)
    with open_store(store_dir) as store, NodeClient(node_url, timeout) as client:
        report = run_audit(client, genesis, store, checkpoint_interval, watermark_window)
    for m in report.mismatches[:MISMATCHES_SHOWN]:
        click.echo(m.line(), err=True)
    if len(report.mismatches) > MISMATCHES_SHOWN:
        click.echo(f"... and {len(report.mismatches) - MISMATCHES_SHOWN} more", err=True)
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        click.echo(
            f"audited {report.blocks} blocks (0..{report.height}; {report.null_blocks} null), "
            f"{report.txs} transactions, {report.receipts} receipts, {report.certificates} "
            f"certificates, {report.statements} statements, "
            f"{report.validator_set_changes} validator set changes"
        )
    if report.mismatches:
        raise click.ClickException(
            f"audit FAILED: {len(report.mismatches)} mismatches"
            + ("" if report.complete else f"; replay stopped at block {report.height + 1}")
        )
    click.echo("audit passed: the node's chain replays exactly from genesis")


def run_audit(
    client: NodeClient,
    genesis: Genesis,
    store: ChainStore,
    checkpoint_interval: int = 16,
    watermark_window: int = 32,
) -> AuditReport:
    auditor = Auditor(client, genesis, store, checkpoint_interval, watermark_window)
    try:
        latest = auditor.start()
        with click.progressbar(length=latest, label="replaying", file=sys.stderr) as bar:
            auditor.replay_to(latest, bar.update)
            auditor.statements(bar.update)
    except Stop:
        auditor.report.complete = False
    return auditor.report
