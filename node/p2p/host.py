"""The validator network over py-libp2p (TCP + Noise + Yamux), implementing `PeerNetwork`.

Shape (see shared/design/libp2p.md for the measured costs behind it):
- Each node opens one long-lived outbound stream per allowed peer and only writes it;
  streams a peer opens to us are only read. A writer task per peer drains everything
  queued for that peer into one frame (`framing.py`), so many messages share one
  libp2p write, the expensive part.
- `send` never blocks: it appends to the peer's bounded queue or drops (counted).
  Messages wait in the queue while the peer is unreachable and go out on reconnect.
- A dead peer shows as EOF/reset on our outbound stream (a watcher task reads it); the
  writer then redials with exponential backoff and jitter (cap `BACKOFF_CAP_S`),
  clearing libp2p's 60 s negative dial cache before every dial, so a restarted peer
  is reached again within a few seconds.
- Allow-list = the keys given to `set_peers`. A connection or stream from any other
  key is closed/reset and logged; its bytes never reach `.inbound`. Removing a key
  closes that peer's streams and connection.
- A full `.inbound` drops the message (counted, logged at most once a second) instead
  of stalling the reader: Yamux resets a writer whose reader stalls for 5 s, and PBFT
  retransmits anyway.

Rule kept here: nothing a peer sends can crash the node or block its event loop; every
queue is bounded; the context manager's exit leaves no task running.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import multiaddr
import trio
from libp2p import new_swarm
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from node.p2p.errors import ConfigError, FramingError
from node.p2p.framing import (
    BATCH_COUNT_MAX,
    FRAME_BYTES_MAX,
    MESSAGE_BYTES_MAX,
    FrameDecoder,
    check_frame_limit,
    encode_frame,
)
from node.p2p.identity import key_pair_of, peer_id_of, pubkey_bytes, pubkey_of
from node.p2p.stats import NetworkStats, PeerCounters

# py-libp2p's Yamux sends a WINDOW_UPDATE frame after every read unless this is "0"; with
# "0" it updates once half the window is consumed (go-yamux's rule), which never stalls a
# sender (the window is 256 KiB and grows) and cuts a frame per message: bench.p2p, one
# message per frame, 441 -> 383 us CPU per message. The library reads it on every read,
# so setting it here (before any stream exists) is enough; an operator's value wins.
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")

DEFAULT_PROTOCOL = "/alps/pbft/1"
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
DIAL_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 1.0
SHUTDOWN_TIMEOUT_S = 5.0
READ_BYTES = 256 * 1024
INBOUND_STREAMS_PER_PEER = 4  # a peer needs one; more are reset, oldest first
ITEM_OVERHEAD = 5  # msgpack bin32 header; array header is at most the same
LOG_EVERY_S = 1.0

Inbound = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Limits:
    queue_max: int
    inbound_max: int
    frame_bytes_max: int
    batch_bytes_max: int

    def __post_init__(self) -> None:
        if self.queue_max < 1 or self.inbound_max < 1:
            raise ConfigError("bad_limit", "queue_max and inbound_max must be >= 1")
        try:
            check_frame_limit(self.frame_bytes_max)
        except FramingError as exc:
            raise ConfigError("bad_limit", exc.detail) from exc
        if not 1 <= self.batch_bytes_max <= self.frame_bytes_max - 2 * ITEM_OVERHEAD:
            raise ConfigError("bad_limit", "batch_bytes_max must be in 1..frame_bytes_max-10")

    @property
    def message_bytes_max(self) -> int:
        """The largest message that fits one frame on its own."""
        return min(MESSAGE_BYTES_MAX, self.frame_bytes_max - 2 * ITEM_OVERHEAD)


def _parse_peers(own: bytes, peers: Mapping[bytes, str]) -> dict[bytes, multiaddr.Multiaddr]:
    """Validate the allow-list (all or nothing); our own key is skipped."""
    parsed: dict[bytes, multiaddr.Multiaddr] = {}
    for key, address in peers.items():
        peer_id_of(key)  # IdentityError for anything but a 32-byte Ed25519 key
        try:
            addr = multiaddr.Multiaddr(address)
        except Exception as exc:  # multiaddr raises several unrelated types
            raise ConfigError("bad_address", f"{address!r}: {exc}") from exc
        if "tcp" not in {p.name for p in addr.protocols()}:
            raise ConfigError("bad_address", f"{address!r} is not a TCP multiaddr")
        if key != own:
            parsed[key] = addr
    return parsed


class _Backoff:
    """Exponential backoff with full jitter in the upper half: base*2^n*[0.5, 1], capped."""

    def __init__(self) -> None:
        self._attempt = 0
        self._random = random.Random()

    def reset(self) -> None:
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 16)
        return ceiling * self._random.uniform(0.5, 1.0)


class _Outbox:
    """A peer's bounded FIFO with a wake-up for its single writer."""

    __slots__ = ("_items", "_max", "_wake", "closed")

    def __init__(self, limit: int) -> None:
        self._items: deque[bytes] = deque()
        self._max = limit
        self._wake = trio.Event()
        self.closed = False

    def put(self, data: bytes) -> bool:
        if self.closed or len(self._items) >= self._max:
            return False
        self._items.append(data)
        self._wake.set()
        return True

    def close(self) -> None:
        """Refuse new messages and let the writer finish after its current write."""
        self.closed = True
        self._items.clear()
        self._wake.set()

    async def take_batch(self, budget: int) -> list[bytes]:
        """Wait for one message, then take every queued one that fits `budget` bytes;
        [] once closed."""
        while not self._items:
            if self.closed:
                return []
            self._wake = trio.Event()
            await self._wake.wait()
        items = self._items
        batch = [items.popleft()]
        size = len(batch[0]) + 2 * ITEM_OVERHEAD
        while items and len(batch) < BATCH_COUNT_MAX:
            cost = len(items[0]) + ITEM_OVERHEAD
            if size + cost > budget:
                break
            batch.append(items.popleft())
            size += cost
        return batch


