"""The real `alps-agent` in a subprocess against fake nodes: init prints a valid
enrolment request, kill -9 at random points never loses a taken report nor reuses a seq
with other content, a damaged outbox stops the agent with a clear error, and the agent
imports none of the node's heavy dependencies."""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from node.ledger.usage import verify_possession
from tests.device_agent.fakenode import FakeLedger, FakeNode

ROOT = pathlib.Path(__file__).resolve().parents[2]
LICENSEE_HEX = "42" * 32


def write_config(tmp: pathlib.Path, endpoints: list[str], source: str) -> pathlib.Path:
    path = tmp / "agent.toml"
    path.write_text(
        f"""
[device]
chain_id = "alps-test"
sku = "cam-1"
territory = "DE"
key_file = "state/device.key"
state_dir = "state"

[nodes]
endpoints = {json.dumps(endpoints)}
timeout_s = 0.5

[upload]
batch_size_max = 50
backoff_base_s = 0.01
backoff_max_s = 0.2
confirm_interval_s = 0.01
enrolment_check_s = 0.05
jitter_seed = 1

[record]
interval_s = 0.0
tick_s = 0.005

[log]
level = "warning"

{source}
"""
    )
    return path


SIMULATED = '[source]\nkind = "simulated"\nrate_per_s = 3000\njitter = 0.5\nseed = 3'
SILENT = '[source]\nkind = "counter_file"\npath = "no-such-file"'


def agent(config: pathlib.Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device_agent.cli", "--config", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        **kw,  # type: ignore[call-overload]
    )


