"""The parts of `alps demo` that need no running consortium: the shared licensing web and
its deterministic plan, the agents' configs, process supervision, ports, the directory
lock, the demo's state file and the summary's formatting. The whole demo runs end to end
in tests/e2e/test_demo.py."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import signal
import socket
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from cli import web
from cli.demo import DemoState, check_ports, ensure_testnet, load_state, node_configs, save_state
from cli.demo_deploy import agent_config, agent_specs, send_stage, sign_plan
from cli.demo_procs import (
    DemoError,
    StopRequests,
    Supervisor,
    ephemeral_port_range,
    free_block,
    locked,
    port_free,
)
from cli.demo_view import LicenceView, Snapshot, money, one_line, render
from cli.testnet import LICENSING_WEB
from device_agent.config import from_dict
from device_agent.log import Logger
from device_agent.sources import SimulatedSource, build_source
from node.ledger import crypto
from node.ledger.calendar import ms_of_date
from tests.cli.helpers import one_line_error, run

SIGNERS = {name: crypto.Signer(crypto.sha256(name.encode())) for name in web.MEMBER_ROLES}
KEYS = {name: s.public_key for name, s in SIGNERS.items()}
SHAPE = web.WebShape(start_ms=ms_of_date(2026, 1, 1), end_ms=ms_of_date(2027, 1, 1), period="min1")


# -- the licensing web and its plan -----------------------------------------------------------


def test_the_web_members_are_the_testnet_members() -> None:
    testnet = {m.name: m.roles for m in LICENSING_WEB}
    assert {n: tuple(sorted(r)) for n, r in web.MEMBER_ROLES.items()} == {
        n: tuple(sorted(testnet[n])) for n in web.MEMBER_ROLES
    }
    assert set(testnet) - set(web.MEMBER_ROLES) == {"auditor"}


def test_the_plan_signs_to_the_same_transactions_with_consecutive_nonces() -> None:
    stages = [*web.deployment(KEYS, SHAPE), *web.funding("fund", 1_000)]
    plan = sign_plan(stages, SIGNERS, "alps-demo")
    again = sign_plan(
        [*web.deployment(KEYS, SHAPE), *web.funding("fund", 1_000)], SIGNERS, "alps-demo"
    )
    ids = [tx.tx_id for stage in plan for _, tx in stage]
    assert ids == [tx.tx_id for stage in again for _, tx in stage]
    assert len(set(ids)) == len(ids)
    nonces: dict[bytes, list[int]] = {}
    for stage in plan:
        for step, tx in stage:
            assert tx.signer == KEYS[step.signer] and tx.tx_type == step.tx_type
            nonces.setdefault(tx.signer, []).append(tx.nonce)
    assert all(n == list(range(1, len(n) + 1)) for n in nonces.values())
    later = web.WebShape(start_ms=SHAPE.start_ms + 60_000, end_ms=SHAPE.end_ms, period="min1")
    moved = sign_plan(web.deployment(KEYS, later), SIGNERS, "alps-demo")
    assert moved[1][0][1].tx_id != plan[1][0][1].tx_id  # the terms changed, so the proposal


def test_the_web_licences_follow_the_shape() -> None:
    lic = web.licences(KEYS, SHAPE)
    assert sorted(lic) == ["CODEC", "GFX-OS", "OS", "RADIO"]
    assert {t.period for t in lic.values()} == {"min1"}
    assert lic["RADIO"].pool and [p.weight for p in lic["RADIO"].pool] == [10, 7, 3]
    assert (lic["OS"].upstream_licence, lic["OS"].passthrough_bps) == ("GFX-OS", 1_500)
    proposals = [s for stage in web.deployment(KEYS, SHAPE) for s in stage]
    assert [s.tx_type for s in proposals].count("licence.propose") == 4
    assert [s.tx_type for s in proposals].count("licence.sign") == 4


@pytest.mark.parametrize(
    "kw",
    [
        {"period": "week"},
        {"start_ms": 5, "end_ms": 5},
        {"payment_due_days": -1},
        {"os_minimum_annual": -1},
    ],
)
def test_a_bad_shape_is_refused(kw: dict[str, Any]) -> None:
    base: dict[str, Any] = {"start_ms": 0, "end_ms": 10}
    with pytest.raises(web.WebError):
        web.WebShape(**{**base, **kw})


# -- agents -----------------------------------------------------------------------------------


def test_agent_configs_load_and_simulate_net_sales(tmp_path: pathlib.Path) -> None:
    specs = agent_specs(tmp_path, 7, 4.0)
    assert [(s.sku, s.territory) for s in specs[:5]] == list(web.GATEWAYS)
    assert specs[5].sku == web.GATEWAYS[0][0] and specs[6].name == "agent-6"
    for spec in specs[:5]:
        raw = tomllib.loads(agent_config(spec, "alps-demo", ["http://127.0.0.1:1"]))
        cfg = from_dict(raw, spec.home)
        assert (cfg.sku, cfg.territory, cfg.chain_id) == (spec.sku, spec.territory, "alps-demo")
        assert cfg.key_file == spec.home / "device.key" and cfg.state_dir == spec.home
        source = build_source(cfg.source, spec.home, Logger())
        assert isinstance(source, SimulatedSource)
        assert source.per_unit == {"net_sales": web.PRICE[spec.sku]}


# -- deployment over HTTP: refusals stop it with the ledger's reason ---------------------------


class FakeNode(http.server.BaseHTTPRequestHandler):
    answer: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_node() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"status": "rejected", "code": "bad_signature", "detail": ""}, "refused: bad_signature"),
        (
            {"status": "committed", "code": "bad_party", "detail": "not a member", "height": 3},
            "refused by the ledger: bad_party not a member",
        ),
    ],
)
def test_a_refused_deployment_stops_with_the_reason(
    fake_node: str, result: dict[str, Any], message: str
) -> None:
    [[first, *_], *_] = sign_plan(web.deployment(KEYS, SHAPE), SIGNERS, "alps-demo")
    FakeNode.answer = {"results": [{"tx_id": first[1].tx_id.hex(), "height": None, **result}]}
    with pytest.raises(DemoError, match=message):
        send_stage([fake_node], [first])


# -- processes, ports, lock ---------------------------------------------------------------------


def test_supervisor_stops_children_and_kills_those_that_ignore_sigterm(
    tmp_path: pathlib.Path,
) -> None:
    sup = Supervisor(tmp_path, {})
    polite = sup.start(
        "polite", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "a.log"
    )
    stubborn_code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    stubborn = sup.start("stubborn", [sys.executable, "-c", stubborn_code], tmp_path / "b.log")
    try:
        deadline = time.monotonic() + 20
        while "ready" not in (tmp_path / "b.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        killed = sup.stop([polite, stubborn], timeout_s=1.0)
        assert killed == ["stubborn"]
        assert time.monotonic() - started < 10
        assert not polite.alive() and not stubborn.alive()
        assert polite.popen.returncode == -15 and stubborn.popen.returncode == -9
        assert stubborn.log_tail() == "ready"
    finally:
        sup.kill_all()


def test_ports_and_free_blocks() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        assert not port_free(busy)
        base = free_block(3, busy - 1, seed=1)
        assert base not in range(busy - 2, busy + 1)
        assert all(port_free(p) for p in range(base, base + 3))
    assert free_block(2, base, seed=1) == base
    # a random block lies below the kernel's ephemeral range and outside `avoid`
    low = ephemeral_port_range()[0]
    for seed in range(20):
        other = free_block(4, None, seed, avoid=range(base, base + 3))
        assert 10_000 <= other and other + 4 <= low
        assert not set(range(other, other + 4)) & set(range(base, base + 3))
    assert free_block(2, base, seed=1, avoid=range(base + 1, base + 2)) != base


def test_one_demo_per_directory(tmp_path: pathlib.Path) -> None:
    with locked(tmp_path):
        with pytest.raises(DemoError, match="another alps demo"):
            with locked(tmp_path):
                pass
    with locked(tmp_path):  # released
        pass


# -- the testnet, state and ports of a demo directory -------------------------------------------


def test_demo_directory_setup_state_and_busy_ports(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "demo"
    assert ensure_testnet(d) is True
    assert ensure_testnet(d) is False  # already there: resumed, not recreated
    assert not list(tmp_path.glob("demo.new-*"))
    assert (d / "members" / "oem.json").exists() and (d / "node-3" / "config.toml").exists()
    configs = node_configs(d)
    assert len({c.api.listen for c in configs}) == 4
    check_ports(configs)
    host, port = configs[2].api.listen_host_port
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of earlier runs
        s.bind((host, port))
        s.listen()
        with pytest.raises(DemoError, match=f"port {port} \\(node-2 api\\) is in use"):
            check_ports(configs)

    assert load_state(d) is None
    state = DemoState("min5", 3, 2.5, start_ms=120_000, deployed=True)
    save_state(d, state)
    assert load_state(d) == state
    (d / "demo.json").write_text('{"period": "fortnight", "agents": 1, "rate_per_s": 1}')
    with pytest.raises(DemoError, match="period must be one of"):
        load_state(d)

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(DemoError, match="holds no demo testnet"):
        ensure_testnet(other)


def test_demo_refuses_a_directory_that_is_not_a_demo(tmp_path: pathlib.Path) -> None:
    (tmp_path / "x.txt").write_text("")
    line = one_line_error(run("demo", "--dir", tmp_path, "--duration", "1"))
    assert "holds no demo testnet" in line


# -- the summary ----------------------------------------------------------------------------------


def test_money_and_summary_lines() -> None:
    assert [money(0), money(5), money(-5), money(123_456_789)] == [
        "0.00",
        "0.05",
        "-0.05",
        "1,234,567.89",
    ]
    views = [
        LicenceView("CODEC", "codec", "2026-03-05T14:05", 150, 1_000, 1_000, 2, 2),
        LicenceView("RADIO", "radio-pool", "2026-03-05T14:05", 0, 0, 0, 0, 0),
    ]
    balances = {n: 100 * i for i, n in enumerate((*web.LICENSORS, "oem"))}
    snap = Snapshot(42, "http://x", 3.25, 4, views, balances)
    lines = render(snap, 5, 5)
    assert lines[0].startswith("height 42   tx/s 3.2")
    assert "statements closed 2, settled 2" in lines[0]
    assert any(line.startswith("CODEC    codec") and "10.00" in line for line in lines)
    assert lines[-1] == "OEM balance (USD): 6.00"
    line = one_line(snap, 4, 5)
    assert "height=42" in line and "agents=4/5" in line and "CODEC=1.50" in line


def test_a_stop_request_waits_for_a_child_start_and_later_ones_only_say_wait(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stops = StopRequests()
    reached = False
    with stops.installed():
        with pytest.raises(KeyboardInterrupt):
            with stops.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # the handler ran: nothing raised inside the section
                reached = True
        assert reached and stops.stopping
        os.kill(os.getpid(), signal.SIGTERM)  # while stopping: a message, no exception
        time.sleep(0.1)
    assert "stopping, please wait" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is not stops.handler  # restored
