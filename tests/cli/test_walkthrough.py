"""The README's walk-through, driven through the `alps` commands against a REAL node: four
`Node`s (PBFT, real ledger, LevelDB) on an in-memory network, node 0's HTTP API served
by Hypercorn on loopback (tests/cli/live.py). A licensor deploys a library rule and
proposes a licence from a TOML terms file, the licensee signs it, maps its SKU and
enrols a device from the agent's enrolment request; the device reports usage through
the agent's own HTTP client; the licensee deposits, the bank acknowledges; the period
closes, the statement is paid and exported; `alps audit` replays the chain from
genesis.json and passes, and fails against a node that tampers with a receipt. Expected
figures are computed here from the terms (units x fee), not read from the ledger."""

from __future__ import annotations

import csv
import json
import pathlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from device_agent.keys import enrolment_request
from device_agent.nodeclient import NodeClient as AgentClient
from node.genesis_file import write_genesis
from node.ledger import codec, crypto
from node.ledger.calendar import ms_of_date
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report
from tests.cli.helpers import ok, one_line_error, run
from tests.cli.live import CHAIN, Clock, LiveCluster, seed, serve_in_thread, tampering_proxy

FEE = 120  # USD cents per unit
UNITS = (100, 250)  # cumulative registers of the device's two reports
DEPOSIT = 100_000
RETURNED = 30  # units the parties agree were returned (dispute resolution)
POLL_S = 0.1
DEADLINE_S = 30.0

TERMS = f"""
licence_id = "CAM"
licensor = "codec"
licensee = "oem"
skus = ["cam-1"]
currency = "USD"
period = "month"
start = 2026-01-01
end = "2027-01-01"
rule = "per_unit"
rule_params = {{ fee_per_unit = {FEE} }}
payment_due_days = 10
late_interest_bps = 800
legal_text = "agreement.txt"
"""


@dataclass
class World:
    url: str
    admin_url: str
    clock: Clock
    keys: dict[str, pathlib.Path]
    tmp: pathlib.Path
    genesis_file: pathlib.Path
    cluster: LiveCluster


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cli-walk")
    from tests.cli.live import write_member_keys

    keys = write_member_keys(tmp / "keys")
    clock = Clock()
    cluster = LiveCluster(tmp / "nodes", clock)
    genesis_file = tmp / "genesis.json"
    write_genesis(genesis_file, cluster.genesis)
    with serve_in_thread(cluster.start, cluster.close) as served:
        yield World(served.url, served.admin_url, clock, keys, tmp, genesis_file, cluster)


def alps_json(w: World, *args: str | pathlib.Path) -> Any:
    return json.loads(ok(*args, "--node", w.url, "-o", "json"))


def signed(w: World, who: str, *args: str | pathlib.Path) -> str:
    return ok(*args, "--node", w.url, "--key", w.keys[who])


