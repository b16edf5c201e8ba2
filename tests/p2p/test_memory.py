"""The in-memory twin follows the real network's rules: per-sender order, allow-list
both ways, queue while unreachable (partition, peer closed), bounded queues that drop."""

from __future__ import annotations

import pytest
import trio

from node.p2p.errors import ConfigError
from node.p2p.framing import MESSAGE_BYTES_MAX
from node.p2p.memory import MemoryHub, MemoryNetwork

A, B, C, S = (bytes([i]) * 32 for i in (1, 2, 3, 9))
ADDR = "/ip4/127.0.0.1/tcp/1"


def mesh(hub: MemoryHub, keys: list[bytes], **kw: int) -> list[MemoryNetwork]:
    return [hub.open(k, {p: ADDR for p in keys}, **kw) for k in keys]


def drain(net: MemoryNetwork) -> list[tuple[bytes, bytes]]:
    out = []
    while True:
        try:
            out.append(net.inbound.receive_nowait())
        except trio.WouldBlock:
            return out


@pytest.mark.trio
async def test_three_nodes_deliver_in_order_per_sender() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, b, c = mesh(hub, [A, B, C])
        for i in range(50):
            assert a.send(C, b"a%d" % i)
            assert b.send(C, b"b%d" % i)
        got = drain(c)
        assert [d for s, d in got if s == A] == [b"a%d" % i for i in range(50)]
        assert [d for s, d in got if s == B] == [b"b%d" % i for i in range(50)]
        assert sorted(a.connected()) == [B, C]
        assert a.stats().peers[C].sent == 50


@pytest.mark.trio
async def test_stranger_is_not_delivered_and_unknown_peers_are_refused() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, _b = mesh(hub, [A, B])
        s = hub.open(S, {A: ADDR})
        assert s.send(A, b"let me in")  # queued: S allows A, but A does not allow S
        assert drain(a) == []
        assert S not in a.connected() and s.connected() == []
        assert not a.send(S, b"x")
        assert a.stats().unknown_peer == 1


@pytest.mark.trio
async def test_partition_queues_and_heal_delivers_in_order() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, b = mesh(hub, [A, B])
        hub.partition(A, B)
        assert a.connected() == []
        for i in range(5):
            assert a.send(B, b"%d" % i)
        assert drain(b) == []
        hub.heal()
        assert [d for _, d in drain(b)] == [b"%d" % i for i in range(5)]


@pytest.mark.trio
async def test_closed_peer_gets_queued_messages_when_reopened() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, b = mesh(hub, [A, B])
        b.close()
        assert a.send(B, b"while away")
        b2 = hub.open(B, {A: ADDR})
        assert drain(b2) == [(A, b"while away")]


@pytest.mark.trio
async def test_set_peers_removal_disconnects_both_ways() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, b = mesh(hub, [A, B])
        a.set_peers({})
        assert a.connected() == [] and b.connected() == []
        assert not a.send(B, b"x")
        assert b.send(A, b"queued at b")
        assert drain(a) == []


@pytest.mark.trio
async def test_full_queue_and_full_inbound_drop_and_count() -> None:
    with trio.fail_after(5):
        hub = MemoryHub()
        a, b = mesh(hub, [A, B], queue_max=3, inbound_max=2)
        hub.partition(A, B)
        assert [a.send(B, b"%d" % i) for i in range(4)] == [True, True, True, False]
        hub.heal()
        assert len(drain(b)) == 2
        assert b.stats().inbound_dropped == 1
        assert a.stats().peers[B].dropped == 1
        assert not a.send(B, b"x" * (MESSAGE_BYTES_MAX + 1))


def test_hub_refuses_a_key_opened_twice() -> None:
    hub = MemoryHub()
    hub.open(A, {})
    with pytest.raises(ConfigError):
        hub.open(A, {})
