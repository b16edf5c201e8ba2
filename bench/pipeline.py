"""The single-process pipeline limit: CPU per transaction one validator spends on a block.

For blocks of signed `usage.report` transactions from many enrolled devices (each report
accrues under an active per-unit licence), one validator's work per block is timed stage
by stage, in the order a node does it:

  decode    strict canonical decode of each transaction's bytes (Transaction.decode_tx)
  verify    one Ed25519 verification per transaction
  execute   the ledger: every transaction, then the end-of-block work (run_transactions)
  merkle    tx_root and receipt_root
  digest    the state accumulator update and the state digest
  header    building the block header and its hash
  cert      verifying a 3-signature commit certificate
  commit    the fsynced LevelDB WriteBatch (ChainStore.commit_block, real LevelDB)

Stages are timed in CPU time of this process (all threads, so LevelDB's background work
counts); wall time, which includes waiting for fsync, is reported as a total.
One core's rate is 1e6 / (CPU µs per tx); a cluster of four validators sharing two cores can at
best commit `rate * 2 / 4` tx/s, before any networking. The cluster benchmark reports its
committed rate as a ratio to this ceiling, measured in the same run (`measure_pipeline`).

Run: `.venv/bin/python -m bench.pipeline [blocks] [txs_per_block]` (also part of `make bench`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import contracts_vm
from node.ledger import crypto
from node.ledger.app import execute_block, run_transactions
from node.ledger.block import Block, BlockHeader, receipt_root, tx_root
from node.ledger.calendar import ms_of_date
from node.ledger.certificate import (
    CommitCertificate,
    CommitSignature,
    ValidatorSet,
    commit_vote_value,
)
from node.ledger.context import BlockInfo, RecordCache
from node.ledger.genesis import Genesis, Params
from node.ledger.model import LicenceTerms, Member
from node.ledger.tx import Transaction, make_tx
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report, possession_value
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.ledger.rules_for_tests import PER_UNIT

CHAIN = "alps-bench"
T0 = ms_of_date(2026, 1, 1)
STAGES = ("decode", "verify", "execute", "merkle", "digest", "header", "cert", "commit")
VALIDATORS = [crypto.Signer(crypto.sha256(b"bench-validator-%d" % i)) for i in range(4)]
LICENSOR = crypto.Signer(crypto.sha256(b"bench-licensor"))
LICENSEE = crypto.Signer(crypto.sha256(b"bench-licensee"))


class _Chain:
    """Setup driver: genesis, then blocks executed and committed without timing."""

    def __init__(self, path: str) -> None:
        genesis = Genesis(
            CHAIN,
            T0,
            (
                Member("licensor", LICENSOR.public_key, ("licensor",)),
                Member("licensee", LICENSEE.public_key, ("licensee",)),
            ),
            tuple(v.public_key for v in VALIDATORS),
            Params(contracts_vm.VM_VERSION, 2_000_000, 10_000),
        )
        self.store = ChainStore(LevelDBKV(path))
        self.records = RecordCache()  # kept across blocks, as a node's LedgerShell does
        block0, changes, acc = genesis.block()
        self.store.commit_block(block0, [], None, changes, acc)
        self.time_ms = T0

    def run(self, txs: list[Transaction]) -> None:
        self.time_ms += 1000
        info = BlockInfo(CHAIN, self.store.next_height, self.time_ms)
        result = execute_block(
            self.store, self.store.accumulator(), info, txs, record_cache=self.records
        )
        bad = [r.code for r in result.receipts if not r.accepted]
        if bad:
            raise RuntimeError(f"setup transaction rejected: {bad[:3]}")
        header = self.header(
            result.tx_root, result.receipt_root, result.state_digest, len(txs), len(result.receipts)
        )
        self.store.commit_block(
            Block(header, tuple(txs)), result.receipts, None, result.changes, result.accumulator
        )

    def header(
        self, troot: bytes, rroot: bytes, digest: bytes, count: int, receipts: int
    ) -> BlockHeader:
        head = self.store.head()
        assert head is not None
        return BlockHeader(
            CHAIN,
            self.store.next_height,
            head.block_hash,
            VALIDATORS[0].public_key,
            self.time_ms,
            count,
            receipts,
            troot,
            rroot,
            digest,
            _VSET_HASH,
        )


_VSET_HASH = ValidatorSet(tuple(v.public_key for v in VALIDATORS)).hash()


def licence_terms(licensor: bytes, licensee: bytes, start_ms: int = T0) -> LicenceTerms:
    """A per-unit licence (rule PER_UNIT, 20 per unit) for sku cam-1 in DE and FR."""
    return LicenceTerms(
        licence_id="L1",
        licensor=licensor,
        licensee=licensee,
        pool=(),
        skus=("cam-1",),
        territories=("DE", "FR"),
        currency="EUR",
        period="quarter",
        start_ms=start_ms,
        end_ms=ms_of_date(2028, 1, 1),
        payment_due_days=30,
        rule=crypto.sha256(PER_UNIT.encode()),
        rule_params={"fee_per_unit": 20},
        upfront_fee=0,
        minimum_annual=0,
        annual_cap=0,
        advance=0,
        late_interest_bps=800,
        upstream_licence="",
        passthrough_bps=0,
        legal_text_hash=b"\x01" * 32,
        product_classes={},
        arbiter=b"",
    )


def setup_steps(
    chain_id: str,
    licensor: crypto.Signer,
    licensee: crypto.Signer,
    devices: Sequence[crypto.Signer],
    start_ms: int = T0,
    enrol_batch: int = 1000,
) -> list[list[Transaction]]:
    """The transactions that make usage reports from `devices` accrue under a licence: a
    deployed rule, an active licence for sku cam-1, a BOM, every device enrolled. Each
    step must be committed before the next is submitted. The licensor and the licensee
    must not have sent any transaction before (their nonces start at 1)."""
    terms = licence_terms(licensor.public_key, licensee.public_key, start_ms)
    sign = {"licence_id": "L1", "terms_hash": terms.terms_hash()}
    nonce = 3  # the licensee's next nonce after licence.sign and bom.set
    steps = [
        [make_tx(licensor, chain_id, "rule.deploy", {"source": PER_UNIT}, 1)],
        [make_tx(licensor, chain_id, "licence.propose", {"terms": terms.to_value()}, 2)],
        [make_tx(licensee, chain_id, "licence.sign", sign, 1)],
        [make_tx(licensee, chain_id, "bom.set", {"sku": "cam-1", "licences": ["L1"]}, 2)],
    ]
    for start in range(0, len(devices), enrol_batch):
        enrolments = []
        for device in devices[start : start + enrol_batch]:
            proof = device.sign(
                crypto.DOMAIN_POSSESSION,
                chain_id,
                possession_value(device.public_key, licensee.public_key),
            )
            body = {"device": device.public_key, "sku": "cam-1", "proof": proof}
            enrolments.append(make_tx(licensee, chain_id, "device.enrol", body, nonce))
            nonce += 1
        steps.append(enrolments)
    return steps


def usage_rounds(
    chain_id: str,
    devices: Sequence[crypto.Signer],
    rounds: int,
    t_ms: int,
    prev: dict[bytes, bytes] | None = None,
    first_seq: int = 1,
) -> list[list[Transaction]]:
    """`rounds` rounds of signed usage reports: round r carries sequence number
    first_seq + r of every device, chained to the device's previous report (`prev`, which
    is updated; missing devices start from GENESIS_PREV), with cumulative registers."""
    prev = {} if prev is None else prev
    out = []
    for r in range(rounds):
        seq = first_seq + r
        txs = []
        for i, device in enumerate(devices):
            territory = "DE" if i % 2 else "FR"
            registers = {"units": seq * (1 + i % 7), "hours": seq * 3}
            before = prev.get(device.public_key, GENESIS_PREV)
            report = UsageReport("cam-1", territory, t_ms + seq, before, registers)
            tx = make_usage_report(device, chain_id, seq, report)
            prev[device.public_key] = tx.tx_id
            txs.append(tx)
        out.append(txs)
    return out


def _certify(header: BlockHeader, view: int = 0) -> CommitCertificate:
    """What three other validators would send (signing is their work, not timed here)."""
    block_hash = header.hash()
    value = commit_vote_value(view, header.height, block_hash)
    sigs = tuple(
        CommitSignature(v.public_key, v.sign(crypto.DOMAIN_COMMIT, CHAIN, value))
        for v in VALIDATORS[1:]
    )
    return CommitCertificate(header.height, view, block_hash, sigs)


class _Stopwatch:
    """CPU seconds (this process, all threads) and wall seconds per stage."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._start = (0.0, 0.0)

    def start(self) -> None:
        self._start = (time.process_time(), time.perf_counter())

    def stop(self, stage: str) -> None:
        cpu, wall = self._start
        self.cpu[stage] = time.process_time() - cpu
        self.wall[stage] = time.perf_counter() - wall