def eventually(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def test_walkthrough_from_rule_to_audited_payment(world: World) -> None:
    w = world
    status = alps_json(w, "node", "status")
    assert status["chain_id"] == CHAIN and len(status["validators"]) == 4
    peers = alps_json(w, "node", "peers", "--admin", w.admin_url)
    assert peers["source"] == "admin" and len(peers["peers"]) == 3

    # -- a rule from the library, a licence from a terms file, signed by both -----------
    out = signed(w, "codec", "rule", "deploy", "--library", "per_unit")
    library = json.loads(ok("rule", "library", "-o", "json"))
    assert library["per_unit"] in out and "rule.deploy committed at height" in out
    (w.tmp / "agreement.txt").write_text("the licence agreement\n")
    terms_file = w.tmp / "terms.toml"
    terms_file.write_text(TERMS)
    out = signed(w, "codec", "licence", "propose", terms_file)
    assert "licence CAM proposed" in out
    assert alps_json(w, "licence", "show", "CAM")["status"] == "proposed"
    signed(w, "oem", "licence", "sign", "CAM", "--terms", terms_file)
    shown = alps_json(w, "licence", "show", "CAM")
    assert shown["status"] == "active" and shown["pending"] is None
    terms = shown["versions"][0]["terms"]
    assert terms["rule_params"] == {"fee_per_unit": FEE} and terms["start_ms"] == ms_of_date(
        2026, 1, 1
    )
    assert terms["legal_text_hash"] == crypto.sha256(b"the licence agreement\n").hex()
    table = ok("licence", "list", "--node", w.url)
    assert "CAM" in table and "codec" in table and "oem" in table and "active" in table
    # signing again is refused by the ledger: one line, exit 1
    again = run("licence", "sign", "CAM", "--node", w.url, "--key", w.keys["oem"])
    assert "no terms awaiting signatures" in one_line_error(again)
    signed(w, "oem", "bom", "set", "cam-1", "CAM")

    # -- a device enrolled from its agent's request, reporting usage ------------------------
    device = crypto.Signer(seed("gateway-1"))
    oem_key = crypto.Signer(seed("oem")).public_key
    request = w.tmp / "enrol.json"
    request.write_text(json.dumps(enrolment_request(device, CHAIN, "cam-1", oem_key)))
    signed(w, "oem", "device", "enrol", request)
    dev = alps_json(w, "device", "show", device.public_key.hex())
    assert dev["licensee"] == oem_key.hex() and not dev["revoked"] and dev["last_seq"] == 0
    agent = AgentClient(w.url, 10)
    prev = GENESIS_PREV
    for seq, units in enumerate(UNITS, 1):
        report = UsageReport("cam-1", "DE", w.clock.now_ms(), prev, {"units": units})
        tx = make_usage_report(device, CHAIN, seq, report)
        (result,) = agent.submit([tx])
        assert result.status == "pending", result
        prev = tx.tx_id
    eventually(
        "the usage to commit",
        lambda: alps_json(w, "device", "show", device.public_key.hex())["last_seq"] == 2,
    )
    accruals = alps_json(w, "accruals", "CAM")
    (january,) = accruals["periods"]
    assert january["period_id"] == "2026-01" and january["records"] == 2
    assert january["quantities"] == {"DE": {"cam-1": {"units": UNITS[-1], "_new_devices": 1}}}
    assert accruals["estimate"]["total"] == UNITS[-1] * FEE
    assert "units x fee" in ok("accruals", "CAM", "--node", w.url)

    # -- money in: deposit, bank acknowledgement ------------------------------------------------
    out = signed(w, "oem", "deposit", "--amount", str(DEPOSIT), "--currency", "USD", "--id", "f1")
    assert "deposit id: f1" in out
    assert alps_json(w, "balance", "oem")["balances"] == []  # not credited before the ack
    refused = run("deposit", "ack", "f1", "--node", w.url, "--key", w.keys["oem"])
    assert "not_a_bank" in one_line_error(refused)
    signed(w, "bank", "deposit", "ack", "f1")
    assert alps_json(w, "balance", "oem")["balances"] == [{"currency": "USD", "balance": DEPOSIT}]

    # -- the month closes: a statement, paid and exported -------------------------------------
    w.clock.jump_to(ms_of_date(2026, 2, 1) + 1000)
    listed = eventually(
        "January's statement", lambda: alps_json(w, "statements", "--licence", "CAM")["statements"]
    )
    (stmt,) = listed
    closed = UNITS[-1] * FEE
    assert stmt["statement_id"] == "CAM@2026-01" and stmt["total"] == closed
    assert stmt["principal_outstanding"] == closed and stmt["status"] == "open"
    balance = alps_json(w, "balance", "oem")
    assert [s["statement_id"] for s in balance["payable"]] == ["CAM@2026-01"]
    assert balance["receivable"] == []
    # the licensee disputes the line; both parties agree on less
    (w.tmp / "evidence.txt").write_text("30 units were returned\n")
    signed(
        w,
        "oem",
        "statement",
        "dispute",
        "CAM@2026-01",
        "--line",
        "0",
        "--evidence",
        w.tmp / "evidence.txt",
    )
    disputed = alps_json(w, "statement", "show", "CAM@2026-01")
    assert disputed["status"] == "disputed" and disputed["disputed_amount"] == closed
    assert disputed["principal_outstanding"] == 0 and disputed["lines"][0]["disputed"]
    due = closed - RETURNED * FEE
    for party in ("oem", "codec"):
        signed(w, party, "statement", "resolve", "CAM@2026-01", "--line", "0", "--amount", str(due))
    resolved = alps_json(w, "statement", "show", "CAM@2026-01")
    assert resolved["adjustment"] == due - closed and resolved["principal_outstanding"] == due
    pay = signed(w, "oem", "statement", "pay", "CAM@2026-01")
    assert "statement.pay committed" in pay
    paid = alps_json(w, "statement", "show", "CAM@2026-01")
    assert paid["status"] == "paid" and paid["paid"] == due and paid["principal_outstanding"] == 0
    assert alps_json(w, "account", "codec")["balances"] == [{"currency": "USD", "balance": due}]
    assert alps_json(w, "balance", "oem")["balances"] == [
        {"currency": "USD", "balance": DEPOSIT - due}
    ]
    shown_text = ok("statement", "show", "CAM@2026-01", "--node", w.url)
    assert "units x fee" in shown_text and "300.00 USD" in shown_text
    csv_file = w.tmp / "cam-jan.csv"
    ok("statement", "export", "CAM@2026-01", "--csv", csv_file, "--node", w.url)
    rows = {r["line"]: r for r in csv.DictReader(csv_file.open())}
    assert [rows[str(i)]["label"] for i in range(len(paid["lines"]))] == [
        li["label"] for li in paid["lines"]
    ]
    line_sum = sum(int(rows[str(i)]["amount"]) for i in range(len(paid["lines"])))
    assert line_sum == int(rows["total"]["amount"]) == closed
    assert closed + int(rows["adjustment"]["amount"]) == int(rows["payable"]["amount"]) == due

    # -- later: an amendment, a withdrawal, a revoked device, a termination -----------------
    (w.tmp / "terms-2.toml").write_text(TERMS.replace(f"= {FEE} }}", f"= {FEE + 30} }}"))
    signed(
        w, "codec", "licence", "amend", "CAM", w.tmp / "terms-2.toml", "--from-period", "2026-03"
    )
    pending = alps_json(w, "licence", "show", "CAM")["pending"]
    assert pending["effective_ms"] == ms_of_date(2026, 3, 1)
    signed(w, "oem", "licence", "sign", "CAM")
    versions = alps_json(w, "licence", "show", "CAM")["versions"]
    assert [v["terms"]["rule_params"]["fee_per_unit"] for v in versions] == [FEE, FEE + 30]
    out = signed(w, "codec", "withdraw", "--amount", "5000", "--currency", "USD", "--id", "w1")
    assert "withdrawal id: w1" in out
    signed(w, "bank", "withdraw", "ack", "w1")
    assert alps_json(w, "account", "codec")["balances"] == [
        {"currency": "USD", "balance": due - 5000}
    ]
    signed(w, "oem", "device", "revoke", device.public_key.hex())
    assert alps_json(w, "device", "show", device.public_key.hex())["revoked"]
    signed(w, "oem", "licence", "terminate", "CAM", "--at", "2026-06-01")
    assert alps_json(w, "licence", "show", "CAM")["terminated_ms"] == ms_of_date(2026, 6, 1)

    # -- ledger views -------------------------------------------------------------------------
    tx_id = pay.split("(tx ")[1].rstrip(")\n")
    found = alps_json(w, "tx", tx_id)
    assert found["status"] == "committed" and found["tx"]["tx_type"] == "statement.pay"
    receipts = alps_json(w, "receipts", str(found["height"]))["receipts"]
    assert receipts[found["index"]]["tx_id"] == tx_id
    assert any(e["kind"] == "statement_payment" for e in receipts[found["index"]]["events"])
    block = alps_json(w, "block", str(found["height"]))
    assert tx_id in block["tx_ids"] and block["certified"]
    assert alps_json(w, "block", "latest")["height"] >= found["height"]

    # -- every read command also prints a readable table --------------------------------------
    h = str(found["height"])
    tables = {
        ("statements",): "CAM@2026-01",
        ("balance", "oem"): "outstanding statements, payable",
        ("block", h): tx_id,
        ("tx", tx_id): "statement_payment",
        ("receipts", h): tx_id,
        ("account", "codec"): "USD",
        ("device", "show", device.public_key.hex()): "revoked    yes",
        ("node", "status"): CHAIN,
        ("licence", "show", "CAM"): "terminated",
    }
    for args, expected in tables.items():
        text = ok(*args, "--node", w.url)
        assert expected in text, (args, text)

    # -- the audit replays everything from genesis.json ------------------------------------------
    result = run("audit", "--genesis", w.genesis_file, "--node", w.url, "-o", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.split("audit passed")[0])
    assert summary["ok"] and summary["complete"] and summary["statements"] == 1
    assert summary["txs"] >= 10 and summary["certificates"] == summary["height"]
    # one receipt per transaction, plus the end-of-block receipts (the month's close)
    assert summary["receipts"] > summary["txs"]
    tampered_audit_fails(w, found["height"])


def tampered_audit_fails(w: World, height: int) -> None:
    """A node that serves a modified receipt is caught, with the height and what differs."""

    def tamper(path: str, body: bytes) -> bytes:
        if path.startswith(f"/v1/blocks/{height}/receipts"):
            doc = json.loads(body)
            doc["receipts"][0]["detail"] = "paid in full, trust me"
            return json.dumps(doc).encode()
        return body

    with tampering_proxy(w.url, tamper) as liar:
        result = run("audit", "--genesis", w.genesis_file, "--node", liar)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"MISMATCH block {height}: receipt 0") and "detail" in line
        for line in lines
    ), result.stderr
    assert lines[-1].startswith("Error: audit FAILED: 1 mismatches")

    def forge_block(path: str, body: bytes) -> bytes:
        if path == f"/v1/blocks/{height}/raw":
            doc = codec.decode(body)
            doc["certificate"] = None
            return codec.encode(doc)
        return body

    with tampering_proxy(w.url, forge_block) as liar:
        result = run("audit", "--genesis", w.genesis_file, "--node", liar)
    assert result.exit_code == 1
    assert f"MISMATCH block {height}: certificate" in result.stderr


