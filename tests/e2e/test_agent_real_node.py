"""Issue 7 against real nodes: the real `alps-agent`, kill -9 at random points while it
records and uploads to a real 4-validator cluster (one of its two endpoints killed for a
while), then the ledger holds every report exactly once, with no gap and no anomaly."""

from __future__ import annotations

import json
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from node.ledger.tx import make_tx
from tests.device_agent.test_end_to_end import SILENT, SIMULATED, agent, outbox_rows
from tests.device_agent.test_end_to_end import write_config as write_agent_config
from tests.e2e.procs import ROOT, Testnet, wait_for

pytestmark = pytest.mark.slow


def start_agent(config: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "device_agent.cli", "--config", str(config), "run"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def agent_config(tmp: pathlib.Path, net: Testnet, source: str) -> pathlib.Path:
    endpoints = [net.nodes[0].api, net.nodes[1].api]
    path = write_agent_config(tmp, endpoints, source)
    path.write_text(
        path.read_text().replace('chain_id = "alps-test"', f'chain_id = "{net.chain_id}"')
    )
    return path


def test_agent_kill_9_against_real_nodes_every_report_exactly_once(
    net: Testnet, tmp_path: pathlib.Path
) -> None:
    net.start_all()
    oem = net.member("oem")
    config = agent_config(tmp_path, net, SIMULATED)
    done = agent(config, "init", "--licensee", oem.public_key.hex())
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    device_hex = request["device"]
    body = {
        "device": bytes.fromhex(device_hex),
        "sku": request["sku"],
        "proof": bytes.fromhex(request["proof_of_possession"]),
    }
    answer = net.nodes[2].post_txs([make_tx(oem, net.chain_id, "device.enrol", body, 1)], wait_s=30)
    assert answer["results"][0]["status"] == "committed", answer

    rng = random.Random(7)
    taken: dict[int, bytes] = {}
    for round_ in range(4):
        if round_ == 1:
            net.nodes[0].kill()  # one of the agent's two endpoints is down for a while
        if round_ == 3:
            net.nodes[0].start()
        proc = start_agent(config)
        time.sleep(rng.uniform(1.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for seq, tx_id in outbox_rows(tmp_path / "state").items():
            assert taken.setdefault(seq, tx_id) == tx_id, f"seq {seq} re-signed after a crash"
    assert taken, "the agent never took a report"

    agent_config(tmp_path, net, SILENT)  # a last clean run drains the outbox
    proc = start_agent(config)
    try:
        wait_for(
            "the outbox drained",
            lambda: json.loads(agent(config, "status", "--json").stdout)["queue_depth"] == 0,
            90,
            interval=0.5,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    status = json.loads(agent(config, "status", "--json").stdout)
    last_seq = status["next_seq"] - 1
    assert status["dead"] == 0 and status["last_committed_seq"] == last_seq
    assert last_seq == max(taken)  # (rows leave the outbox once committed)
    for node in net.nodes:
        wait_for(
            f"node {node.index} has the device's last report",
            lambda node=node: node.get(f"/v1/devices/{device_hex}")["last_seq"] == last_seq,
            60,
        )
        device = node.get(f"/v1/devices/{device_hex}")
        assert device["anomalies"] == 0  # no gap, no prev-hash mismatch, no rollback
        assert device["registers"] == status["registers"]
    for seq, tx_id in taken.items():  # nothing taken was lost or rewritten
        info = net.nodes[3].get(f"/v1/txs/{tx_id.hex()}")
        assert info["status"] == "committed" and info["receipt"]["accepted"], (seq, info)