def _one_block(chain: _Chain, raws: list[bytes]) -> _Stopwatch:
    """Run one block through the pipeline, timing each stage."""
    store = chain.store
    chain.time_ms += 1000
    info = BlockInfo(CHAIN, store.next_height, chain.time_ms)
    w = _Stopwatch()
    w.start()
    txs = [Transaction.decode_tx(raw) for raw in raws]
    w.stop("decode")
    w.start()
    if not all([tx.signature_valid() for tx in txs]):
        raise RuntimeError("a benchmark signature failed to verify")
    w.stop("verify")
    w.start()
    executed = run_transactions(
        store, info, txs, signature_ok=_verified, record_cache=chain.records
    )
    w.stop("execute")
    w.start()
    troot, rroot = tx_root(txs), receipt_root(executed.receipts)
    w.stop("merkle")
    w.start()
    acc = store.accumulator().apply(executed.changes)
    digest = acc.digest()
    w.stop("digest")
    w.start()
    header = chain.header(troot, rroot, digest, len(txs), len(executed.receipts))
    block_hash = header.hash()
    w.stop("header")
    certificate = _certify(header)
    w.start()
    certificate.verify(CHAIN, executed.validator_set, block_hash)
    w.stop("cert")
    w.start()
    block = Block(header, tuple(txs))
    store.commit_block(block, executed.receipts, certificate, executed.changes, acc)
    w.stop("commit")
    rejected = [r.code for r in executed.receipts if not r.accepted]
    if rejected:
        raise RuntimeError(f"benchmark usage reports rejected: {rejected[:3]}")
    return w