# -- errors: one line, non-zero exit -----------------------------------------------------------


def test_unreachable_node_is_one_line(world: World, tmp_path: pathlib.Path) -> None:
    result = run("licence", "list", "--node", "http://127.0.0.1:9", "--timeout", "2")
    assert "cannot reach the node at http://127.0.0.1:9" in one_line_error(result)
    assert result.exit_code == 1
    result = run("deposit", "ack", "x", "--node", "http://127.0.0.1:9", "--key", world.keys["bank"])
    assert "cannot reach" in one_line_error(result)


def test_bad_terms_file_names_every_bad_field_and_submits_nothing(
    world: World, tmp_path: pathlib.Path
) -> None:
    w = world
    before = alps_json(w, "licence", "list")["licences"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'licence_id = "BAD"\nlicensor = "nobody"\nlicensee = "oem"\nskus = ["cam-1"]\n'
        'currency = "USD"\nperiod = "fortnight"\nstart = "2026-13-01"\nend = "2027-01-01"\n'
        'rule = "per_unit"\nlegal_text_hash = "00"\nupfront_fee = -5\ncolour = "red"\n'
    )
    result = run("licence", "propose", bad, "--node", w.url, "--key", w.keys["codec"])
    line = one_line_error(result)
    for field in (
        "colour: unknown field",
        "licensor: no member named 'nobody'",
        "period:",
        "start:",
        "legal_text_hash:",
        "upfront_fee:",
    ):
        assert field in line, (field, line)
    assert alps_json(w, "licence", "list")["licences"] == before
    not_toml = tmp_path / "x.toml"
    not_toml.write_text("licence_id = \n")
    assert "not valid TOML" in one_line_error(
        run("licence", "propose", not_toml, "--node", w.url, "--key", w.keys["codec"])
    )


