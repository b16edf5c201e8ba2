"""Transaction codec benchmark: CPU µs per transaction to decode one from its wire bytes
and to compute its id, the work every node does for every transaction a peer forwards
(node/runtime/driver.py) and the HTTP API does for every submitted one (node/api/body.py).

The transactions are 1,000 signed `usage.report`s from as many devices (the dominant
transaction; bench.pipeline's `usage_rounds`). Each figure is thread CPU time over the
1,000 (fresh objects every run, so no cached id is reused), median of several runs with
min-max; thread CPU time keeps other processes on the machine out of the figures.

  decode_tx             Transaction.decode_tx(raw)
  tx_id                 tx.tx_id of a freshly decoded transaction
  decode_tx + tx_id     both, as driver._ingest_peer_txs does
  api submission        node.api.body.decode_submission of 1,000 txs, then tx.tx_id
  Block.decode          a 1,000-transaction block, per transaction
  Block.decode_reusing  the same block with no transaction known (a backup that missed them)

Run: `.venv/bin/python -m bench.txcodec [runs]` (also part of `make bench`).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from node.api.body import decode_submission
from node.ledger import codec, crypto
from node.ledger.block import Block, BlockHeader
from node.ledger.tx import Transaction

N = 1000
CHAIN = "alps-bench"


def _transactions() -> list[Transaction]:
    from bench.pipeline import T0, usage_rounds  # heavy imports (LevelDB, VM) only here

    devices = [crypto.Signer(crypto.sha256(b"txcodec-device-%d" % i)) for i in range(N)]
    return usage_rounds(CHAIN, devices, 1, T0, first_seq=7)[0]


def _block(txs: list[Transaction]) -> Block:
    h = b"\x11" * 32
    header = BlockHeader(CHAIN, 5, h, b"\x22" * 32, 1, len(txs), len(txs), h, h, h, h)
    return Block(header, tuple(txs))


def _per_tx(run: Callable[[], Callable[[], object]], runs: int) -> tuple[float, float, float]:
    """`run()` prepares and returns the timed call (which handles N transactions)."""
    samples = []
    for _ in range(runs):
        timed = run()
        start = time.thread_time()
        timed()
        samples.append((time.thread_time() - start) * 1e6 / N)
    return statistics.median(samples), min(samples), max(samples)


def measure(runs: int = 9) -> dict[str, tuple[float, float, float]]:
    txs = _transactions()
    raws = [tx.encode() for tx in txs]
    submission = codec.encode({"txs": [tx.to_value() for tx in txs]})
    payload = _block(txs).encode()
    decode_tx = Transaction.decode_tx

    def decoded() -> list[Transaction]:
        return [decode_tx(raw) for raw in raws]

    def ids(fresh: list[Transaction]) -> Callable[[], object]:
        return lambda: [tx.tx_id for tx in fresh]

    def api() -> object:
        return [tx.tx_id for tx in decode_submission(submission, N)]

    out = {
        "decode_tx": _per_tx(lambda: decoded, runs),
        "tx_id": _per_tx(lambda: ids(decoded()), runs),
        "decode_tx + tx_id": _per_tx(lambda: lambda: [decode_tx(r).tx_id for r in raws], runs),
        "api submission + tx_id": _per_tx(lambda: api, runs),
        "Block.decode": _per_tx(lambda: lambda: Block.decode(payload), runs),
        "Block.decode_reusing, none known": _per_tx(
            lambda: lambda: Block.decode_reusing(payload, lambda _raw: None), runs
        ),
    }
    # the figures must be of the right work: same transactions, same ids
    assert [decode_tx(r) for r in raws] == txs == list(Block.decode(payload).txs)
    assert [decode_tx(r).tx_id for r in raws] == [tx.tx_id for tx in txs]
    return out


def main(args: list[str] | None = None) -> None:
    runs = int(args[0]) if args else 9
    print(f"== txcodec: {N:,} usage reports, thread CPU µs per tx (median, min-max) ==")
    for name, (median, lo, hi) in measure(runs).items():
        print(f"  {name:<34} {median:>8.2f} µs/tx  ({lo:.2f} - {hi:.2f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
