"""The admin app, and both apps served for real by Hypercorn on 127.0.0.1 (ephemeral
ports): Date header on every answer, admin routes absent from the public port, a
non-loopback admin address refused, and the device agent's own HTTP client (the
docs/api.md contract) working against the real server."""

from __future__ import annotations

import email.utils
import logging
from collections.abc import AsyncIterator, Iterator
from functools import partial

import httpx
import pytest
import trio

from device_agent.nodeclient import NodeClient
from node.api.admin import make_admin_app
from node.api.errors import ApiConfigError
from node.api.serve import ApiAddresses, serve_api
from node.ledger.usage import UsageReport, make_usage_report
from tests.api.chain import Chain
from tests.api.fakecontrol import FakeControl
from tests.ledger.harness import CHAIN

pytestmark = pytest.mark.trio


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    yield
    root.setLevel(before)


@pytest.fixture
async def admin(node: FakeControl) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_admin_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as c:
        yield c


async def test_log_level_changes_the_root_logger(
    admin: httpx.AsyncClient, root_level: None
) -> None:
    for level in ("debug", "error", "info"):
        answer = await admin.post("/admin/log-level", json={"level": level})
        assert answer.status_code == 200 and answer.json() == {"level": level}
        assert logging.getLogger().level == getattr(logging, level.upper())


@pytest.mark.parametrize(
    "body", [b"", b"{", b'{"level": "loud"}', b'{"level": 10}', b'{"level": "debug", "x": 1}']
)
async def test_bad_log_level_is_400_and_changes_nothing(
    admin: httpx.AsyncClient, root_level: None, body: bytes
) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    answer = await admin.post("/admin/log-level", content=body)
    assert answer.status_code == 400 and answer.json()["error"] == "bad_schema"
    assert logging.getLogger().level == logging.WARNING


async def test_oversized_admin_body_is_413(admin: httpx.AsyncClient) -> None:
    answer = await admin.post("/admin/log-level", content=b" " * 10_000)
    assert answer.status_code == 413


async def test_peers(admin: httpx.AsyncClient, node: FakeControl) -> None:
    doc = (await admin.get("/admin/peers")).json()
    assert doc["peers"] == node.peers and doc["validators"] == node.status()["validators"]


@pytest.mark.parametrize(
    "address", ["0.0.0.0:8701", "10.1.2.3:8701", "[::]:8701", "example.com:8701", "8701", ":1"]
)
async def test_non_loopback_admin_address_is_refused(node: FakeControl, address: str) -> None:
    with trio.fail_after(10), pytest.raises(ApiConfigError) as info:
        await serve_api(node, "127.0.0.1:0", admin_listen=address)
    assert info.value.code in ("admin_not_loopback", "bad_listen")
    assert address in info.value.detail


async def _agent_calls(url: str, chain: Chain) -> tuple[str, str, object, list[str]]:
    """The device agent's client, in a thread (it is blocking, stdlib http.client)."""
    client = NodeClient(url, timeout_s=5)
    gateway = chain.gateways[1]
    device = await trio.to_thread.run_sync(client.device, gateway.public_key)
    committed = await trio.to_thread.run_sync(client.lookup, chain.usage_txs[1].tx_id)
    sku, territory = "cam-1", "US"
    report = UsageReport(sku, territory, 1, device.last_hash, {"units": 10**6, "net_sales": 1})
    tx = make_usage_report(gateway, CHAIN, device.last_seq + 1, report)
    results = await trio.to_thread.run_sync(client.submit, [tx])
    pending = await trio.to_thread.run_sync(client.lookup, tx.tx_id)
    assert client.skew_s is not None and abs(client.skew_s) < 60
    return committed, pending, device, [r.status for r in results]


async def test_real_hypercorn_public_and_admin(node: FakeControl, chain: Chain) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            addresses: ApiAddresses = await nursery.start(
                partial(serve_api, node, "127.0.0.1:0", admin_listen="127.0.0.1:0")
            )
            public_port = int(addresses.public.rsplit(":", 1)[1])
            assert public_port > 0 and addresses.admin != addresses.public
            async with httpx.AsyncClient(base_url=f"http://{addresses.public}") as c:
                status = await c.get("/v1/status")
                assert status.status_code == 200 and status.json()["chain_id"] == CHAIN
                assert email.utils.parsedate_to_datetime(status.headers["date"]) is not None
                assert "server" not in status.headers
                for path in ("/admin/peers", "/admin/docs"):
                    hidden = await c.get(path)
                    assert hidden.status_code == 404 and "date" in hidden.headers
                assert (await c.post("/admin/log-level", json={"level": "debug"})).status_code in (
                    404,
                    405,
                )
                big = await c.post("/v1/txs", content=b"\x00" * (2 * 1024 * 1024))
                assert big.status_code == 413 and "date" in big.headers
                garbage = await c.post("/v1/txs", content=b"\xc1")
                assert garbage.status_code == 400 and "date" in garbage.headers
            async with httpx.AsyncClient(base_url=f"http://{addresses.admin}") as a:
                peers = await a.get("/admin/peers")
                assert peers.status_code == 200 and peers.json()["peers"] == node.peers
                assert (await a.get("/v1/status")).status_code == 404
            committed, pending, device, statuses = await _agent_calls(
                f"http://{addresses.public}", chain
            )
            assert (committed, pending, statuses) == ("committed", "pending", ["pending"])
            assert getattr(device, "enrolled", False) is True
            assert len(node.submitted) == 1
            nursery.cancel_scope.cancel()
