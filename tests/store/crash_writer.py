"""Writer process for the crash test: commits the deterministic test chain to LevelDB
forever (well, up to a bound), printing each committed height, until it is killed."""

from __future__ import annotations

import sys

from node.store.chain import ChainStore
from node.store.kv import LevelDBKV
from tests.factory import build_chain

MAX_BLOCKS = 400


def main(path: str) -> None:
    store = ChainStore(LevelDBKV(path))
    chain = build_chain(MAX_BLOCKS)
    print("ready", flush=True)
    for built in chain[store.next_height :]:
        store.commit_block(
            built.block, built.receipts, built.certificate, built.changes, built.accumulator
        )
        print(built.block.header.height, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1])
