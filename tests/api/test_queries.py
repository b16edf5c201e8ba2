"""Every query endpoint answers from the real chain state (tests/api/chain.py); expected
values come from the ledger records read directly from the store, or from the licensing
web's own independent arithmetic (tests/ledger/test_licensing_web.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from node.ledger.block import Receipt
from node.ledger.certificate import CommitCertificate
from node.ledger.model import Licence, k_licence
from node.ledger.tx import make_tx
from tests.api.chain import VALIDATORS, Chain
from tests.api.fakecontrol import FakeControl
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import CHAIN, signer_for

pytestmark = pytest.mark.trio


async def get_ok(client: httpx.AsyncClient, path: str) -> Any:
    answer = await client.get(path)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def q1_units(sku: str) -> int:
    return sum(
        web.monthly_units(g, m)
        for g, (s, _t) in enumerate(web.GATEWAYS)
        for m in (1, 2, 3)
        if s == sku
    )


# -- transactions -----------------------------------------------------------------------------


async def test_tx_lookup_committed_pending_unknown(
    client: httpx.AsyncClient, node: FakeControl, chain: Chain
) -> None:
    tx = chain.usage_txs[6]
    height, index = chain.store.tx_location(tx.tx_id) or (-1, -1)
    stored: Receipt = (chain.store.receipts(height) or [])[index]
    doc = await get_ok(client, f"/v1/txs/{tx.tx_id.hex()}")
    assert (doc["status"], doc["height"], doc["index"]) == ("committed", height, index)
    assert doc["receipt"]["accepted"] is True and doc["receipt"]["code"] == "ok"
    assert [e["kind"] for e in doc["receipt"]["events"]] == [e.kind for e in stored.events]
    assert doc["tx"]["signer"] == tx.signer.hex() and doc["tx"]["nonce"] == tx.nonce

    waiting = make_tx(signer_for("x"), CHAIN, "test.op", {}, 1)
    node.pending[waiting.tx_id] = waiting
    doc = await get_ok(client, f"/v1/txs/{waiting.tx_id.hex()}")
    assert (doc["status"], doc["height"], doc["receipt"]) == ("pending", None, None)

    doc = await get_ok(client, f"/v1/txs/{'ab' * 32}")
    assert doc == {
        "tx_id": "ab" * 32,
        "status": "unknown",
        "height": None,
        "index": None,
        "receipt": None,
        "tx": None,
    }


@pytest.mark.parametrize("bad", ["zz" * 32, "AB" * 32, "ab" * 31, "ab" * 33, "0x" + "ab" * 31])
async def test_malformed_ids_are_400(client: httpx.AsyncClient, bad: str) -> None:
    for path in (
        f"/v1/txs/{bad}",
        f"/v1/txs/{bad}/proof",
        f"/v1/devices/{bad}",
        f"/v1/accounts/{bad}",
        f"/v1/receipts/{bad}/proof",
    ):
        answer = await client.get(path)
        assert answer.status_code == 400, path
        assert answer.json()["error"] == "bad_hex"


# -- devices, status, service -------------------------------------------------------------------


async def test_device_as_the_agent_contract_says(client: httpx.AsyncClient, chain: Chain) -> None:
    gateway = chain.gateways[0]
    mine = [tx for tx in chain.usage_txs if tx.signer == gateway.public_key]
    doc = await get_ok(client, f"/v1/devices/{gateway.public_key.hex()}")
    assert doc["device"] == gateway.public_key.hex()
    assert doc["licensee"] == chain.key("oem").hex()
    assert (doc["sku"], doc["enrolled"], doc["revoked"]) == ("cam-1", True, False)
    assert doc["last_seq"] == len(mine) == 4
    assert doc["last_hash"] == mine[-1].tx_id.hex()
    assert doc["registers"]["units"] == sum(web.monthly_units(0, m) for m in (1, 2, 3, 4))
    unknown = await client.get(f"/v1/devices/{'cd' * 32}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


async def test_status_health_metrics(
    client: httpx.AsyncClient, node: FakeControl, chain: Chain
) -> None:
    head = chain.store.head()
    assert head is not None
    status = await get_ok(client, "/v1/status")
    assert status["chain_id"] == CHAIN and status["height"] == head.height
    assert status["peers"] == node.peers and status["mempool"] == 0
    node.syncing = True
    assert await get_ok(client, "/health") == {"ok": True, "syncing": True}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and metrics.content == node.metrics
    assert metrics.headers["content-type"].startswith("text/plain")


# -- blocks -------------------------------------------------------------------------------------


async def test_blocks_latest_and_by_height(client: httpx.AsyncClient, chain: Chain) -> None:
    head = chain.store.head()
    assert head is not None
    latest = await get_ok(client, "/v1/blocks/latest")
    block = chain.store.block(head.height)
    assert block is not None
    assert latest["height"] == head.height and latest["hash"] == head.block_hash.hex()
    assert latest["tx_ids"] == [tx.tx_id.hex() for tx in block.txs]
    assert latest["state_digest"] == block.header.state_digest.hex()
    assert latest["certified"] is False  # the last block's certificate is not known yet
    one = await get_ok(client, "/v1/blocks/1")
    genesis = await get_ok(client, "/v1/blocks/0")
    assert one["parent_hash"] == genesis["hash"] and one["certified"] is True
    assert genesis["tx_count"] == 0 and genesis["tx_ids"] == []
    assert (await client.get(f"/v1/blocks/{head.height + 1}")).status_code == 404
    for bad in ("-1", "abc", "1.5"):
        answer = await client.get(f"/v1/blocks/{bad}")
        assert answer.status_code == 400 and answer.json()["error"] == "bad_request"


async def test_receipts_pages_cover_the_block(client: httpx.AsyncClient, chain: Chain) -> None:
    height, _ = chain.store.tx_location(chain.usage_txs[0].tx_id) or (-1, 0)
    stored = chain.store.receipts(height) or []
    assert len(stored) == len(web.GATEWAYS)
    seen: list[dict[str, Any]] = []
    offset: int | None = 0
    for _ in range(10):
        if offset is None:
            break
        doc = await get_ok(client, f"/v1/blocks/{height}/receipts?limit=2&offset={offset}")
        seen.extend(doc["receipts"])
        offset = doc["next"]
    assert [r["tx_id"] for r in seen] == [r.tx_id.hex() for r in stored]
    assert [r["code"] for r in seen] == [r.code for r in stored]
    assert (await client.get(f"/v1/blocks/{height}/receipts?limit=1001")).status_code == 400
    assert (await client.get("/v1/blocks/999/receipts")).status_code == 404


async def test_certificate_endpoint(client: httpx.AsyncClient, chain: Chain) -> None:
    doc = await get_ok(client, "/v1/blocks/2/certificate")
    cert = CommitCertificate.decode(bytes.fromhex(doc["encoded"]))
    block = chain.store.block(2)
    assert block is not None
    cert.verify(CHAIN, VALIDATORS, block.hash())
    assert doc["block_hash"] == block.hash().hex() and len(doc["signatures"]) == 3
    head = chain.store.head()
    assert head is not None
    for height in (0, head.height):
        answer = await client.get(f"/v1/blocks/{height}/certificate")
        assert answer.status_code == 404 and answer.json()["error"] == "not_certified"
    assert (await client.get("/v1/blocks/999/certificate")).json()["error"] == "not_found"


# -- members, accounts --------------------------------------------------------------------------


async def test_members_all_and_paged(client: httpx.AsyncClient, chain: Chain) -> None:
    everyone = (await get_ok(client, "/v1/members"))["members"]
    assert {m["name"] for m in everyone} == set(web.MEMBERS)
    assert {m["name"]: tuple(m["roles"]) for m in everyone} == {
        n: tuple(sorted(r)) for n, r in web.MEMBERS.items()
    }
    assert [m["public_key"] for m in everyone] == sorted(m["public_key"] for m in everyone)
    paged: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(10):
        doc = await get_ok(client, f"/v1/members?limit=4{cursor}")
        paged.extend(doc["members"])
        if doc["next"] is None:
            break
        cursor = f"&after={doc['next']}"
    assert paged == everyone
    assert (await client.get("/v1/members?limit=0")).status_code == 400
    assert (await client.get("/v1/members?after=nothex")).status_code == 400


async def test_accounts_match_the_settled_quarter(client: httpx.AsyncClient, chain: Chain) -> None:
    want = web.expected()
    q1 = {name: totals[0] for name, totals in want.items()}
    oem = await get_ok(client, f"/v1/accounts/{chain.key('oem').hex()}")
    assert oem["name"] == "oem"
    assert oem["balances"] == [{"currency": "USD", "balance": 500_000_000 - sum(q1.values())}]
    codec = await get_ok(client, f"/v1/accounts/{chain.key('codec').hex()}")
    assert codec["balances"] == [{"currency": "USD", "balance": q1["codec"]}]
    shares = web.largest_remainder(q1["pool"], list(web.PATENTS.values()))
    for name, share in zip(web.PATENTS, shares, strict=True):
        doc = await get_ok(client, f"/v1/accounts/{chain.key(name).hex()}")
        assert doc["balances"] == [{"currency": "USD", "balance": share}]
    bank = await get_ok(client, f"/v1/accounts/{chain.key('bank').hex()}")
    assert bank == {"member": chain.key("bank").hex(), "name": "bank", "balances": []}
    assert (await client.get(f"/v1/accounts/{'ee' * 32}")).status_code == 404


# -- licences, accruals, statements -------------------------------------------------------------


async def test_licences(client: httpx.AsyncClient, chain: Chain) -> None:
    doc = await get_ok(client, "/v1/licences")
    ids = [lic["licence_id"] for lic in doc["licences"]]
    assert ids == sorted(["CODEC", "RADIO", "GFX-OS", "OS"]) and doc["next"] is None
    first = await get_ok(client, "/v1/licences?limit=2")
    rest = await get_ok(client, f"/v1/licences?after={first['next']}")
    assert [x["licence_id"] for x in first["licences"] + rest["licences"]] == ids
    stored = Licence.decode(chain.store.get_state(k_licence("RADIO")) or b"")
    summary = next(x for x in doc["licences"] if x["licence_id"] == "RADIO")
    assert summary["terms_hash"] == stored.current.terms_hash().hex()
    radio = await get_ok(client, "/v1/licences/RADIO")
    assert radio["status"] == "active" and radio["pending"] is None
    terms = radio["versions"][0]["terms"]
    assert [p["weight"] for p in terms["pool"]] == list(web.PATENTS.values())
    assert terms["licensee"] == chain.key("oem").hex() and terms["currency"] == "USD"
    assert sorted(radio["versions"][0]["signed_by"]) == sorted(
        k.hex() for k in (chain.key("oem"), chain.key("radio-pool"))
    )
    assert (await client.get("/v1/licences/NOPE")).status_code == 404
    assert (await client.get("/v1/licences/-bad")).json()["error"] == "bad_id"


async def test_accruals_and_live_estimate(client: httpx.AsyncClient, chain: Chain) -> None:
    doc = await get_ok(client, "/v1/licences/CODEC/accruals")
    periods = {p["period_id"]: p for p in doc["periods"]}
    assert sorted(periods) == ["2026-Q1", "2026-Q2"]
    cams = [g for g, (s, _t) in enumerate(web.GATEWAYS) if s == "cam-1"]
    assert periods["2026-Q1"]["records"] == 3 * len(cams)
    assert periods["2026-Q2"]["records"] == len(cams)  # April only
    april = {web.GATEWAYS[g][1]: web.monthly_units(g, 4) for g in cams}
    quantities = periods["2026-Q2"]["quantities"]  # {territory: {product_class: {metric: n}}}
    assert {
        t: sum(c["units"] for c in by_class.values()) for t, by_class in quantities.items()
    } == april
    estimate = doc["estimate"]
    assert estimate["period_id"] == "2026-Q2" and doc["estimate_error"] is None
    before = q1_units("cam-1")
    assert estimate["earned"] == web.codec_cost(before + sum(april.values())) - web.codec_cost(
        before
    )
    assert (await client.get("/v1/licences/NOPE/accruals")).status_code == 404


async def test_statements(client: httpx.AsyncClient, chain: Chain) -> None:
    want = web.expected()
    q1 = await get_ok(client, "/v1/statements?period=2026-Q1")
    totals = {s["licence_id"]: s["total"] for s in q1["statements"]}
    assert totals == {
        "CODEC": want["codec"][0],
        "RADIO": want["pool"][0],
        "OS": want["os"][0],
        "GFX-OS": 0,
    }
    assert all(s["principal_outstanding"] == 0 for s in q1["statements"])
    # every Q1 statement is settled; GFX-OS bills 0 (its income is the sublicence
    # pass-through) and is marked paid at close (the ledger's rule, not the API's)
    assert {s["licence_id"] for s in q1["statements"] if s["status"] == "paid"} == {
        "CODEC",
        "RADIO",
        "OS",
        "GFX-OS",
    }
    only_os = await get_ok(client, "/v1/statements?licence=OS")
    assert [s["statement_id"] for s in only_os["statements"]] == ["OS@2026-Q1"]
    one = await get_ok(client, "/v1/statements/CODEC@2026-Q1")
    assert one["total"] == want["codec"][0] and one["usage_count"] == 9
    assert one["licensee"] == chain.key("oem").hex()
    paged: list[str] = []
    cursor = ""
    for _ in range(10):
        doc = await get_ok(client, f"/v1/statements?limit=1{cursor}")
        paged.extend(s["statement_id"] for s in doc["statements"])
        if doc["next"] is None:
            break
        cursor = f"&after={doc['next']}"
    assert paged == sorted(s["statement_id"] for s in q1["statements"])
    assert (await client.get("/v1/statements/CODEC@2030-Q1")).status_code == 404
    assert (await client.get("/v1/statements/CODEC")).json()["error"] == "bad_id"


# -- routes and the OpenAPI document -------------------------------------------------------------


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v2/nothing")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    answer = await client.delete("/v1/status")
    assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed"
    assert (await client.get("/admin/peers")).status_code == 404  # not on the public app


async def test_openapi_lists_every_route(client: httpx.AsyncClient) -> None:
    doc = await get_ok(client, "/openapi.json")
    assert set(doc["paths"]) == {
        "/v1/txs",
        "/v1/txs/{tx_id}",
        "/v1/txs/{tx_id}/proof",
        "/v1/receipts/{tx_id}/proof",
        "/v1/devices/{device}",
        "/v1/status",
        "/v1/blocks/latest",
        "/v1/blocks/{height}",
        "/v1/blocks/{height}/receipts",
        "/v1/blocks/{height}/certificate",
        "/v1/members",
        "/v1/members/{member}",
        "/v1/blocks/{height}/raw",
        "/v1/accounts/{member}",
        "/v1/licences",
        "/v1/licences/{licence_id}",
        "/v1/licences/{licence_id}/accruals",
        "/v1/statements",
        "/v1/statements/{statement_id}",
        "/v1/statements/{statement_id}/proof",
        "/v1/validator-history",
        "/health",
        "/metrics",
    }
    submit = doc["paths"]["/v1/txs"]["post"]
    assert "application/msgpack" in submit["requestBody"]["content"]
    assert {"400", "413", "429"} <= set(submit["responses"])
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
