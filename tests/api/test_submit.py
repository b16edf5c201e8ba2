"""POST /v1/txs (docs/api.md "Submit"): results per transaction in order; every body the
node must refuse gets a typed 4xx and NOTHING reaches node.submit."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import httpx
import msgpack
import pytest
import trio

from node.api.app import make_app
from node.api.models import SubmitAnswer
from node.ledger import codec
from node.ledger.tx import Transaction, make_tx
from tests.api.chain import Chain, build_chain
from tests.api.fakecontrol import FakeControl
from tests.ledger.harness import CHAIN, signer_for

MSGPACK = {"Content-Type": "application/msgpack"}
pytestmark = pytest.mark.trio


def body_of(txs: list[Transaction]) -> bytes:
    return codec.encode({"txs": [tx.to_value() for tx in txs]})


def fresh_txs(n: int, chain_id: str = CHAIN) -> list[Transaction]:
    signer = signer_for("api-client")
    return [make_tx(signer, chain_id, "test.op", {"i": i}, nonce=i + 1) for i in range(n)]


async def test_single_and_batch_results_in_order(
    client: httpx.AsyncClient, node: FakeControl, chain: Chain
) -> None:
    one = fresh_txs(1)
    answer = await client.post("/v1/txs", content=body_of(one), headers=MSGPACK)
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {
                "tx_id": one[0].tx_id.hex(),
                "status": "pending",
                "code": "ok",
                "detail": "",
                "height": None,
            }
        ]
    }
    committed = chain.usage_txs[0]
    forged = Transaction.from_value({**fresh_txs(1)[0].to_value(), "nonce": 99})  # bad sig
    other_chain = fresh_txs(1, chain_id="another-chain")[0]
    batch = [*fresh_txs(3), committed, forged, other_chain]
    answer = await client.post("/v1/txs", content=body_of(batch), headers=MSGPACK)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["tx_id"] for r in results] == [tx.tx_id.hex() for tx in batch]
    assert [r["status"] for r in results] == ["pending"] * 3 + ["committed", "rejected", "rejected"]
    height, _ = chain.store.tx_location(committed.tx_id) or (None, None)
    assert results[3]["height"] == height is not None
    assert [results[4]["code"], results[5]["code"]] == ["bad_signature", "wrong_chain"]
    assert node.submitted[-1] == batch  # the typed transactions, unchanged
    # the answer is built as plain JSON: it must still be what the OpenAPI model says
    assert SubmitAnswer.model_validate(answer.json()).model_dump() == answer.json()
    schema = (await client.get("/openapi.json")).json()
    ok = schema["paths"]["/v1/txs"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/SubmitAnswer"}


async def test_no_content_type_is_accepted_and_wrong_one_is_415(
    client: httpx.AsyncClient, node: FakeControl
) -> None:
    ok = await client.post("/v1/txs", content=body_of(fresh_txs(1)))
    assert ok.status_code == 200
    bad = await client.post(
        "/v1/txs", content=body_of(fresh_txs(1)), headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 415 and bad.json()["error"] == "unsupported_media_type"
    assert len(node.submitted) == 1


def _tx_value() -> dict[str, object]:
    return fresh_txs(1)[0].to_value()


MALFORMED = {
    "garbage": b"\xc1\xff not msgpack",
    "empty": b"",
    "trailing_bytes": body_of(fresh_txs(1)) + b"\x00",
    "non_canonical_map_order": msgpack.packb({"txs": [dict(reversed(_tx_value().items()))]}),
    "not_a_map": codec.encode([_tx_value()]),
    "no_txs": codec.encode({"transactions": [_tx_value()]}),
    "extra_key": codec.encode({"txs": [_tx_value()], "x": 1}),
    "txs_not_list": codec.encode({"txs": _tx_value()}),
    "empty_batch": codec.encode({"txs": []}),
    "tx_missing_field": codec.encode(
        {"txs": [{k: v for k, v in _tx_value().items() if k != "nonce"}]}
    ),
    "tx_unknown_field": codec.encode({"txs": [{**_tx_value(), "extra": 1}]}),
    "tx_bad_signer_length": codec.encode({"txs": [{**_tx_value(), "signer": b"\x01" * 31}]}),
    "tx_bool_nonce": codec.encode({"txs": [{**_tx_value(), "nonce": True}]}),
    "second_tx_bad": codec.encode({"txs": [_tx_value(), {**_tx_value(), "tx_type": "BAD TYPE"}]}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_bodies_are_400_and_submit_nothing(
    client: httpx.AsyncClient, node: FakeControl, name: str
) -> None:
    answer = await client.post("/v1/txs", content=MALFORMED[name], headers=MSGPACK)
    assert answer.status_code == 400, answer.text
    doc = answer.json()
    assert doc["error"] in ("undecodable", "bad_schema", "empty_batch") and doc["detail"]
    assert node.submitted == []


async def test_bad_query_parameter_is_400_not_422(
    client: httpx.AsyncClient, node: FakeControl
) -> None:
    for wait in ("soon", "-1", "1e9"):
        answer = await client.post(
            f"/v1/txs?wait_s={wait}", content=body_of(fresh_txs(1)), headers=MSGPACK
        )
        assert answer.status_code == 400 and answer.json()["error"] == "bad_request"
    assert node.submitted == []


async def test_oversized_declared_body_is_413_before_reading(node: FakeControl) -> None:
    app = make_app(node, body_bytes_max=1000)
    body = body_of(fresh_txs(20))
    assert len(body) > 1000
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as c:
        answer = await c.post("/v1/txs", content=body, headers=MSGPACK)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert node.submitted == []


async def test_streamed_body_stops_at_the_bound(node: FakeControl) -> None:
    """Chunked (no Content-Length): reading stops once the bound is passed."""
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):  # would be 640 MB if the server kept reading
            sent += 65536
            yield b"\x00" * 65536

    app = make_app(node)  # 1 MiB bound
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as c:
        with trio.fail_after(30):
            answer = await c.post("/v1/txs", content=endless(), headers=MSGPACK)
    assert answer.status_code == 413
    assert sent <= 1024 * 1024 + 2 * 65536
    assert node.submitted == []


async def test_too_many_transactions_is_413(node: FakeControl) -> None:
    app = make_app(node, batch_max=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as c:
        ok = await c.post("/v1/txs", content=body_of(fresh_txs(3)), headers=MSGPACK)
        assert ok.status_code == 200
        over = await c.post("/v1/txs", content=body_of(fresh_txs(4)), headers=MSGPACK)
    assert over.status_code == 413 and "batch" in over.json()["detail"]
    assert [len(b) for b in node.submitted] == [3]


async def test_mempool_full_is_429_with_retry_after(
    client: httpx.AsyncClient, node: FakeControl
) -> None:
    node.mempool_full_retry_s = 7
    txs = fresh_txs(2)
    answer = await client.post("/v1/txs", content=body_of(txs), headers=MSGPACK)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.json()["error"] == "mempool_full"
    assert node.pending == {}  # nothing taken


async def test_wait_s_answers_committed_once_the_block_lands(tmp_path: pathlib.Path) -> None:
    chain = build_chain(tmp_path / "db")
    node = FakeControl(chain.store, CHAIN)
    app = make_app(node)
    h = chain.h
    tx = h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ["CODEC"]})
    h.queue.clear()  # the client submits it, not the harness
    never = fresh_txs(1)[0]  # pending forever
    answers: list[httpx.Response] = []

    async def post() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://n"
        ) as c:
            answers.append(
                await c.post("/v1/txs?wait_s=2", content=body_of([tx, never]), headers=MSGPACK)
            )

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            while not node.pending:
                await trio.sleep(0.01)
            h.queue.append(node.pending[tx.tx_id])
            h.ok()  # the driver commits the block
    results = answers[0].json()["results"]
    height = chain.store.head()
    chain.store.close()
    assert height is not None
    assert results[0] == {
        "tx_id": tx.tx_id.hex(),
        "status": "committed",
        "code": "ok",
        "detail": "",
        "height": height.height,
    }
    assert results[1]["status"] == "pending"
