"""The routes the `alps` CLI adds to the API: a member with its nonce, a block's stored
bytes with its certificate, and the full licence terms (what a co-signer hashes)."""

from __future__ import annotations

import httpx
import pytest
import trio

from node.ledger import codec
from node.ledger.block import Block
from node.ledger.certificate import CommitCertificate
from node.ledger.model import Licence, LicenceTerms, k_licence, k_nonce
from tests.api.chain import VALIDATORS, Chain

pytestmark = pytest.mark.trio


async def test_member_with_nonce(client: httpx.AsyncClient, chain: Chain) -> None:
    oem = chain.key("oem")
    answer = await client.get(f"/v1/members/{oem.hex()}")
    assert answer.status_code == 200
    doc = answer.json()
    stored_nonce = codec.decode(chain.store.get_state(k_nonce(oem)) or b"")
    assert stored_nonce > 1  # oem signed several transactions in the web
    assert doc == {
        "name": "oem",
        "public_key": oem.hex(),
        "roles": ["licensee"],
        "nonce": stored_nonce,
    }
    auditor_free = await client.get(f"/v1/members/{chain.key('r3').hex()}")
    assert auditor_free.json()["nonce"] == 0  # never signed anything
    missing = await client.get(f"/v1/members/{'ee' * 32}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (await client.get("/v1/members/XYZ")).json()["error"] == "bad_hex"


async def test_raw_block_is_the_stored_block_and_certificate(
    client: httpx.AsyncClient, chain: Chain
) -> None:
    height = 3
    answer = await client.get(f"/v1/blocks/{height}/raw")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/msgpack"
    doc = codec.decode(answer.content)
    assert doc["height"] == height
    assert doc["block"] == chain.store.block_bytes(height)
    block = Block.decode(doc["block"])
    cert = CommitCertificate.decode(doc["certificate"])
    cert.verify(block.header.chain_id, VALIDATORS, block.hash())  # raises if forged
    genesis = codec.decode((await client.get("/v1/blocks/0/raw")).content)
    assert genesis["certificate"] is None
    assert (await client.get("/v1/blocks/99999/raw")).status_code == 404
    waited = await client.get(f"/v1/blocks/{height}/raw?wait_s=5")  # stored: no wait
    assert waited.status_code == 200 and waited.content == answer.content
    started = trio.current_time()
    future = await client.get("/v1/blocks/99999/raw?wait_s=0.2")  # long poll, then 404
    assert future.status_code == 404 and trio.current_time() - started >= 0.2
    too_long = await client.get("/v1/blocks/99999/raw?wait_s=61")
    assert too_long.status_code == 400


async def test_licence_terms_rebuild_to_the_signed_hash(
    client: httpx.AsyncClient, chain: Chain
) -> None:
    """Every signed term is in the answer, so a co-signer recomputes the terms hash."""
    stored = Licence.decode(chain.store.get_state(k_licence("OS")) or b"")
    doc = (await client.get("/v1/licences/OS")).json()
    terms = doc["versions"][0]["terms"]
    hex_fields = ("licensor", "licensee", "rule", "legal_text_hash", "arbiter")
    value = {k: bytes.fromhex(v) if k in hex_fields else v for k, v in terms.items()}
    value["pool"] = [
        {"licensor": bytes.fromhex(p["licensor"]), "weight": p["weight"]} for p in terms["pool"]
    ]
    rebuilt = LicenceTerms.from_value(value)
    assert rebuilt.terms_hash() == stored.current.terms_hash()
