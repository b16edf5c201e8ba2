"""Real libp2p hosts on 127.0.0.1 (ephemeral ports): delivery, batching, big messages,
the allow-list, restarts, removal, bad frames and a full inbound channel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from node.p2p.errors import ConfigError, IdentityError
from node.p2p.framing import MESSAGE_BYTES_MAX, encode_frame
from node.p2p.host import (
    DEFAULT_PROTOCOL,
    INBOUND_STREAMS_PER_PEER,
    LibP2PNetwork,
    _new_host,
    open_libp2p_network,
)
from node.p2p.identity import key_pair_of, peer_id_of, pubkey_bytes

SEEDS = [bytes([i + 1]) * 32 for i in range(4)]
KEYS = [pubkey_bytes(key_pair_of(s)) for s in SEEDS]
STRANGER_SEED = b"\x66" * 32
STRANGER = pubkey_bytes(key_pair_of(STRANGER_SEED))
ANY_PORT = "/ip4/127.0.0.1/tcp/0"
PROTOCOL = TProtocol(DEFAULT_PROTOCOL)


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll until `predicate` holds (the caller's fail_after bounds it)."""
    while not predicate():
        await trio.sleep(0.02)


async def receive(net: LibP2PNetwork, count: int) -> list[tuple[bytes, bytes]]:
    return [await net.inbound.receive() for _ in range(count)]


def addr_of(net: LibP2PNetwork) -> str:
    return net.listen_addrs[0]


@asynccontextmanager
async def cluster(n: int, **kw: int) -> AsyncIterator[list[LibP2PNetwork]]:
    """n networks that allow and dial each other."""
    async with AsyncExitStack() as stack:
        nets = [
            await stack.enter_async_context(open_libp2p_network(SEEDS[i], ANY_PORT, {}, **kw))
            for i in range(n)
        ]
        book = {KEYS[i]: addr_of(nets[i]) for i in range(n)}
        for net in nets:
            net.set_peers(book)
        yield nets


@pytest.mark.trio
async def test_three_hosts_exchange_in_order_and_batch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with trio.fail_after(20):
        async with cluster(3) as nets:
            await wait_until(lambda: all(len(n.connected()) == 2 for n in nets))
            per_pair = 300
            for i, net in enumerate(nets):
                for j in range(3):
                    if j != i:
                        for k in range(per_pair):
                            assert net.send(KEYS[j], b"%d->%d #%d" % (i, j, k))
            for j, net in enumerate(nets):
                got = await receive(net, 2 * per_pair)
                for i in range(3):
                    if i != j:
                        expect = [b"%d->%d #%d" % (i, j, k) for k in range(per_pair)]
                        assert [d for s, d in got if s == KEYS[i]] == expect
            stats = nets[0].stats().peers[KEYS[1]]
            assert stats.sent == per_pair and stats.lost == 0 and stats.dropped == 0
            assert stats.frames < per_pair / 10  # many messages per libp2p write
            assert nets[1].stats().peers[KEYS[0]].received == per_pair
    # Start-up, traffic and shutdown leave no libp2p warning, no error, no traceback
    # (our own "peer unreachable" warnings while the others close are expected).
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info or not r.name.startswith("node.p2p")
    ]
    assert noisy == [], [r.getMessage() for r in noisy]


