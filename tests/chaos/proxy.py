"""TCP proxies between validators: one per directed (dialer, listener) link, so the chaos
controller can partition a node or slow its links without root or network namespaces.

Node i reaches node j's libp2p port only through the link proxy (i, j) (tests/chaos
rewrites each node's `[p2p.peers]` to the proxy ports). A libp2p connection carries both
directions, so a link proxy sees all traffic of the connection that i dialled to j.

Link states:
- `reset` cut: every connection on the link is closed at once and new ones are closed on
  accept (the peers see EOF/reset and redial).
- `stall` cut: bytes stop flowing in both directions (the proxy stops reading, so TCP
  pushes back) and new connections are accepted but stay silent; on heal the held bytes
  flow on, as after a short real partition with TCP retransmission.
- delay: every chunk is delivered `delay_s` after it was read (order kept, bounded
  buffer of `CHUNKS_MAX` chunks per direction).

Rule kept here: loopback only; every connection task lives in the mesh's nursery and
ends when the mesh closes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

HOST = "127.0.0.1"
READ_BYTES = 64 * 1024
CHUNKS_MAX = 256
CUT_MODES = ("reset", "stall")


@dataclasses.dataclass
class LinkStats:
    accepted: int = 0
    refused: int = 0
    reset: int = 0
    bytes: int = 0


class Link:
    """The proxy for connections node `dialer` opens to node `listener`."""

    def __init__(self, dialer: int, listener: int, target_port: int) -> None:
        self.dialer, self.listener, self.target_port = dialer, listener, target_port
        self.port = 0  # set when the mesh starts listening
        self.cut_mode: str | None = None
        self.delay_s = 0.0
        self.stats = LinkStats()
        self._flowing = trio.Event()
        self._flowing.set()
        self._conns: set[trio.CancelScope] = set()

    def cut(self, mode: str) -> None:
        if mode not in CUT_MODES:
            raise ValueError(f"cut mode must be one of {CUT_MODES}")
        self.cut_mode = mode
        if mode == "reset":
            self.stats.reset += len(self._conns)
            for scope in list(self._conns):
                scope.cancel()
        elif self._flowing.is_set():
            self._flowing = trio.Event()

    def heal(self) -> None:
        self.cut_mode = None
        self._flowing.set()

    async def handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self.cut_mode == "reset":
                self.stats.refused += 1
                return
            try:
                upstream = await trio.open_tcp_stream(HOST, self.target_port)
            except OSError:
                self.stats.refused += 1
                return
            self.stats.accepted += 1
            async with upstream:
                with trio.CancelScope() as scope:
                    self._conns.add(scope)
                    try:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(self._direction, client, upstream, scope)
                            nursery.start_soon(self._direction, upstream, client, scope)
                    finally:
                        self._conns.discard(scope)

    async def _direction(
        self, src: trio.SocketStream, dst: trio.SocketStream, conn: trio.CancelScope
    ) -> None:
        """src -> dst, honouring stall and delay; the connection ends when either side
        does (libp2p never half-closes a connection it still uses)."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](CHUNKS_MAX)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write, receive, dst, conn)
            async with send:
                while True:
                    await self._flowing.wait()
                    try:
                        data = await src.receive_some(READ_BYTES)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        data = b""
                    if not data:
                        break
                    await send.send((trio.current_time() + self.delay_s, data))
        conn.cancel()

    async def _write(
        self,
        receive: trio.MemoryReceiveChannel[tuple[float, bytes]],
        dst: trio.SocketStream,
        conn: trio.CancelScope,
    ) -> None:
        async with receive:
            async for due, data in receive:
                await trio.sleep_until(due)
                await self._flowing.wait()
                try:
                    await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    conn.cancel()
                    return
                self.stats.bytes += len(data)


class Mesh:
    """All link proxies of an n-node cluster."""

    def __init__(self, target_ports: list[int]) -> None:
        n = len(target_ports)
        self.n = n
        self.links = {
            (i, j): Link(i, j, target_ports[j]) for i in range(n) for j in range(n) if i != j
        }

    def port(self, dialer: int, listener: int) -> int:
        return self.links[(dialer, listener)].port

    def links_of(self, node: int) -> Iterable[Link]:
        return [link for (i, j), link in self.links.items() if node in (i, j)]

    def isolate(self, node: int, mode: str) -> None:
        """Partition `node` from every other node."""
        for link in self.links_of(node):
            link.cut(mode)

    def slow(self, node: int, delay_s: float) -> None:
        for link in self.links_of(node):
            link.delay_s = delay_s

    def heal_all(self) -> None:
        for link in self.links.values():
            link.heal()
            link.delay_s = 0.0

    def stats(self) -> LinkStats:
        total = LinkStats()
        for link in self.links.values():
            for field in dataclasses.fields(LinkStats):
                name = field.name
                setattr(total, name, getattr(total, name) + getattr(link.stats, name))
        return total


@asynccontextmanager
async def open_mesh(target_ports: list[int]) -> AsyncIterator[Mesh]:
    """Listen on an OS-chosen loopback port per link; serve until the block exits."""
    mesh = Mesh(target_ports)
    async with trio.open_nursery() as nursery:
        for link in mesh.links.values():
            listeners = await trio.open_tcp_listeners(0, host=HOST)
            link.port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, link.handle, listeners)
        try:
            yield mesh
        finally:
            nursery.cancel_scope.cancel()
