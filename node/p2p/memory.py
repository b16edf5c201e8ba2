"""In-memory twin of the libp2p peer network, for testing the driver without sockets.

A `MemoryHub` joins networks opened on it. Delivery follows the real network's rules:
a message goes from A to B only while both are open, each lists the other's key in its
allow-list, and the link A-B is not partitioned; until then it waits in A's bounded
per-peer queue (as it would while libp2p reconnects) and is delivered, in order, when
the link comes back. A full queue or a full `.inbound` drops, counted, never blocks.

Rule kept here: the twin delivers synchronously inside `send`, `set_peers`, `heal` and
`open`, so tests are deterministic (no tasks, no clock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import TracebackType

import trio

from node.p2p.errors import ConfigError
from node.p2p.framing import MESSAGE_BYTES_MAX
from node.p2p.stats import NetworkStats, PeerCounters

Inbound = tuple[bytes, bytes]


class MemoryHub:
    """The shared medium: open networks by key, and the set of cut links."""

    def __init__(self) -> None:
        self._open: dict[bytes, MemoryNetwork] = {}
        self._cut: set[frozenset[bytes]] = set()

    def open(
        self,
        pubkey: bytes,
        peers: Mapping[bytes, str],
        *,
        queue_max: int = 1024,
        inbound_max: int = 4096,
    ) -> MemoryNetwork:
        if pubkey in self._open:
            raise ConfigError("already_open", f"{pubkey.hex()} is already open on this hub")
        network = MemoryNetwork(self, pubkey, peers, queue_max=queue_max, inbound_max=inbound_max)
        self._open[pubkey] = network
        self._flush_all()
        return network

    def partition(self, a: bytes, b: bytes) -> None:
        """Cut the link between `a` and `b` (both directions) until `heal`."""
        if a == b:
            raise ConfigError("bad_partition", "a node cannot be cut from itself")
        self._cut.add(frozenset((a, b)))

    def heal(self) -> None:
        """Restore every cut link and deliver what waited."""
        self._cut.clear()
        self._flush_all()

    def reachable(self, a: bytes, b: bytes) -> bool:
        na, nb = self._open.get(a), self._open.get(b)
        return (
            na is not None
            and nb is not None
            and b in na.peers
            and a in nb.peers
            and frozenset((a, b)) not in self._cut
        )

    def _closed(self, pubkey: bytes) -> None:
        self._open.pop(pubkey, None)

    def _flush_all(self) -> None:
        for network in list(self._open.values()):
            for peer in list(network.peers):
                self._flush(network, peer)

    def _flush(self, src: MemoryNetwork, dst_key: bytes) -> None:
        if not self.reachable(src.pubkey, dst_key):
            return
        dst = self._open[dst_key]
        queue = src._outbox.get(dst_key)
        counters = src._counters.get(dst_key)
        if not queue or counters is None:
            return
        while queue:
            data = queue.popleft()
            counters.sent += 1
            counters.bytes += len(data)
            dst._deliver(src.pubkey, data)
        counters.frames += 1


class MemoryNetwork:
    """One node's view of the hub; implements `PeerNetwork` plus `.inbound`."""

    def __init__(
        self,
        hub: MemoryHub,
        pubkey: bytes,
        peers: Mapping[bytes, str],
        *,
        queue_max: int,
        inbound_max: int,
    ) -> None:
        if queue_max < 1 or inbound_max < 1:
            raise ConfigError("bad_limit", "queue_max and inbound_max must be >= 1")
        self._hub = hub
        self.pubkey = pubkey
        self._queue_max = queue_max
        self.peers: dict[bytes, str] = {}
        self._outbox: dict[bytes, deque[bytes]] = {}
        self._counters: dict[bytes, PeerCounters] = {}
        self._inbound_send, self.inbound = trio.open_memory_channel[Inbound](inbound_max)
        self._inbound_dropped = 0
        self._unknown = 0
        self._closed = False
        self._apply_peers(peers)

    def send(self, peer: bytes, data: bytes) -> bool:
        counters = self._counters.get(peer)
        if self._closed or counters is None:
            self._unknown += 1
            return False
        queue = self._outbox[peer]
        if len(data) > MESSAGE_BYTES_MAX or len(queue) >= self._queue_max:
            counters.dropped += 1
            return False
        queue.append(bytes(data))
        counters.queued += 1
        self._hub._flush(self, peer)
        return True

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        self._apply_peers(peers)
        self._hub._flush_all()

    def connected(self) -> list[bytes]:
        return [p for p in self.peers if self._hub.reachable(self.pubkey, p)]

    def stats(self) -> NetworkStats:
        return NetworkStats(
            peers={
                p: c.snapshot(self._hub.reachable(self.pubkey, p))
                for p, c in self._counters.items()
            },
            inbound_dropped=self._inbound_dropped,
            unknown_peer=self._unknown,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub._closed(self.pubkey)
            self._inbound_send.close()

    def __enter__(self) -> MemoryNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _apply_peers(self, peers: Mapping[bytes, str]) -> None:
        wanted = {k: v for k, v in peers.items() if k != self.pubkey}
        for gone in set(self.peers) - set(wanted):
            del self._outbox[gone]
            del self._counters[gone]
        for key in wanted:
            self._outbox.setdefault(key, deque())
            self._counters.setdefault(key, PeerCounters())
        self.peers = wanted

    def _deliver(self, sender: bytes, data: bytes) -> None:
        try:
            self._inbound_send.send_nowait((sender, data))
        except trio.WouldBlock:
            self._inbound_dropped += 1
        else:
            self._counters[sender].received += 1
