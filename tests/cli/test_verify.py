"""`alps verify` against the real API app served by Hypercorn on 127.0.0.1: honest nodes
are believed only after the offline checks, lying nodes (a proxy that rewrites the real
answers) are caught, and every failure is one `Error:` line with exit status 1."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from click.testing import Result
from hypercorn.trio import serve

from node.api.app import make_app
from node.api.serve import hypercorn_config
from node.genesis_file import write_genesis
from node.ledger.block import BlockHeader, Receipt, system_receipt_id
from node.ledger.model import Statement
from tests.api.fakecontrol import FakeControl
from tests.api.proof_chains import (
    ACTIVATION,
    LAST_HEIGHT,
    RADIO_Q1,
    MembershipChain,
    PaymentsChain,
    build_membership_chain,
    build_payments_chain,
    certify_digest,
)
from tests.cli.helpers import one_line_error, run
from tests.ledger import test_licensing_web as web
from tests.ledger.harness import CHAIN, signer_for

pytestmark = pytest.mark.trio
Tamper = Callable[[str, Any], Any]


@pytest.fixture(scope="module")
def pchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaymentsChain]:
    built = build_payments_chain(tmp_path_factory.mktemp("verify") / "db")
    yield built
    built.store.close()


@pytest.fixture(scope="module")
def mchain() -> MembershipChain:
    return build_membership_chain()


@pytest.fixture
def genesis(pchain: PaymentsChain, tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "genesis.json"
    write_genesis(path, pchain.h.genesis)
    return path


def lying(app: Any, tamper: Tamper) -> Any:
    """An ASGI app answering what the real app answers, rewritten by `tamper(path, json)`."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        query = scope["query_string"].decode()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://node"
        ) as client:
            real = await client.get(scope["path"] + (f"?{query}" if query else ""))
        body = real.content
        if real.status_code == 200:
            told = tamper(scope["path"], real.json())
            body = told if isinstance(told, bytes) else json.dumps(told).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": real.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return asgi


@asynccontextmanager
async def serving(chain: Any, tamper: Tamper | None = None) -> AsyncIterator[str]:
    app = make_app(FakeControl(chain.h.store, CHAIN))
    if tamper is not None:
        app = lying(app, tamper)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, hypercorn_config("127.0.0.1:0")))
        yield "http://" + binds[0].split("://", 1)[-1]
        nursery.cancel_scope.cancel()


async def alps_verify(*args: str | pathlib.Path) -> Result:
    return await trio.to_thread.run_sync(partial(run, "verify", *args))


# -- honest nodes ----------------------------------------------------------------------------


async def test_a_payment_traced_to_the_usage_behind_it(
    pchain: PaymentsChain, genesis: pathlib.Path
) -> None:
    usage = pchain.usage_txs[3]
    with trio.fail_after(60):
        async with serving(pchain) as url:
            text = await alps_verify(
                "statement",
                RADIO_Q1,
                "--genesis",
                genesis,
                "--node",
                url,
                "--usage-tx",
                usage.tx_id.hex(),
            )
            as_json = await alps_verify(
                "statement",
                RADIO_Q1,
                "--genesis",
                genesis,
                "--node",
                url,
                "--usage-tx",
                usage.tx_id.hex(),
                "--output",
                "json",
            )
    assert text.exit_code == 0, text.output
    out = text.stdout
    assert out.startswith(f"VERIFIED statement {RADIO_Q1} on chain {CHAIN}")
    assert f"closed in block {pchain.close_height}" in out
    assert f"(via block {pchain.close_height + 1})" in out  # the null-certified close block
    doc = json.loads(as_json.stdout)
    assert doc["verified"] is True and as_json.exit_code == 0
    s = doc["statement"]
    assert doc["paid_total"] == s["total"] and len(doc["payments"]) == 2
    key = pchain.h.key
    for payment in doc["payments"]:
        assert payment["payer"] == key["oem"].hex()
        shares = web.largest_remainder(payment["principal"] + payment["interest"], [10, 7, 3])
        assert payment["transfers"] == [
            [key[n].hex(), a] for n, a in zip(("r1", "r2", "r3"), shares, strict=True)
        ]
        assert f"to r1 ({key['r1'].hex()[:16]}) {shares[0]}" in out
    assert doc["payments"][1]["interest"] > 0
    assert doc["usage"]["tx"]["tx_id"] == usage.tx_id.hex()
    assert doc["usage"]["tx"]["device"] == usage.signer.hex()
    assert doc["closed"]["validators"] == 4 and len(doc["closed"]["signers"]) == 3