class _Peer:
    __slots__ = (
        "addr",
        "counters",
        "done",
        "failing",
        "inbound",
        "opening",
        "outbox",
        "peer_id",
        "pubkey",
        "scope",
        "stream",
    )

    def __init__(self, pubkey: bytes, addr: multiaddr.Multiaddr, queue_max: int) -> None:
        self.pubkey = pubkey
        self.peer_id = peer_id_of(pubkey)
        self.addr = addr
        self.outbox = _Outbox(queue_max)
        self.counters = PeerCounters()
        self.scope = trio.CancelScope()
        self.stream: INetStream | None = None  # our live outbound stream
        self.opening: trio.CancelScope | None = None  # the dial/open in progress
        self.failing = False  # dials fail since the last success (logged once)
        self.done = trio.Event()  # its task has ended
        self.inbound: dict[INetStream, None] = {}  # streams the peer opened, oldest first


class _AllowListNotifee(INotifee):
    """Closes any connection whose remote key is not in the allow-list."""

    def __init__(self, network: LibP2PNetwork) -> None:
        self._network = network

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._network._on_connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._network._on_disconnected(conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class LibP2PNetwork:
    """One validator's network; get it from `open_libp2p_network`."""

    def __init__(
        self,
        host: BasicHost,
        key_pair: KeyPair,
        protocol: TProtocol,
        limits: Limits,
        log: logging.Logger,
    ) -> None:
        self.pubkey = pubkey_bytes(key_pair)
        self._host = host
        self._protocol = protocol
        self._limits = limits
        self._nursery: trio.Nursery | None = None  # set by _start
        self._log = log
        self._peers: dict[bytes, _Peer] = {}
        self._by_id: dict[ID, _Peer] = {}
        self._inbound_send, self.inbound = trio.open_memory_channel[Inbound](limits.inbound_max)
        self._closed = False
        self._inbound_dropped = 0
        self._refused = 0
        self._framing_errors = 0
        self._unknown = 0
        self._drops_unlogged = 0
        self._last_drop_log = -LOG_EVERY_S

    # --- PeerNetwork -------------------------------------------------------------

    def send(self, peer: bytes, data: bytes) -> bool:
        state = self._peers.get(peer)
        if state is None or self._closed:
            self._unknown += 1
            return False
        if len(data) > self._limits.message_bytes_max or not state.outbox.put(bytes(data)):
            state.counters.dropped += 1
            return False
        state.counters.queued += 1
        return True

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        """Replace the allow-list (all or nothing: IdentityError or ConfigError for a
        bad key or address changes nothing). A no-op once the network is closed."""
        wanted = _parse_peers(self.pubkey, peers)
        if self._closed:
            return
        for key in [k for k in self._peers if k not in wanted]:
            self._remove_peer(self._peers[key])
        for key, addr in wanted.items():
            state = self._peers.get(key)
            if state is None:
                self._add_peer(_Peer(key, addr, self._limits.queue_max))
            else:
                state.addr = addr  # used from the next dial on

    def connected(self) -> list[bytes]:
        return [k for k, p in self._peers.items() if p.stream is not None]

    # --- extras ------------------------------------------------------------------

    @property
    def peer_id(self) -> ID:
        return self._host.get_id()

    @property
    def listen_addrs(self) -> list[str]:
        """Addresses actually bound (a tcp port 0 shows the port the OS chose)."""
        return [str(a) for a in self._host.get_transport_addrs()]

    def stats(self) -> NetworkStats:
        return NetworkStats(
            peers={k: p.counters.snapshot(p.stream is not None) for k, p in self._peers.items()},
            inbound_dropped=self._inbound_dropped,
            refused=self._refused,
            framing_errors=self._framing_errors,
            unknown_peer=self._unknown,
        )

    # --- peer lifecycle ----------------------------------------------------------

    def _start(self, nursery: trio.Nursery) -> None:
        """Begin dialling: the allow-list may be set before the host listens."""
        self._nursery = nursery
        for peer in self._peers.values():
            nursery.start_soon(self._run_peer, peer)

    def _add_peer(self, peer: _Peer) -> None:
        self._peers[peer.pubkey] = peer
        self._by_id[peer.peer_id] = peer
        if self._nursery is not None:
            self._nursery.start_soon(self._run_peer, peer)

    def _remove_peer(self, peer: _Peer) -> None:
        del self._peers[peer.pubkey]
        del self._by_id[peer.peer_id]
        self._stop_peer(peer)
        self._log.info("peer %s removed from the allow-list; disconnecting", peer.pubkey.hex())
        if self._nursery is not None:
            self._nursery.start_soon(self._disconnect, peer)

    @staticmethod
    def _stop_peer(peer: _Peer) -> None:
        """Stop the peer's task: at once if it is dialling or waiting, else after the
        write in progress (cancelling a write mid-frame corrupts the Noise stream:
        the peer then logs 'Failed authentication of message')."""
        peer.outbox.close()
        if peer.stream is None:
            peer.scope.cancel()

    async def _disconnect(self, peer: _Peer) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            await peer.done.wait()
        peer.scope.cancel()
        for stream in list(peer.inbound):
            await self._reset(stream)
        if peer.peer_id not in self._by_id:  # not re-added meanwhile
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await self._host.disconnect(peer.peer_id)

    async def _run_peer(self, peer: _Peer) -> None:
        """Keep one outbound stream to `peer` and write its queue into it until stopped."""
        backoff = _Backoff()
        first = True
        try:
            with peer.scope:
                while not peer.outbox.closed:
                    stream = await self._open_stream(peer)
                    if stream is not None:
                        if not first:
                            peer.counters.reconnects += 1
                        first = False
                        started = trio.current_time()
                        await self._session(peer, stream)
                        if trio.current_time() - started > BACKOFF_CAP_S:
                            backoff.reset()
                    if not peer.outbox.closed:
                        await trio.sleep(backoff.next())
        finally:
            peer.done.set()

    async def _open_stream(self, peer: _Peer) -> INetStream | None:
        """Dial if there is no live connection, then open our stream; None on failure."""
        network = _swarm_of(self._host)
        stream: INetStream | None = None
        with trio.move_on_after(DIAL_TIMEOUT_S):
            try:
                if not [c for c in network.get_connections(peer.peer_id) if not c.is_closed]:
                    network.unblock_peer(peer.peer_id)  # forget the 60 s negative cache
                    store = self._host.get_peerstore()
                    store.clear_addrs(peer.peer_id)
                    store.add_addrs(peer.peer_id, [peer.addr], 0)
                    await network.dial_peer(peer.peer_id)
                stream = await self._new_stream(peer)
            except Exception as exc:  # libp2p raises many unrelated types on dial failure
                self._dial_failed(peer, repr(exc))
                return None
        if stream is None:
            self._dial_failed(peer, "timed out, or its connection closed")
            return None
        if peer.failing:
            self._log.info("peer %s reachable again", peer.pubkey.hex())
        peer.failing = False
        return stream

    async def _new_stream(self, peer: _Peer) -> INetStream | None:
        """Open and negotiate our stream. A stream opened on a connection that is
        closing hangs instead of failing (the swarm keeps a dead connection listed for
        ~0.2 s after its streams saw EOF), so a disconnect of this peer cuts the wait
        short (`_on_disconnected`); None then."""
        stream: INetStream | None = None
        with trio.CancelScope() as peer.opening:
            stream = await self._host.new_stream(peer.peer_id, [self._protocol])
        peer.opening = None
        return stream

    def _dial_failed(self, peer: _Peer, why: str) -> None:
        if not peer.failing:
            self._log.warning("peer %s unreachable (%s); retrying", peer.pubkey.hex(), why)
        else:
            self._log.debug("dial %s failed again: %s", peer.pubkey.hex()[:16], why)
        peer.failing = True

    async def _session(self, peer: _Peer, stream: INetStream) -> None:
        self._log.debug("stream to %s open", peer.pubkey.hex()[:16])
        peer.stream = stream
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, peer, stream, nursery.cancel_scope)
                await self._pump(peer, stream)
                nursery.cancel_scope.cancel()
        finally:
            peer.stream = None
            if peer.outbox.closed:  # we are stopping: end the stream cleanly
                await self._close_stream(stream)
            else:
                await self._reset(stream)

    async def _watch(self, peer: _Peer, stream: INetStream, scope: trio.CancelScope) -> None:
        """Our outbound stream is never written by the peer: any read outcome ends it."""
        try:
            data = await stream.read(1)
        except Exception as exc:  # EOF / reset when the peer goes away
            self._log.debug("stream to %s ended: %r", peer.pubkey.hex()[:16], exc)
        else:
            if data:
                self._log.warning("peer %s wrote on our outbound stream", peer.pubkey.hex())
        scope.cancel()

    async def _pump(self, peer: _Peer, stream: INetStream) -> None:
        counters = peer.counters
        while True:
            batch = await peer.outbox.take_batch(self._limits.batch_bytes_max)
            if not batch:
                return  # closed
            frame = encode_frame(batch, self._limits.frame_bytes_max)
            written = False
            try:
                await stream.write(frame)
                written = True
            except Exception as exc:  # StreamReset/StreamClosed/StreamError, raw conn errors
                self._log.debug("write to %s failed: %r", peer.pubkey.hex()[:16], exc)
                return
            finally:
                if written:
                    counters.sent += len(batch)
                    counters.frames += 1
                    counters.bytes += len(frame)
                else:
                    counters.lost += len(batch)

    # --- inbound -----------------------------------------------------------------

    async def _handle_stream(self, stream: INetStream) -> None:
        peer_id = stream.muxed_conn.peer_id
        peer = self._by_id.get(peer_id)
        if peer is None or self._closed:
            if not self._closed:
                self._refuse(peer_id, "stream")
            await self._reset(stream)
            return
        if len(peer.inbound) >= INBOUND_STREAMS_PER_PEER:
            # A restarted peer's old stream may linger; a hostile one could open many.
            oldest = next(iter(peer.inbound))
            del peer.inbound[oldest]
            await self._reset(oldest)
        peer.inbound[stream] = None
        try:
            await self._read_inbound(peer, stream)
        finally:
            peer.inbound.pop(stream, None)
            await self._reset(stream)

    async def _read_inbound(self, peer: _Peer, stream: INetStream) -> None:
        decoder = FrameDecoder(self._limits.frame_bytes_max)
        try:
            while True:
                chunk = await stream.read(READ_BYTES)
                if not chunk:
                    return
                for batch in decoder.feed(chunk):
                    if self._by_id.get(peer.peer_id) is not peer:
                        return  # removed from the allow-list meanwhile
                    self._deliver(peer, batch)
        except FramingError as exc:
            self._framing_errors += 1
            self._log.warning("bad frame from %s (%s); resetting", peer.pubkey.hex(), exc)
        except StreamEOF:
            return
        except Exception as exc:  # reset / connection errors: the peer went away
            self._log.debug("inbound from %s ended: %r", peer.pubkey.hex()[:16], exc)

    def _deliver(self, peer: _Peer, batch: list[bytes]) -> None:
        send = self._inbound_send.send_nowait
        for data in batch:
            try:
                send((peer.pubkey, data))
            except trio.WouldBlock:
                self._inbound_dropped += 1
                self._drops_unlogged += 1
            else:
                peer.counters.received += 1
        if self._drops_unlogged:
            now = trio.current_time()
            if now - self._last_drop_log >= LOG_EVERY_S:
                self._log.warning("inbound full: dropped %d messages", self._drops_unlogged)
                self._drops_unlogged = 0
                self._last_drop_log = now

    # --- allow-list at the connection level ---------------------------------------

    def _on_connected(self, conn: INetConn) -> None:
        peer_id = conn.muxed_conn.peer_id
        if peer_id not in self._by_id and not self._closed:
            self._refuse(peer_id, "connection")
            if self._nursery is not None:
                self._nursery.start_soon(self._close_conn, conn)

    def _on_disconnected(self, conn: INetConn) -> None:
        peer = self._by_id.get(conn.muxed_conn.peer_id)
        if peer is not None:
            self._log.debug("connection to %s closed", peer.pubkey.hex()[:16])
            if peer.opening is not None:
                peer.opening.cancel()  # it may be waiting on this dead connection

    def _refuse(self, peer_id: ID, what: str) -> None:
        self._refused += 1
        try:
            who = pubkey_of(peer_id).hex()
        except Exception:
            who = str(peer_id)
        self._log.warning("refused %s from %s: not in the allow-list", what, who)

    async def _close_conn(self, conn: INetConn) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            try:
                await conn.close()
            except Exception as exc:
                self._log.debug("closing refused connection: %r", exc)

    @staticmethod
    async def _close_stream(stream: INetStream) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            try:
                await stream.close()
            except Exception:
                pass  # already gone

    @staticmethod
    async def _reset(stream: INetStream) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            try:
                await stream.reset()
            except Exception:
                pass  # already gone

    def _close(self) -> None:
        self._closed = True
        for peer in self._peers.values():
            self._stop_peer(peer)
        self._inbound_send.close()

    async def _wait_stopped(self) -> None:
        for peer in self._peers.values():
            await peer.done.wait()


