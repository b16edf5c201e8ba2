"""The link proxies: bytes flow both ways; a reset cut closes connections and refuses new
ones; a stall cut holds bytes until the heal; a delay delays every chunk."""

from __future__ import annotations

import pytest
import trio

from tests.chaos.proxy import HOST, open_mesh


async def echo_server(task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                async for data in stream:
                    await stream.send_all(data)
            except trio.BrokenResourceError:
                pass

    listeners = await trio.open_tcp_listeners(0, host=HOST)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(echo, listeners)


async def roundtrip(stream: trio.SocketStream, data: bytes) -> bytes:
    await stream.send_all(data)
    got = b""
    while len(got) < len(data):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.trio
async def test_forwards_cuts_stalls_and_delays() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(echo_server)
            async with open_mesh([port, port]) as mesh:
                link = mesh.links[(0, 1)]
                stream = await trio.open_tcp_stream(HOST, mesh.port(0, 1))
                assert await roundtrip(stream, b"x" * 100_000) == b"x" * 100_000

                # reset: the open connection ends, a new one is closed at once
                mesh.isolate(1, "reset")
                assert await stream.receive_some(10) == b""
                fresh = await trio.open_tcp_stream(HOST, mesh.port(0, 1))
                assert await fresh.receive_some(10) == b""
                assert link.stats.refused == 1 and link.stats.reset == 1

                # stall: connected, silent, then the held bytes arrive after the heal
                mesh.heal_all()
                mesh.isolate(0, "stall")
                stalled = await trio.open_tcp_stream(HOST, mesh.port(0, 1))
                await stalled.send_all(b"held")
                with trio.move_on_after(0.5) as waited:
                    await stalled.receive_some(10)
                assert waited.cancelled_caught
                mesh.heal_all()
                assert await stalled.receive_some(10) == b"held"

                # delay: each chunk arrives no sooner than the delay
                mesh.slow(1, 0.3)
                started = trio.current_time()
                assert await roundtrip(stalled, b"late") == b"late"
                assert trio.current_time() - started >= 0.3 * 2  # both directions are delayed
                assert mesh.stats().accepted == 2  # the refused one never reached the node
            nursery.cancel_scope.cancel()