@pytest.mark.trio
async def test_one_mebibyte_message_arrives_and_bigger_is_dropped() -> None:
    with trio.fail_after(20):
        async with cluster(2) as (a, b):
            big = bytes(range(256)) * (MESSAGE_BYTES_MAX // 256)
            assert a.send(KEYS[1], big)
            assert a.send(KEYS[1], b"after")
            assert not a.send(KEYS[1], big + b"!")
            got = await receive(b, 2)
            assert got == [(KEYS[0], big), (KEYS[0], b"after")]
            assert a.stats().peers[KEYS[1]].dropped == 1


@pytest.mark.trio
async def test_stranger_is_refused_and_never_delivered() -> None:
    with trio.fail_after(20):
        async with cluster(2) as (a, b):
            async with open_libp2p_network(STRANGER_SEED, ANY_PORT, {KEYS[0]: addr_of(a)}) as s:
                for i in range(20):
                    s.send(KEYS[0], b"stranger %d" % i)
                await wait_until(lambda: a.stats().refused >= 1)
                assert not a.send(STRANGER, b"x")
                await trio.sleep(0.5)  # give the stranger time to retry
                assert b.send(KEYS[0], b"from b")
                assert await a.inbound.receive() == (KEYS[1], b"from b")
                with pytest.raises(trio.WouldBlock):
                    a.inbound.receive_nowait()
                assert STRANGER not in a.connected()
                assert s.connected() == []
                assert a.stats().peers.keys() == {KEYS[1]}


@pytest.mark.trio
async def test_restarted_peer_on_same_port_is_reconnected() -> None:
    with trio.fail_after(25):
        async with open_libp2p_network(SEEDS[0], ANY_PORT, {}) as a:
            b_addr = ""
            for round_ in range(2):
                listen = b_addr or ANY_PORT
                async with open_libp2p_network(SEEDS[1], listen, {KEYS[0]: addr_of(a)}) as b:
                    b_addr = addr_of(b)
                    a.set_peers({KEYS[1]: b_addr})
                    assert a.send(KEYS[1], b"round %d" % round_)
                    assert await b.inbound.receive() == (KEYS[0], b"round %d" % round_)
                    assert b.send(KEYS[0], b"back %d" % round_)
                    assert await a.inbound.receive() == (KEYS[1], b"back %d" % round_)
                # b is gone: a notices and keeps trying
                await wait_until(lambda: a.connected() == [])
                await trio.sleep(0.3)  # a's redials fail meanwhile (negative cache path)
            assert a.stats().peers[KEYS[1]].reconnects >= 1


@pytest.mark.trio
async def test_set_peers_removal_disconnects() -> None:
    with trio.fail_after(20):
        async with cluster(2) as (a, b):
            await wait_until(lambda: len(a.connected()) == 1 and len(b.connected()) == 1)
            a.set_peers({})
            assert not a.send(KEYS[1], b"x")
            await wait_until(lambda: b.connected() == [] and a.connected() == [])
            assert b.send(KEYS[0], b"not wanted")  # queued: b still allows a
            await wait_until(lambda: a.stats().refused >= 1)  # b redials, a refuses
            await trio.sleep(0.3)
            with pytest.raises(trio.WouldBlock):
                a.inbound.receive_nowait()
            a.set_peers({KEYS[1]: addr_of(b)})  # and back: the queued message flows
            assert await a.inbound.receive() == (KEYS[1], b"not wanted")


@pytest.mark.trio
async def test_garbage_frame_resets_only_that_stream() -> None:
    with trio.fail_after(20):
        async with open_libp2p_network(SEEDS[0], ANY_PORT, {KEYS[1]: "/ip4/127.0.0.1/tcp/9"}) as a:
            raw = _new_host(key_pair_of(SEEDS[1]))  # b's key, but a hand-written stream
            async with raw.run([Multiaddr(ANY_PORT)]):
                await raw.connect(PeerInfo(peer_id_of(KEYS[0]), [Multiaddr(addr_of(a))]))
                stream = await raw.new_stream(peer_id_of(KEYS[0]), [PROTOCOL])
                await stream.write(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1")
                await wait_until(lambda: a.stats().framing_errors == 1)
                with trio.fail_after(5), pytest.raises(StreamError):  # reset by a
                    await stream.read(1)
                good = await raw.new_stream(peer_id_of(KEYS[0]), [PROTOCOL])
                await good.write(encode_frame([b"valid"]))
                assert await a.inbound.receive() == (KEYS[1], b"valid")


@pytest.mark.trio
async def test_streams_beyond_the_per_peer_cap_reset_the_oldest() -> None:
    with trio.fail_after(20):
        async with open_libp2p_network(SEEDS[0], ANY_PORT, {KEYS[1]: "/ip4/127.0.0.1/tcp/9"}) as a:
            raw = _new_host(key_pair_of(SEEDS[1]))
            async with raw.run([Multiaddr(ANY_PORT)]):
                await raw.connect(PeerInfo(peer_id_of(KEYS[0]), [Multiaddr(addr_of(a))]))
                streams = []
                for i in range(INBOUND_STREAMS_PER_PEER + 2):
                    stream = await raw.new_stream(peer_id_of(KEYS[0]), [PROTOCOL])
                    await stream.write(encode_frame([b"%d" % i]))
                    assert await a.inbound.receive() == (KEYS[1], b"%d" % i)
                    streams.append(stream)
                for old in streams[:2]:
                    with trio.fail_after(5), pytest.raises(StreamError):
                        await old.read(1)
                for live in streams[2:]:
                    await live.write(encode_frame([b"still here"]))
                    assert await a.inbound.receive() == (KEYS[1], b"still here")


@pytest.mark.trio
async def test_full_inbound_drops_instead_of_stalling() -> None:
    with trio.fail_after(20):
        async with cluster(2, inbound_max=4) as (a, b):
            for i in range(100):
                assert a.send(KEYS[1], b"%d" % i)
            await wait_until(
                lambda: b.stats().inbound_dropped + b.stats().peers[KEYS[0]].received == 100
            )
            assert b.stats().inbound_dropped == 96
            got = [b.inbound.receive_nowait() for _ in range(4)]
            assert got == [(KEYS[0], b"%d" % i) for i in range(4)]
            assert a.send(KEYS[1], b"later")  # the stream survived
            assert await b.inbound.receive() == (KEYS[0], b"later")


@pytest.mark.trio
async def test_bad_configuration_is_refused_and_changes_nothing() -> None:
    with trio.fail_after(10):
        with pytest.raises(ConfigError):
            async with open_libp2p_network(SEEDS[0], ANY_PORT, {}, batch_bytes_max=0):
                pass
        with pytest.raises(ConfigError):
            async with open_libp2p_network(SEEDS[0], "not a multiaddr", {}):
                pass
        async with cluster(2) as (a, b):
            with pytest.raises(IdentityError):
                a.set_peers({b"short": addr_of(b)})
            with pytest.raises(ConfigError):
                a.set_peers({KEYS[1]: "/ip4/127.0.0.1/udp/1"})
            assert a.stats().peers.keys() == {KEYS[1]}
            assert a.send(KEYS[1], b"still allowed")
            assert await b.inbound.receive() == (KEYS[0], b"still allowed")
