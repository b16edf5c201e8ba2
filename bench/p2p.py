"""Peer network benchmark: 200-byte messages between 2 and 4 in-process libp2p networks
(TCP + Noise + Yamux on 127.0.0.1), all-to-all, each sender keeping its queues full.

Run: `python -m bench.p2p` (about 25 s). Each figure is the median of 3 runs with
min-max: messages/s and payload MB/s summed over all receivers, messages per libp2p
frame (the batching the writer achieves), and CPU per delivered message. All nodes share
one process and one core, so CPU per message counts sender and receiver together; the
"unbatched" row (one message per frame) is the cost shared/design/libp2p.md measured
(~225 us per 200-byte message).
"""

from __future__ import annotations

import logging
import statistics
import time
from contextlib import AsyncExitStack

import trio

from node.p2p.host import LibP2PNetwork, open_libp2p_network
from node.p2p.identity import key_pair_of, pubkey_bytes

MESSAGE = b"m" * 200
QUEUE_MAX = 1024
WARMUP_S = 0.3
WINDOW_S = 1.5
RUNS = 3
SEEDS = [bytes([0x40 + i]) * 32 for i in range(4)]
KEYS = [pubkey_bytes(key_pair_of(s)) for s in SEEDS]
# Peers closing at the end of each run are "unreachable" to the rest: not news here.
QUIET = logging.getLogger("bench.p2p.network")
QUIET.setLevel(logging.ERROR)


async def _produce(net: LibP2PNetwork, peers: list[bytes]) -> None:
    """Top every peer's queue up until it refuses, then yield to the writers."""
    while True:
        for peer in peers:
            for _ in range(256):
                if not net.send(peer, MESSAGE):
                    break
        await trio.sleep(0.001)


async def _consume(net: LibP2PNetwork, counter: list[int]) -> None:
    """Wait for one message, then drain what is there without a checkpoint each (a
    trio checkpoint per message would cost more than the network does)."""
    while True:
        await net.inbound.receive()
        counter[0] += 1
        while True:
            try:
                net.inbound.receive_nowait()
            except trio.WouldBlock:
                break
            counter[0] += 1


async def _run(n: int, batch_bytes_max: int) -> tuple[float, float, float]:
    """(messages/s, messages per frame, CPU microseconds per message) for one window."""
    async with AsyncExitStack() as stack:
        nets = [
            await stack.enter_async_context(
                open_libp2p_network(
                    SEEDS[i],
                    "/ip4/127.0.0.1/tcp/0",
                    {},
                    queue_max=QUEUE_MAX,
                    inbound_max=65536,
                    batch_bytes_max=batch_bytes_max,
                    logger=QUIET,
                    libp2p_log_level=logging.ERROR,
                )
            )
            for i in range(n)
        ]
        book = {KEYS[i]: nets[i].listen_addrs[0] for i in range(n)}
        for net in nets:
            net.set_peers(book)
        with trio.fail_after(10):
            while any(len(net.connected()) < n - 1 for net in nets):
                await trio.sleep(0.01)
        counter = [0]
        async with trio.open_nursery() as nursery:
            for i, net in enumerate(nets):
                nursery.start_soon(_produce, net, [k for k in KEYS[:n] if k != KEYS[i]])
                nursery.start_soon(_consume, net, counter)
            await trio.sleep(WARMUP_S)
            start_count, start_wall, start_cpu = (
                counter[0],
                time.perf_counter(),
                time.process_time(),
            )
            sent0 = sum(p.sent for net in nets for p in net.stats().peers.values())
            frames0 = sum(p.frames for net in nets for p in net.stats().peers.values())
            await trio.sleep(WINDOW_S)
            delivered = counter[0] - start_count
            wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
            sent = sum(p.sent for net in nets for p in net.stats().peers.values()) - sent0
            frames = sum(p.frames for net in nets for p in net.stats().peers.values()) - frames0
            nursery.cancel_scope.cancel()
    return delivered / wall, sent / max(frames, 1), cpu / max(delivered, 1) * 1e6


def _line(name: str, values: list[float], unit: str, fmt: str = ",.0f") -> None:
    med, lo, hi = statistics.median(values), min(values), max(values)
    print(f"  {name:<44} {med:>12{fmt}} {unit}  (min {lo:{fmt}}, max {hi:{fmt}})", flush=True)


def bench(n: int, batch_bytes_max: int, label: str) -> None:
    results = [trio.run(_run, n, batch_bytes_max) for _ in range(RUNS)]
    rates = [r[0] for r in results]
    _line(f"{label}: messages/s (all receivers)", rates, "msg/s")
    _line(f"{label}: payload", [r * len(MESSAGE) / 1e6 for r in rates], "MB/s", ",.2f")
    _line(f"{label}: messages per frame", [r[1] for r in results], "msg", ",.1f")
    _line(f"{label}: CPU per message", [r[2] for r in results], "us", ",.1f")


def main() -> None:
    print("== p2p: 200-byte messages over libp2p (TCP+Noise+Yamux), one process ==")
    bench(2, 1024 * 1024, "2 nodes, batched")
    bench(4, 1024 * 1024, "4 nodes, batched")
    bench(2, 1, "2 nodes, unbatched (1 msg/frame)")


if __name__ == "__main__":
    main()
