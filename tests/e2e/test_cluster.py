"""Issue 6 end to end: real node processes, real libp2p on 127.0.0.1, real LevelDB.

Slow (each node process imports libp2p); run alone with `pytest -m slow tests/e2e`.
"""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys

import pytest

from node.ledger import codec
from tests.e2e.procs import ROOT, HttpError, Testnet, free_port_block, http, wait_for

pytestmark = pytest.mark.slow


def committed_everywhere(net: Testnet, tx_ids: list[str], nodes: list[int]) -> bool:
    for i in nodes:
        for tx_id in tx_ids:
            if net.nodes[i].get(f"/v1/txs/{tx_id}")["status"] != "committed":
                return False
    return True


def test_cluster_commits_survives_crash_restart_and_pause(net: Testnet) -> None:
    net.start_all()
    a, b, _c, _d = net.nodes
    submitted: list[str] = []

    # 1. four nodes commit submitted transactions and end with identical state
    txs = net.deposits("oem", 1, 20)
    answer = b.post_txs(txs)
    assert [r["status"] for r in answer["results"]] == ["pending"] * 20
    submitted += [tx.tx_id.hex() for tx in txs]
    wait_for(
        "first deposits committed on all nodes",
        lambda: committed_everywhere(net, submitted, [0, 1, 2, 3]),
        60,
    )
    top = min(n.height() for n in net.nodes)
    assert len({net.state_digest(n, top) for n in net.nodes}) == 1

    # 2. kill -9 the primary: a view change and commits continue
    primary = net.primary()
    primary.kill()
    live = [n for n in net.nodes if n is not primary]
    txs = net.deposits("oem", 21, 10)
    live[0].post_txs(txs)
    submitted += [tx.tx_id.hex() for tx in txs]
    wait_for(
        "commits after the primary died",
        lambda: committed_everywhere(net, submitted, [n.index for n in live]),
        90,
    )
    assert all(n.get("/v1/status")["view"] > 0 for n in live)

    # 3. many blocks later the killed node restarts and catches up
    nonce = 31
    for _ in range(12):
        txs = net.deposits("oem", nonce, 5)
        nonce += 5
        result = live[1].post_txs(txs, wait_s=20)
        assert all(r["status"] == "committed" for r in result["results"]), result
        submitted += [tx.tx_id.hex() for tx in txs]
    target = live[1].height()
    primary.start()
    wait_for("the restarted node caught up", lambda: primary.height() >= target, 90)

    # 4. pause another node (SIGSTOP): the restarted node's vote is now needed for a quorum
    paused = next(n for n in live if n is not net.primary())
    paused.signal(signal.SIGSTOP)
    try:
        others = [n for n in net.nodes if n is not paused]
        txs = net.deposits("oem", nonce, 10)
        nonce += 10
        others[0].post_txs(txs)
        submitted += [tx.tx_id.hex() for tx in txs]
        wait_for(
            "commits with one node paused",
            lambda: committed_everywhere(net, submitted, [n.index for n in others]),
            90,
        )
    finally:
        paused.signal(signal.SIGCONT)
    top = max(n.height() for n in net.nodes)
    wait_for("the paused node recovered", lambda: paused.height() >= top, 90)

    # 5. identical chains and state; every transaction committed exactly once
    common = min(n.height() for n in net.nodes)
    assert len({net.state_digest(n, common) for n in net.nodes}) == 1
    for tx_id in submitted:
        info = a.get(f"/v1/txs/{tx_id}")
        assert info["status"] == "committed" and info["receipt"]["accepted"], info
    balance = a.get(f"/v1/accounts/{net.member('oem').public_key.hex()}")
    assert balance is not None

    # 6. clean shutdown on SIGTERM
    for node in net.nodes:
        assert node.stop() == 0, node.log_text()[-2000:]


def test_stranger_is_refused_and_bad_api_requests_change_nothing(
    net: Testnet, tmp_path: pathlib.Path
) -> None:
    net.start_all()
    a = net.nodes[0]
    txs = net.deposits("oem", 1, 5)
    a.post_txs(txs, wait_s=30)
    height = a.height()

    # a stranger with the right genesis but a key outside the validator set
    stranger_home = tmp_path / "stranger"
    base = free_port_block(3)
    env_cmd = [sys.executable, "-m", "cli"]
    subprocess.run(
        [
            *env_cmd,
            "init",
            "--home",
            str(stranger_home),
            "--moniker",
            "stranger",
            "--chain-id",
            net.chain_id,
            "--p2p-port",
            str(base),
            "--api-port",
            str(base + 1),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *env_cmd,
            "genesis",
            "install",
            str(net.root / "genesis.json"),
            "--home",
            str(stranger_home),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    import dataclasses

    from node.config import load_config, write_config

    cfg = load_config(stranger_home)
    peers = {n.key: load_config(n.home).p2p.listen for n in net.nodes}
    write_config(dataclasses.replace(cfg, p2p=dataclasses.replace(cfg.p2p, peers=peers)))
    from tests.e2e.procs import NodeProc

    stranger = NodeProc(99, stranger_home, f"http://127.0.0.1:{base + 1}", b"")
    stranger.start()
    try:
        wait_for("stranger API", lambda: stranger.get("/health") is not None, 30)
        more = net.deposits("oem", 6, 5)
        a.post_txs(more, wait_s=30)
        assert a.height() > height
        stranger_key = stranger.get("/v1/status")["node"]
        for node in net.nodes:
            assert stranger_key not in node.get("/v1/status")["peers"]
        assert stranger.height() == 0  # nobody serves it blocks or lets it vote
    finally:
        stranger.kill()

    # malformed and oversized requests: 4xx, and nothing changes
    before = a.get("/v1/status")
    bad_bodies = [
        b"\xc1garbage",
        codec.encode({"txs": "nope"}),
        codec.encode({"txs": [{"x": 1}]}),
        b"\x00" * (2 * 1024 * 1024),
    ]
    for body in bad_bodies:
        with pytest.raises(HttpError) as err:
            http(a.api + "/v1/txs", body)
        assert 400 <= err.value.status < 500
    with pytest.raises(HttpError) as err:
        a.get("/v1/txs/not-hex")
    assert 400 <= err.value.status < 500
    after = a.get("/v1/status")
    assert after["mempool"] == before["mempool"] == 0
