"""`alps demo` end to end, as the README walks it: four real node processes, the licensing
web deployed over HTTP, simulated device agents, a statement closed and settled within
minutes; Ctrl-C stops everything cleanly and a second run resumes the same chain.

Slow (about two minutes: the first one-minute period has to end); run alone with
`pytest -m slow tests/e2e/test_demo.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from cli import web
from cli.demo import CHAIN_ID, DEPOSIT
from node.api.proofs import InclusionProofDoc, verify_tx_proof
from node.config import load_config
from node.genesis_file import genesis_from_json
from tests.e2e.procs import ROOT, http, wait_for

pytestmark = pytest.mark.slow


class DemoRun:
    """One `python -m cli demo` process (its own session, output to a file)."""

    def __init__(self, directory: pathlib.Path, out: pathlib.Path, *args: str) -> None:
        self.directory = directory
        self.out_path = out
        self.children: dict[str, int] = {}
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "demo", "--dir", str(directory), *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def read_children(self) -> dict[str, int]:
        doc = json.loads((self.directory / "pids.json").read_text())
        assert doc["demo"] == self.proc.pid
        self.children = {k: int(v) for k, v in doc["children"].items()}
        return self.children

    def kill_everything(self) -> None:
        """Teardown after a failure: the demo and every child it reported (read again
        here: a run whose children the test never read, or that started more since,
        would otherwise leave nodes and agents running)."""
        with contextlib.suppress(OSError, ValueError, KeyError, AssertionError):
            self.read_children()  # AssertionError: pids.json is a later run's by now
        for pid in [self.proc.pid, *self.children.values()]:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running; only our children could be zombies of ours
    with contextlib.suppress(OSError):
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


@pytest.fixture
def runs() -> Iterator[list[DemoRun]]:
    started: list[DemoRun] = []
    try:
        yield started
    finally:
        for run in started:
            run.kill_everything()


def apis(directory: pathlib.Path) -> list[str]:
    out = []
    for i in range(4):
        host, port = load_config(directory / f"node-{i}").api.listen_host_port
        out.append(f"http://{host}:{port}")
    return out


def statements(api: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        page = http(f"{api}/v1/statements?limit=1000" + (f"&after={after}" if after else ""))
        out += page["statements"]
        after = page["next"]
        if after is None:
            return out
    raise AssertionError("too many statement pages")


def paid_statement(api: str) -> dict[str, Any] | None:
    done = [s for s in statements(api) if s["status"] == "paid" and s["total"] > 0]
    return done[0] if done else None


def member_balances(api: str) -> dict[str, int]:
    members = http(f"{api}/v1/members?limit=1000")["members"]
    out = {}
    for m in members:
        acct = http(f"{api}/v1/accounts/{m['public_key']}")
        out[m["name"]] = sum(b["balance"] for b in acct["balances"] if b["currency"] == "USD")
    return out


def agent_devices(directory: pathlib.Path) -> list[str]:
    devices = []
    for config in sorted((directory / "agents").glob("agent-*/agent.toml")):
        done = subprocess.run(
            [sys.executable, "-m", "device_agent.cli", "--config", str(config), "status", "--json"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            check=True,
            timeout=30,
        )
        devices.append(json.loads(done.stdout)["device"])
    return devices


def printed_cli_commands(output: str) -> list[list[str]]:
    """The `python -m cli ...` commands the demo printed last (the explore list)."""
    tail = output.rsplit("explore and verify", 1)[-1]
    return [
        shlex.split(line.strip())
        for line in tail.splitlines()
        if line.strip().startswith("python -m cli ")
    ]


def test_demo_walkthrough_settles_a_statement_stops_cleanly_and_resumes(
    tmp_path: pathlib.Path, runs: list[DemoRun]
) -> None:
    directory = tmp_path / "demo"
    first = DemoRun(directory, tmp_path / "first.out", "--duration", "240", "--period", "min1")
    runs.append(first)
    t0 = time.monotonic()

    # 1. four nodes and five agents come up; the web is deployed
    wait_for(
        "the demo's nodes and agents",
        lambda: (directory / "pids.json").exists() and len(first.read_children()) == 9,
        150,
    )
    nodes = apis(directory)
    assert all(http(f"{api}/health")["ok"] for api in nodes)
    licences = http(f"{nodes[0]}/v1/licences")["licences"]
    assert sorted(x["licence_id"] for x in licences) == ["CODEC", "GFX-OS", "OS", "RADIO"]
    assert {x["status"] for x in licences} == {"active"} and {x["period"] for x in licences} == {
        "min1"
    }

    # 2. within a few minutes a statement with usage closes and is paid on its due date
    found: dict[str, Any] = {}

    def settled() -> bool:
        s = paid_statement(nodes[1])
        if s is not None:
            found.update(s)
        return s is not None

    wait_for("a settled statement with usage", settled, 200, interval=2)
    print(f"first settled statement after {time.monotonic() - t0:.0f}s: {found['statement_id']}")
    assert found["paid"] == found["total"] > 0 and found["usage_count"] > 0
    assert found["due_ms"] == found["interest_from_ms"]  # due at the period's end

    # every agent's usage reached the chain, and its proof checks offline
    devices = agent_devices(directory)
    assert len(devices) == 5
    for device in devices:
        assert http(f"{nodes[2]}/v1/devices/{device}")["last_seq"] > 0
    genesis = genesis_from_json((directory / "genesis.json").read_bytes())
    head = http(f"{nodes[0]}/v1/blocks/latest")["height"]
    usage_tx = next(
        tx_id
        for h in range(head, 0, -1)
        for tx_id in http(f"{nodes[0]}/v1/blocks/{h}")["tx_ids"]
        if http(f"{nodes[0]}/v1/txs/{tx_id}")["tx"]["tx_type"] == "usage.report"
    )
    proof = InclusionProofDoc.from_json(http(f"{nodes[3]}/v1/txs/{usage_tx}/proof"))
    assert verify_tx_proof(proof, CHAIN_ID, genesis.validator_set).tx is not None

    # money is conserved: the OEM's escrow went to the licensors, nothing else moved
    balances = member_balances(nodes[0])
    assert sum(balances.values()) == DEPOSIT
    received = sum(balances[n] for n in web.LICENSORS)
    assert received > 0 and balances["oem"] == DEPOSIT - received

    # 3. Ctrl-C: everything stops, exit status 0
    children = first.read_children()
    height_before = max(http(f"{api}/v1/status")["height"] for api in nodes)
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(90) == 0, first.output()[-2000:]
    assert not [name for name, pid in children.items() if _alive(pid)]
    out = first.output()
    assert "stopped; run again to resume" in out
    commands = printed_cli_commands(out)
    assert any(c[3:5] == ["verify", "statement"] for c in commands), out[-1500:]

    # 4. a second run resumes the same chain: no redeployment, the old statement unchanged
    second = DemoRun(directory, tmp_path / "second.out", "--duration", "150", "--period", "min5")
    runs.append(second)
    wait_for("the resumed demo", lambda: (directory / "pids.json").exists(), 120)
    wait_for(
        "blocks after the restart",
        lambda: http(f"{nodes[0]}/v1/status")["height"] > height_before + 2,
        120,
    )
    assert http(f"{nodes[0]}/v1/statements/{found['statement_id']}") == found
    assert http(f"{nodes[0]}/v1/licences")["licences"] == licences
    assert sum(member_balances(nodes[0]).values()) == DEPOSIT

    # 5. the walk-through's CLI commands, against the resumed chain
    missing = run_walkthrough(commands)

    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(90) == 0, second.output()[-2000:]
    out2 = second.output()
    assert "already deployed: resuming" in out2 and "deploying" not in out2
    assert "periods min1" in out2  # the first run's choice, not --period min5
    if missing:
        warnings.warn(f"walk-through commands not built yet: {missing}", stacklevel=1)


def run_walkthrough(commands: list[list[str]]) -> list[str]:
    """Run each `python -m cli` command the demo printed; return those not built yet (by
    other issues' work), which are reported as a warning, never silently passed."""
    missing = []
    for argv in commands:
        done = subprocess.run(
            [sys.executable, *argv[1:]],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=120,
        )
        text = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode == 2 and "No such command" in text:
            missing.append(" ".join(a for a in argv[3:5] if not a.startswith("-")))
            continue
        assert done.returncode == 0, (argv, text[-1500:])
    return missing