def _verified(tx: Transaction) -> bool:
    return True  # verified once in the verify stage; never again on the hot path


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_pipeline(blocks: int = 5, txs_per_block: int = 1000, warmup: int = 1) -> dict[str, Any]:
    """Time `blocks` blocks of `txs_per_block` usage reports (after `warmup` untimed blocks).

    Returns {"median", "min", "max"} over the blocks of: per-stage CPU µs/tx
    ("stages_us_per_tx"), total CPU and wall µs/tx, one core's tx/s (from CPU time, which
    other processes on the machine do not inflate) and the implied ceiling for four
    validators sharing two cores (one-core rate * 2 / 4).
    """
    if blocks < 1 or txs_per_block < 1 or warmup < 0:
        raise ValueError("blocks and txs_per_block must be >= 1, warmup >= 0")
    devices = [crypto.Signer(crypto.sha256(b"bench-device-%d" % i)) for i in range(txs_per_block)]
    samples: dict[str, list[float]] = {name: [] for name in STAGES}
    cpu_totals: list[float] = []
    wall_totals: list[float] = []
    per_tx = 1e6 / txs_per_block
    with tempfile.TemporaryDirectory() as tmp:
        chain = _Chain(tmp + "/db")
        try:
            for step in setup_steps(CHAIN, LICENSOR, LICENSEE, devices):
                chain.run(step)
            rounds = usage_rounds(CHAIN, devices, warmup + blocks, chain.time_ms)
            wire = [[tx.encode() for tx in txs] for txs in rounds]
            for b, raws in enumerate(wire):
                watch = _one_block(chain, raws)
                if b < warmup:
                    continue
                for name in STAGES:
                    samples[name].append(watch.cpu[name] * per_tx)
                cpu_totals.append(sum(watch.cpu.values()) * per_tx)
                wall_totals.append(sum(watch.wall.values()) * per_tx)
        finally:
            chain.store.close()
    rates = [1e6 / us for us in cpu_totals]
    return {
        "blocks": blocks,
        "txs_per_block": txs_per_block,
        "stages_us_per_tx": {name: _spread(samples[name]) for name in STAGES},
        "total_us_per_tx": _spread(cpu_totals),
        "wall_us_per_tx": _spread(wall_totals),
        "tx_per_s_one_core": _spread(rates),
        "cluster_ceiling_4_on_2_cores": _spread([r * 2 / 4 for r in rates]),
    }


def print_pipeline(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    out(
        f"== pipeline: one validator, blocks of {result['txs_per_block']:,} usage reports, "
        f"{result['blocks']} blocks, CPU µs per tx (median, min-max) =="
    )
    for name, s in result["stages_us_per_tx"].items():
        out(f"  {name:<10} {s['median']:>8.2f} µs/tx  ({s['min']:.2f} - {s['max']:.2f})")
    s = result["total_us_per_tx"]
    out(f"  {'total':<10} {s['median']:>8.2f} µs/tx  ({s['min']:.2f} - {s['max']:.2f})")
    s = result["wall_us_per_tx"]
    out(f"  {'wall':<10} {s['median']:>8.2f} µs/tx  ({s['min']:.2f} - {s['max']:.2f})  incl. fsync")
    r = result["tx_per_s_one_core"]
    out(f"  one core: {r['median']:,.0f} tx/s (min {r['min']:,.0f}, max {r['max']:,.0f})")
    c = result["cluster_ceiling_4_on_2_cores"]
    out(
        f"  4 validators on 2 cores, ceiling: {c['median']:,.0f} tx/s "
        f"(min {c['min']:,.0f}, max {c['max']:,.0f})   [performance.md: ~9,600 tx/s at 52 µs/tx]"
    )


def main(args: list[str] | None = None) -> None:
    args = args or []
    blocks = int(args[0]) if args else 5
    txs_per_block = int(args[1]) if len(args) > 1 else 1000
    print_pipeline(measure_pipeline(blocks, txs_per_block))


if __name__ == "__main__":
    main(sys.argv[1:])
