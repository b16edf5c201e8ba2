"""Deploying the licensing web over HTTP and setting up the simulated device agents.

Rules kept here: member nonces are assigned by walking one fixed plan (deployment,
funding, enrolments) from nonce 1, so the plan always signs to the same transactions;
sending it again after an interruption re-sends identical transactions, which a node
answers "committed" for those already on the chain. A stage is sent only after the one
before it committed, and any refusal stops the deployment with the ledger's reason.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cli import web
from cli.demo_procs import DemoError, HttpError, http_get, http_post
from node.ledger import codec
from node.ledger.crypto import Signer
from node.ledger.tx import Transaction, make_tx

SUBMIT_WAIT_S = 20
COMMIT_TIMEOUT_S = 90


def sign_plan(
    stages: Sequence[Sequence[web.Step]], signers: Mapping[str, Signer], chain_id: str
) -> list[list[tuple[web.Step, Transaction]]]:
    """Each step signed with its member's next nonce (counted from 1 over the plan)."""
    nonces: Counter[str] = Counter()
    out = []
    for stage in stages:
        signed = []
        for step in stage:
            nonces[step.signer] += 1
            tx = make_tx(
                signers[step.signer], chain_id, step.tx_type, step.body, nonces[step.signer]
            )
            signed.append((step, tx))
        out.append(signed)
    return out


def send_stage(apis: Sequence[str], stage: Sequence[tuple[web.Step, Transaction]]) -> None:
    """Submit one stage and wait until every transaction committed with an accepted receipt."""
    body = codec.encode({"txs": [tx.to_value() for _, tx in stage]})
    answer = _post_any(apis, f"/v1/txs?wait_s={SUBMIT_WAIT_S}", body)
    results = answer["results"]
    for (step, tx), result in zip(stage, results, strict=True):
        what = f"{step.tx_type} by {step.signer}"
        if result["status"] == "rejected":
            raise DemoError(f"deploy: {what} refused: {result['code']} {result['detail']}")
        if result["status"] == "committed":
            _check_code(what, result["code"], result["detail"])
            continue
        _wait_committed(apis, what, tx.tx_id.hex())


def _check_code(what: str, code: str, detail: str) -> None:
    if code != "ok":
        raise DemoError(f"deploy: {what} committed but refused by the ledger: {code} {detail}")


def _wait_committed(apis: Sequence[str], what: str, tx_id: str) -> None:
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    while time.monotonic() < deadline:
        for api in apis:
            try:
                found = http_get(f"{api}/v1/txs/{tx_id}")
            except (OSError, HttpError):
                continue
            if found["status"] == "committed" and found["receipt"] is not None:
                receipt = found["receipt"]
                _check_code(what, receipt["code"], receipt["detail"])
                return
            break
        time.sleep(0.5)
    raise DemoError(f"deploy: {what} did not commit within {COMMIT_TIMEOUT_S}s")


def _post_any(apis: Sequence[str], path: str, body: bytes) -> dict[str, Any]:
    """POST to the first node that takes it (429: wait and retry), bounded in time."""
    deadline = time.monotonic() + COMMIT_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        for api in apis:
            try:
                answer: dict[str, Any] = http_post(api + path, body, timeout=SUBMIT_WAIT_S + 10)
                return answer
            except HttpError as exc:
                if exc.status != 429:
                    raise DemoError(f"deploy: {api} refused the batch: {exc}") from None
                last = str(exc)
            except OSError as exc:
                last = f"{api}: {exc}"
        time.sleep(1)
    raise DemoError(f"deploy: no node took the transactions ({last})")


# -- device agents -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One simulated production-line gateway: agent-<index> reporting `sku` in `territory`."""

    index: int
    sku: str
    territory: str
    home: pathlib.Path
    rate_per_s: float

    @property
    def name(self) -> str:
        return f"agent-{self.index}"

    @property
    def config_path(self) -> pathlib.Path:
        return self.home / "agent.toml"

    @property
    def log_path(self) -> pathlib.Path:
        return self.home / "agent.log"


def agent_specs(root: pathlib.Path, count: int, rate_per_s: float) -> list[AgentSpec]:
    """`count` agents cycling over the web's gateways (sku, territory)."""
    out = []
    for i in range(count):
        sku, territory = web.GATEWAYS[i % len(web.GATEWAYS)]
        out.append(AgentSpec(i, sku, territory, root / f"agent-{i}", rate_per_s))
    return out


def agent_config(spec: AgentSpec, chain_id: str, endpoints: Sequence[str]) -> str:
    """The agent's TOML: a seeded simulated source with net sales per unit, fast uploads."""
    urls = ", ".join(json.dumps(e) for e in endpoints)
    return f"""# alps demo: simulated gateway {spec.name} ({spec.sku} in {spec.territory})
[device]
chain_id = "{chain_id}"
sku = "{spec.sku}"
territory = "{spec.territory}"
key_file = "device.key"
state_dir = "."

[nodes]
endpoints = [{urls}]
timeout_s = 5.0

[upload]
batch_size_max = 100
backoff_base_s = 0.5
backoff_max_s = 10.0
confirm_interval_s = 0.5
confirm_lookups_max = 10
enrolment_check_s = 2.0

[record]
interval_s = 2.0
tick_s = 0.5

[log]
level = "info"

[source]
kind = "simulated"
rate_per_s = {spec.rate_per_s}
jitter = 0.3
metric = "units"
seed = {spec.index + 1}
per_unit = {{ net_sales = {web.PRICE[spec.sku]} }}
"""


def agent_argv(spec: AgentSpec, command: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "device_agent.cli",
        "--config",
        str(spec.config_path),
        command,
        *args,
    ]


def prepare_agent(
    spec: AgentSpec, chain_id: str, endpoints: Sequence[str], licensee: bytes, cwd: pathlib.Path
) -> web.Step:
    """Write the agent's config (first time), create its key, and return the OEM's
    enrolment step built from the agent's own enrolment request."""
    spec.home.mkdir(parents=True, exist_ok=True)
    if not spec.config_path.exists():
        spec.config_path.write_text(agent_config(spec, chain_id, endpoints))
    command = "request" if (spec.home / "device.key").exists() else "init"
    argv = agent_argv(spec, command, "--licensee", licensee.hex())
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise DemoError(
            f"{spec.name}: alps-agent {command} failed: "
            + done.stderr.decode(errors="replace").strip()[-300:]
        )
    try:
        request = json.loads(done.stdout)
        device = bytes.fromhex(request["device"])
        proof = bytes.fromhex(request["proof_of_possession"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoError(f"{spec.name}: unreadable enrolment request ({exc})") from exc
    return web.enrolment(device, request["sku"], proof)
