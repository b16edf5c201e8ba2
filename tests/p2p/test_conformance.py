"""The same scenario against the libp2p network and its in-memory twin: what the driver
relies on behaves the same in both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from node.p2p.host import open_libp2p_network
from node.p2p.identity import key_pair_of, pubkey_bytes
from node.p2p.memory import MemoryHub

SEEDS = [bytes([0x20 + i]) * 32 for i in range(3)]
KEYS = [pubkey_bytes(key_pair_of(s)) for s in SEEDS]


@asynccontextmanager
async def libp2p_mesh() -> AsyncIterator[list[Any]]:
    async with AsyncExitStack() as stack:
        nets = [
            await stack.enter_async_context(open_libp2p_network(s, "/ip4/127.0.0.1/tcp/0", {}))
            for s in SEEDS
        ]
        book = {k: n.listen_addrs[0] for k, n in zip(KEYS, nets, strict=True)}
        for net in nets:
            net.set_peers(book)
        yield nets


@asynccontextmanager
async def memory_mesh() -> AsyncIterator[list[Any]]:
    hub = MemoryHub()
    book = {k: "/ip4/127.0.0.1/tcp/1" for k in KEYS}
    nets = [hub.open(k, book) for k in KEYS]
    try:
        yield nets
    finally:
        for net in nets:
            net.close()


async def wait_until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.02)


@pytest.mark.trio
@pytest.mark.parametrize("mesh", [libp2p_mesh, memory_mesh], ids=["libp2p", "memory"])
async def test_mesh_order_removal_and_counters(mesh: Any) -> None:
    with trio.fail_after(20):
        async with mesh() as (a, b, c):
            await wait_until(lambda: all(len(n.connected()) == 2 for n in (a, b, c)))
            for i in range(100):
                assert a.send(KEYS[2], b"a%d" % i)
                assert b.send(KEYS[2], b"b%d" % i)
            got = [await c.inbound.receive() for _ in range(200)]
            assert [d for s, d in got if s == KEYS[0]] == [b"a%d" % i for i in range(100)]
            assert [d for s, d in got if s == KEYS[1]] == [b"b%d" % i for i in range(100)]
            assert c.stats().peers[KEYS[0]].received == 100
            assert not a.send(b"\x00" * 32, b"unknown")

            c.set_peers({KEYS[0]: "/ip4/127.0.0.1/tcp/1"})  # drop b
            assert not c.send(KEYS[1], b"x")
            await wait_until(lambda: KEYS[2] not in b.connected())
            assert b.send(KEYS[2], b"after removal")  # b still allows c: queued
            assert a.send(KEYS[2], b"from a")
            assert await c.inbound.receive() == (KEYS[0], b"from a")
            await trio.sleep(0.3)
            with pytest.raises(trio.WouldBlock):
                c.inbound.receive_nowait()