def test_unknown_licence_and_statement(world: World) -> None:
    w = world
    assert "unknown licence 'NOPE'" in one_line_error(
        run("licence", "show", "NOPE", "--node", w.url)
    )
    result = run("licence", "sign", "NOPE", "--node", w.url, "--key", w.keys["oem"])
    assert "unknown licence" in one_line_error(result)
    assert "unknown statement" in one_line_error(
        run("statement", "show", "NOPE@2026-01", "--node", w.url)
    )
    assert "LICENCE@PERIOD" in one_line_error(run("statement", "show", "nope", "--node", w.url))


def test_signature_refused_is_one_line(world: World) -> None:
    """A key that is no member, and a transaction whose signature does not verify."""
    w = world
    result = run(
        "rule", "deploy", "--library", "per_unit", "--node", w.url, "--key", w.keys["stranger"]
    )
    assert "is not a member of chain" in one_line_error(result)
    from cli.client import NodeClient, submit_tx
    from node.ledger.tx import make_tx

    signer = crypto.Signer(seed("codec"))
    good = make_tx(signer, CHAIN, "rule.deploy", {"source": "x"}, 99)
    forged = type(good)(good.chain_id, good.tx_type, good.body, good.signer, good.nonce, bytes(64))
    with NodeClient(w.url) as client:
        outcome = submit_tx(client, forged, 0)
    assert outcome.status == "rejected" and outcome.code == "bad_signature"
    assert outcome.describe().startswith("rule.deploy refused by the node: bad_signature")
