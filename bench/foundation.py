"""Foundation benchmark: codec, signatures, Merkle roots and atomic block commits.

Run: `make bench` or `.venv/bin/python -m bench.foundation`. Figures are ops per second,
median of 5 runs with min-max, next to the reference figures in shared/design/performance.md.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from bench.common import rate, report
from node.ledger import codec, crypto, merkle
from node.ledger.state import StateAccumulator
from node.ledger.tx import Transaction, make_tx
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.factory import build_chain


def main() -> None:
    print("== foundation: codec, signatures, Merkle, block commit ==")
    signer = crypto.Signer(b"\x05" * 32)
    record = {
        "device": b"\x01" * 32,
        "metric": "units",
        "register": 123456,
        "seq": 42,
        "prev": b"\x02" * 32,
        "time_ms": 1_700_000_000_000,
        "territory": "DE",
        "sku": "cam-1",
        "licensee": "oem",
        "note": "",
    }
    data = codec.encode(record)
    report("canonical encode, 10-field record", rate(lambda: codec.encode(record), 1))
    report(
        "strict decode, 10-field record",
        rate(lambda: codec.decode(data), 1),
        ref="msgpack unpack ~1.1M/s",
    )
    tx = make_tx(signer, "alps-bench", "usage.submit", record, nonce=1)
    raw_tx = tx.encode()
    report("transaction decode (strict + schema)", rate(lambda: Transaction.decode_tx(raw_tx), 1))
    msg = tx.signing_bytes()
    report("Ed25519 sign", rate(lambda: signer.sign_raw(msg), 1), ref="~63,000/s")
    sig = signer.sign_raw(msg)
    report(
        "Ed25519 verify",
        rate(lambda: crypto.verify_raw(signer.public_key, msg, sig), 1),
        ref="~24,000/s",
    )
    leaves = [i.to_bytes(4, "big") * 50 for i in range(10_000)]
    report(
        "Merkle root of 10,000 leaves (roots/s)",
        rate(lambda: merkle.root(leaves), 1),
        unit="roots/s",
        ref="7.9 ms -> ~127/s",
    )
    acc = StateAccumulator()
    changes = {i.to_bytes(8, "big"): (None, b"v" * 40) for i in range(1000)}
    report("state digest update (keys/s)", rate(lambda: acc.apply(changes), 1000), unit="keys/s")
    chain = build_chain(301)
    with tempfile.TemporaryDirectory() as tmp:
        store = ChainStore(LevelDBKV(tmp + "/db"))
        rates = []
        for run in range(3):
            start = time.perf_counter()
            for b in chain[run * 100 : run * 100 + 100]:
                store.commit_block(b.block, b.receipts, b.certificate, b.changes, b.accumulator)
            rates.append(100 / (time.perf_counter() - start))
        report(
            "block commit (2 tx), fsynced WriteBatch",
            (statistics.median(rates), min(rates), max(rates)),
            unit="blocks/s",
            ref="~330 batches/s of 1,000x300 B",
        )
        store.close()


if __name__ == "__main__":
    main()