_DIAL_NOISE = (
    "Failed to open TCP stream",
    "Failed to open stream to peer",
    # a stream negotiated on a connection the peer is closing (seen while peers shut down)
    "MultiselectClient handshake: write failed",
)


class _DialFailureFilter(logging.Filter):
    """libp2p logs every refused TCP dial, and every stream negotiation cut by a peer
    going away, at ERROR; a validator that is down would print one every backoff
    period. We log reachability changes ourselves instead (`_dial_failed`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_DIAL_NOISE)


_DIAL_FILTER = _DialFailureFilter()


def _wire_libp2p_logging(level: int) -> None:
    """libp2p's logger has propagate=False and no handler, and some of its modules pin
    their own level (the auto-connector logs at INFO); route it all into ours at `level`."""
    root = logging.getLogger("libp2p")
    root.propagate = True
    root.setLevel(level)
    for name, child in logging.root.manager.loggerDict.items():
        if name.startswith("libp2p.") and isinstance(child, logging.Logger):
            child.setLevel(logging.NOTSET)
    for name in (
        "libp2p.transport.tcp.tcp",
        "libp2p.host.basic_host",
        "libp2p.protocol_muxer.multiselect_client",
    ):
        noisy = logging.getLogger(name)
        if _DIAL_FILTER not in noisy.filters:
            noisy.addFilter(_DIAL_FILTER)


def _swarm_of(host: BasicHost) -> Swarm:
    """The host's network as the concrete Swarm (for unblock_peer, auto_connector)."""
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):
        raise ConfigError("unexpected_network", f"libp2p network is {type(swarm).__name__}")
    return swarm