async def test_tx_and_end_of_block_receipt(pchain: PaymentsChain, genesis: pathlib.Path) -> None:
    receipt_id = system_receipt_id(pchain.settle_height, 0).hex()
    with trio.fail_after(60):
        async with serving(pchain) as url:
            tx = await alps_verify(
                "tx", pchain.usage_txs[0].tx_id.hex(), "--genesis", genesis, "--node", url
            )
            receipt = await alps_verify(
                "receipt", receipt_id, "--genesis", genesis, "--node", url, "--output", "json"
            )
    assert tx.exit_code == 0 and "transaction usage.report" in tx.stdout
    doc = json.loads(receipt.stdout)
    assert doc["height"] == pchain.settle_height and doc["accepted"] is True
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds.count("statement_payment") == 3 and "transfer" in kinds


async def test_membership_is_followed_from_the_genesis_file(
    mchain: MembershipChain, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "genesis.json"
    write_genesis(path, mchain.h.genesis)
    new_key = signer_for("validator-4").public_key.hex()
    with trio.fail_after(60):
        async with serving(mchain) as url:
            answers = [
                await alps_verify(
                    "tx",
                    mchain.txs[h].tx_id.hex(),
                    "--genesis",
                    path,
                    "--node",
                    url,
                    "--output",
                    "json",
                )
                for h in (ACTIVATION - 1, LAST_HEIGHT)
            ]
    before, after = (json.loads(a.stdout) for a in answers)
    assert new_key not in before["signers"] and new_key in after["signers"]


# -- failures: one line, exit 1 --------------------------------------------------------------


async def test_unknown_ids_unreachable_nodes_and_other_genesis_files(
    pchain: PaymentsChain, mchain: MembershipChain, genesis: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    other_validators, other_chain = tmp_path / "other-validators.json", tmp_path / "other.json"
    outsiders = tuple(signer_for(f"outsider-{i}").public_key for i in range(4))
    write_genesis(other_validators, dataclasses.replace(pchain.h.genesis, validators=outsiders))
    write_genesis(other_chain, dataclasses.replace(pchain.h.genesis, chain_id="alps-other"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    gone = await alps_verify("tx", "ab" * 32, "--genesis", genesis, "--node", closed)
    assert "node unreachable" in one_line_error(gone) and gone.exit_code == 1
    tx_id = pchain.usage_txs[0].tx_id.hex()
    with trio.fail_after(60):
        async with serving(pchain) as url:
            unknown = await alps_verify("tx", "ab" * 32, "--genesis", genesis, "--node", url)
            no_stmt = await alps_verify(
                "statement", "RADIO@2030-Q1", "--genesis", genesis, "--node", url
            )
            bad_id = await alps_verify("tx", "xyz", "--genesis", genesis, "--node", url)
            foreign = await alps_verify("tx", tx_id, "--genesis", other_validators, "--node", url)
            chain = await alps_verify("tx", tx_id, "--genesis", other_chain, "--node", url)
    assert "unknown to the node" in one_line_error(unknown) and unknown.exit_code == 1
    assert "unknown to the node" in one_line_error(no_stmt) and no_stmt.exit_code == 1
    assert bad_id.exit_code == 2 and "64 lowercase hex" in one_line_error(bad_id)
    assert "REJECTED" in one_line_error(foreign) and foreign.exit_code == 1
    assert "wrong chain" in one_line_error(chain) and chain.exit_code == 1


def _bigger_statement(path: str, doc: Any) -> Any:
    if path.startswith("/v1/statements/"):
        s = Statement.decode(bytes.fromhex(doc["statement"]))
        line = dataclasses.replace(s.lines[0], amount=s.lines[0].amount + 1)
        bigger = dataclasses.replace(s, lines=(line, *s.lines[1:]), total=s.total + 1)
        doc["statement"] = bigger.encode().hex()
    return doc


def _richer_payee(path: str, doc: Any) -> Any:
    if path.startswith("/v1/statements/"):
        proof = doc["payments"][0]
        receipt = Receipt.decode(bytes.fromhex(proof["receipt"]["leaf"]))
        events = list(receipt.events)
        e = events[proof["event_index"]]
        (payee, amount), *rest = e.attrs["transfers"]
        attrs = {**e.attrs, "transfers": [[payee, amount + 500], *rest]}
        events[proof["event_index"]] = dataclasses.replace(e, attrs=attrs)
        forged = dataclasses.replace(receipt, events=tuple(events))
        proof["receipt"]["leaf"] = forged.encode().hex()
    return doc


def _forged_certificate(path: str, doc: Any) -> Any:
    if path.startswith("/v1/statements/"):
        receipt = doc["close"]["receipt"]
        last = (receipt["descendants"] or [receipt["header"]])[-1]
        header = BlockHeader.decode(bytes.fromhex(last))
        outsiders = [signer_for(f"outsider-{i}") for i in range(3)]
        receipt["certificate"] = certify_digest(header, header.hash(), outsiders).encode().hex()
    return doc


def _payment_left_out(path: str, doc: Any) -> Any:
    if path.startswith("/v1/statements/"):
        doc["payments"] = doc["payments"][1:]
    return doc


def _invented_validators(path: str, doc: Any) -> Any:
    """A history in which outsiders took over at block 1 (a header the node made up)."""
    if path == "/v1/validator-history":
        outsiders = [signer_for(f"outsider-{i}") for i in range(4)]
        header = BlockHeader(
            CHAIN,
            1,
            b"\x00" * 32,
            outsiders[0].public_key,
            0,
            0,
            0,
            b"\x00" * 32,
            b"\x00" * 32,
            b"\x00" * 32,
            b"\x00" * 32,
        )
        cert = certify_digest(header, header.hash(), outsiders[:3])
        doc["changes"] = [
            {
                "height": 1,
                "validators": [o.public_key.hex() for o in outsiders],
                "header": header.encode().hex(),
                "certificate": cert.encode().hex(),
                "descendants": [],
            }
        ]
    return doc


def _garbage(path: str, doc: Any) -> Any:
    return b"{not json" if path.startswith("/v1/statements/") else doc


def _other_chain(path: str, doc: Any) -> Any:
    if path == "/v1/validator-history":
        doc["chain_id"] = "someone-else"
    return doc


LIES: dict[str, tuple[Tamper, str]] = {
    "statement_total_raised": (_bigger_statement, "REJECTED: bad_proof"),
    "payee_amount_raised": (_richer_payee, "REJECTED: bad_proof"),
    "certificate_forged": (_forged_certificate, "REJECTED: unknown_validator"),
    "payment_left_out": (_payment_left_out, "REJECTED: payment_gap"),
    "validators_invented": (_invented_validators, "REJECTED: "),
    "garbage": (_garbage, "malformed answer"),
    "other_chain": (_other_chain, "wrong chain"),
}


@pytest.mark.parametrize("name", sorted(LIES))
async def test_a_lying_node_is_caught(
    pchain: PaymentsChain, genesis: pathlib.Path, name: str
) -> None:
    tamper, expected = LIES[name]
    with trio.fail_after(60):
        async with serving(pchain, tamper) as url:
            result = await alps_verify("statement", RADIO_Q1, "--genesis", genesis, "--node", url)
    line = one_line_error(result)
    assert result.exit_code == 1 and expected in line, line


async def test_the_installed_command_end_to_end(
    pchain: PaymentsChain, genesis: pathlib.Path
) -> None:
    """`python -m cli verify` as a real process against the real server."""
    root = pathlib.Path(__file__).resolve().parents[2]
    with trio.fail_after(120):
        async with serving(pchain) as url:
            done = await trio.run_process(
                [
                    sys.executable,
                    "-m",
                    "cli",
                    "verify",
                    "statement",
                    RADIO_Q1,
                    "--genesis",
                    str(genesis),
                    "--node",
                    url,
                ],
                cwd=root,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(f"VERIFIED statement {RADIO_Q1}")