def start(config: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "device_agent.cli", "--config", str(config), "run"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def outbox_rows(state: pathlib.Path) -> dict[int, bytes]:
    if not (state / "outbox.sqlite").exists():
        return {}  # killed before it created its outbox (a loaded machine starts slowly)
    db = sqlite3.connect(f"file:{state / 'outbox.sqlite'}?mode=ro", uri=True)
    try:
        return {seq: bytes(tx_id) for seq, tx_id in db.execute("SELECT seq, tx_id FROM outbox")}
    except sqlite3.OperationalError:
        # killed while creating the file (no table or WAL index yet): nothing to observe
        # this round; what it takes later is observed in later rounds
        return {}
    finally:
        db.close()


@pytest.fixture
def nodes() -> Iterator[tuple[FakeLedger, list[FakeNode]]]:
    ledger = FakeLedger(commit_mode="on_lookup")
    fakes = [FakeNode(ledger), FakeNode(ledger)]
    yield ledger, fakes
    for n in fakes:
        n.stop()


def test_init_prints_a_verifiable_enrolment_request(tmp_path: pathlib.Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"], SILENT)
    done = agent(config, "init", "--licensee", LICENSEE_HEX)
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    assert verify_possession(
        bytes.fromhex(request["device"]),
        bytes.fromhex(LICENSEE_HEX),
        "alps-test",
        bytes.fromhex(request["proof_of_possession"]),
    )
    assert (tmp_path / "state" / "device.key").stat().st_mode & 0o777 == 0o600
    again = agent(config, "init", "--licensee", LICENSEE_HEX)
    assert again.returncode == 2 and '"event":"exists"' in again.stderr
    reprint = agent(config, "request", "--licensee", LICENSEE_HEX)
    assert json.loads(reprint.stdout) == request


def test_kill_9_at_random_points_loses_nothing_and_never_reuses_a_seq(
    tmp_path: pathlib.Path, nodes: tuple[FakeLedger, list[FakeNode]]
) -> None:
    ledger, (node_a, node_b) = nodes
    config = write_config(tmp_path, [node_a.url, node_b.url], SIMULATED)
    request = json.loads(agent(config, "init", "--licensee", LICENSEE_HEX).stdout)
    device = bytes.fromhex(request["device"])
    ledger.enrol(device)
    rng = random.Random(20261125)
    taken: dict[int, bytes] = {}  # every report seen durably in the outbox
    for round_ in range(5):
        node_a.fault = "500" if round_ == 2 else None  # one round with a failing node
        proc = start(config)
        time.sleep(rng.uniform(0.3, 0.9))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for seq, tx_id in outbox_rows(tmp_path / "state").items():
            assert taken.setdefault(seq, tx_id) == tx_id, f"seq {seq} re-signed after a crash"
    assert taken, "the agent never took a report"
    # A last clean run with a silent source drains the outbox.
    node_a.fault = None
    write_config(tmp_path, [node_a.url, node_b.url], SILENT)
    proc = start(config)
    try:
        for _ in range(300):  # bounded: at most ~15 s
            status = json.loads(agent(config, "status", "--json").stdout)
            if status["queue_depth"] == 0 and status["last_committed_seq"] > 0:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    status = json.loads(agent(config, "status", "--json").stdout)
    assert status["queue_depth"] == 0 and status["dead"] == 0
    reports = ledger.reports(device)
    seqs = [seq for seq, _ in reports]
    assert seqs == list(range(1, status["next_seq"]))  # every seq exactly once, no gap
    with ledger.lock:
        assert all(len(ids) == 1 for ids in ledger.seen.values()), "a seq was sent twice"
        committed_ids = {tx.nonce: tx_id for tx_id, (_, tx) in ledger.committed.items()}
    for seq, tx_id in taken.items():
        assert committed_ids[seq] == tx_id  # nothing taken was lost or rewritten
    units = [r.registers["units"] for _, r in reports]
    assert units == sorted(units)  # registers never go backwards
    assert reports[-1][1].registers == status["registers"]
    assert ledger.anomalies == []


def test_damaged_outbox_stops_the_agent_with_a_clear_error(tmp_path: pathlib.Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"], SILENT)
    assert agent(config, "init", "--licensee", LICENSEE_HEX).returncode == 0
    damaged = b"SQLite format 3\x00" + os.urandom(3000)
    (tmp_path / "state" / "outbox.sqlite").write_bytes(damaged)
    done = agent(config, "run", "--ticks-max", "5")
    assert done.returncode == 2
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["level"] == "error" and line["error"] == "OutboxCorrupt"
    assert (tmp_path / "state" / "outbox.sqlite").read_bytes() == damaged  # left for forensics


def test_bad_config_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[device]\nchain_id = "alps-test"\n')
    done = agent(config, "status")
    assert done.returncode == 2 and "ConfigError" in done.stderr


def test_agent_imports_none_of_the_heavy_node_dependencies() -> None:
    code = (
        "import sys, device_agent.cli, device_agent.agent, device_agent.uploader; "
        "print(','.join(m for m in ('plyvel', 'libp2p', 'trio', 'click', 'httpx') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == ""


def test_encrypted_key_via_the_cli(tmp_path: pathlib.Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"], SILENT)
    env = {**os.environ, "PASS": "s3cret", "ALPS_AGENT_PASSPHRASE": ""}
    done = agent(config, "init", "--licensee", LICENSEE_HEX, "--passphrase-env", "PASS", env=env)
    assert done.returncode == 0, done.stderr
    assert '"encrypted": true' in (tmp_path / "state" / "device.key").read_text()
    denied = agent(config, "request", "--licensee", LICENSEE_HEX, env=env)
    assert denied.returncode == 2 and "passphrase_needed" in denied.stderr
    env["ALPS_AGENT_PASSPHRASE"] = "s3cret"
    again = agent(config, "request", "--licensee", LICENSEE_HEX, env=env)
    assert json.loads(again.stdout) == json.loads(done.stdout)


def test_status_in_plain_text(tmp_path: pathlib.Path) -> None:
    config = write_config(tmp_path, ["http://127.0.0.1:9"], SILENT)
    assert agent(config, "init", "--licensee", LICENSEE_HEX).returncode == 0
    missing = agent(config, "status")
    assert missing.returncode == 2 and "has the agent run yet" in missing.stderr
    assert agent(config, "run", "--ticks-max", "3").returncode == 0
    text = agent(config, "status").stdout
    assert "queue_depth" in text and "last_committed_seq" in text and "next_seq" in text