def _new_host(key_pair: KeyPair) -> BasicHost:
    swarm = new_swarm(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(key_pair, new_x25519_key_pair().private_key)},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        retry_config=RetryConfig(max_retries=0),  # we redial with our own backoff
        connection_config=ConnectionConfig(
            max_connections_per_peer=1,  # else every dial waits 250 ms (Happy Eyeballs)
            dial_timeout=DIAL_TIMEOUT_S,
        ),
    )
    return BasicHost(network=swarm)


class ListenError(OSError):
    """The libp2p host did not bind its listen address (taken, or not this machine's)."""


@asynccontextmanager
async def open_libp2p_network(
    seed: bytes,
    listen_multiaddr: str,
    peers: Mapping[bytes, str],
    *,
    protocol: str = DEFAULT_PROTOCOL,
    queue_max: int = 1024,
    inbound_max: int = 4096,
    frame_bytes_max: int = FRAME_BYTES_MAX,
    batch_bytes_max: int = 1024 * 1024,
    logger: logging.Logger | None = None,
    libp2p_log_level: int = logging.WARNING,
) -> AsyncIterator[LibP2PNetwork]:
    """Listen on `listen_multiaddr`, connect to `peers` (validator key -> multiaddr), and
    yield the network; on exit every task and connection is closed."""
    limits = Limits(queue_max, inbound_max, frame_bytes_max, batch_bytes_max)
    key_pair = key_pair_of(seed)
    _parse_peers(pubkey_bytes(key_pair), peers)  # fail before binding anything
    try:
        listen = multiaddr.Multiaddr(listen_multiaddr)
    except Exception as exc:
        raise ConfigError("bad_address", f"{listen_multiaddr!r}: {exc}") from exc
    log = logger or logging.getLogger("node.p2p")
    _wire_libp2p_logging(libp2p_log_level)
    host = _new_host(key_pair)
    network = LibP2PNetwork(host, key_pair, TProtocol(protocol), limits, log)
    network.set_peers(peers)
    # Handler and notifee before listening, and never removed: a peer dialling in
    # during start-up or shutdown gets a reset stream, not "protocol not supported".
    host.set_stream_handler(TProtocol(protocol), network._handle_stream)
    host.get_network().register_notifee(_AllowListNotifee(network))
    async with host.run([listen]):
        if not network.listen_addrs:  # py-libp2p logs a failed listen and carries on
            raise ListenError(
                f"libp2p could not listen on {listen_multiaddr} (its log line above says why)"
            )
        try:
            # The auto-connector dials any peer in the peerstore (e.g. learnt by
            # identify) to reach a connection target; validators dial only each other.
            await _swarm_of(host).auto_connector.stop()
            async with trio.open_nursery() as nursery:
                network._start(nursery)
                try:
                    yield network
                finally:
                    network._close()
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                        await network._wait_stopped()  # writes in progress finish
                    nursery.cancel_scope.cancel()
        finally:
            # Close connections explicitly before the service stops: the swarm's own
            # stop path closes them while cancelled, so after the first one the rest
            # leak, still open at the peer, which then opens streams nobody reads.
            with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT_S):
                try:
                    await host.close()
                except Exception as exc:
                    log.debug("closing the libp2p host: %r", exc)
