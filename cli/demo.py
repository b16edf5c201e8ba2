"""`alps demo`: a local consortium running the licensing web, with simulated devices.

What it does, in DIR (default .demo, project-local): creates a 4-validator testnet with
the licensing web's member keys (first run only; ports 27000.. and 8700.. if free, else
a free block, remembered in the node configs), starts the four nodes as separate
processes (logs in DIR/node-<i>/node.log), deploys the licensing web over HTTP with
short periods (first run only), starts one simulated `alps-agent` per production-line
gateway (DIR/agents/agent-<i>/), and shows a live summary until Ctrl-C (or --duration).

Rules kept here: one demo per DIR (a lock); everything the demo starts it stops on the
way out, agents first, then nodes (SIGTERM, a bounded wait, SIGKILL); running it again
resumes the same chain, the same licences and the agents' outboxes. DIR/demo.json
remembers the deployment's choices so a half-done deployment is re-sent identically.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace

import click

from cli import web
from cli.demo_deploy import AgentSpec, agent_argv, agent_specs, prepare_agent, send_stage, sign_plan
from cli.demo_procs import (
    Child,
    DemoError,
    Supervisor,
    free_block,
    http_get,
    locked,
    port_free,
    wait_until,
)
from cli.demo_view import Collector, Snapshot, explore_commands, one_line, render
from node.config import NodeConfig, load_config
from node.keys import load_signer
from node.ledger.calendar import MS_PER_DAY, PERIOD_KINDS, period_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAIN_ID = "alps-demo"
VALIDATORS = 4
DEFAULT_P2P_BASE, DEFAULT_API_BASE = 27000, 8700
DEPOSIT_ID, DEPOSIT = "demo-fund", 500_000_000  # USD 5,000,000.00 in escrow
# No minimum guarantee in the demo: a stopped demo's idle periods would each true up,
# draining the escrow while nobody watches (tests/ledger/test_short_periods.py covers
# minimum guarantees on short periods).
DEMO_OS_MINIMUM = 0
LICENCE_YEARS = 10
STATE_FILE = "demo.json"
PIDS_FILE = "pids.json"
NODE_START_TIMEOUT_S = 120
AGENT_STOP_S, NODE_STOP_S = 10.0, 30.0


@dataclass(frozen=True, slots=True)
class DemoState:
    """DIR/demo.json: what the first run chose, so later runs repeat it."""

    period: str
    agents: int
    rate_per_s: float
    start_ms: int = 0  # the licences' start (a period start); 0 until chosen
    deployed: bool = False

    def __post_init__(self) -> None:
        if self.period not in PERIOD_KINDS:
            raise DemoError(f"{STATE_FILE}: period must be one of {PERIOD_KINDS}")
        if not 1 <= self.agents <= 50 or not 0 < self.rate_per_s <= 1000:
            raise DemoError(f"{STATE_FILE}: agents or rate out of range")


def load_state(directory: pathlib.Path) -> DemoState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        return DemoState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DemoError(f"{path}: unreadable ({exc}); remove the directory to start over") from exc


def save_state(directory: pathlib.Path, state: DemoState) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1) + "\n")
    os.replace(tmp, directory / STATE_FILE)


# -- the testnet ---------------------------------------------------------------------------------


def ensure_testnet(directory: pathlib.Path) -> bool:
    """Create the testnet in `directory` unless it holds one; True if it was created.

    It is built in a sibling directory and renamed into place, so an interrupted creation
    leaves no half testnet behind."""
    if (directory / "genesis.json").exists():
        return False
    if directory.exists() and any(directory.iterdir()):
        raise DemoError(f"{directory} exists but holds no demo testnet; remove it or use --dir")
    staging = directory.with_name(f"{directory.name}.new-{os.getpid()}")
    p2p = free_block(VALIDATORS, DEFAULT_P2P_BASE, os.getpid())
    api = free_block(
        2 * VALIDATORS, DEFAULT_API_BASE, os.getpid() + 1, avoid=range(p2p, p2p + VALIDATORS)
    )
    argv = [
        *(sys.executable, "-m", "cli", "testnet", "--validators", str(VALIDATORS)),
        *("--dir", str(staging), "--base-port", str(p2p), "--api-base-port", str(api)),
        *("--chain-id", CHAIN_ID, "--members", "licensing-web"),
    ]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, timeout=120)
        if done.returncode != 0:
            raise DemoError("alps testnet failed: " + done.stderr.decode(errors="replace").strip())
        if directory.exists():
            directory.rmdir()  # empty (checked above)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return True


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def node_configs(directory: pathlib.Path) -> list[NodeConfig]:
    return [load_config(directory / f"node-{i}") for i in range(VALIDATORS)]


def api_url(cfg: NodeConfig) -> str:
    host, port = cfg.api.listen_host_port
    return f"http://{host}:{port}"


def check_ports(configs: list[NodeConfig]) -> None:
    for cfg in configs:
        for what, port in cfg.listen_ports.items():
            if not port_free(port):
                raise DemoError(
                    f"port {port} ({cfg.node.moniker} {what}) is in use on 127.0.0.1: "
                    "is another node or demo running? Stop it and run again"
                )


# -- running -------------------------------------------------------------------------------------


@dataclass
class Demo:
    directory: pathlib.Path
    state: DemoState
    configs: list[NodeConfig]
    supervisor: Supervisor
    refresh_s: float
    out_is_tty: bool
    last_snapshot: Snapshot | None = None
    collector: Collector | None = None

    @property
    def apis(self) -> list[str]:
        return [api_url(c) for c in self.configs]

    def say(self, text: str) -> None:
        click.echo(text)

    # nodes

    def start_nodes(self) -> list[Child]:
        nodes = []
        for cfg in self.configs:
            argv = [sys.executable, "-m", "cli", "node", "start", "--home", str(cfg.home)]
            nodes.append(self.supervisor.start(cfg.node.moniker, argv, cfg.home / "node.log"))
        self.write_pids()
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        for node, api in zip(nodes, self.apis, strict=True):

            def healthy(node: Child = node, api: str = api) -> bool:
                if not node.alive():
                    raise DemoError(
                        f"{node.name} exited (status {node.popen.returncode}); "
                        f"last lines of {node.log_path}:\n{node.log_tail()}"
                    )
                return bool(http_get(f"{api}/health", timeout=2.0)["ok"])

            wait_until(f"{node.name} at {api}", healthy, max(1.0, deadline - time.monotonic()))
        return nodes

    def write_pids(self) -> None:
        pids = {c.name: c.pid for c in self.supervisor.children if c.alive()}
        doc = {"demo": os.getpid(), "children": pids}
        (self.directory / PIDS_FILE).write_text(json.dumps(doc, indent=1) + "\n")

    # deployment

    def agent_specs(self) -> list[AgentSpec]:
        return agent_specs(self.directory / "agents", self.state.agents, self.state.rate_per_s)

    def deploy(self) -> None:
        """Deploy the web, fund the OEM and enrol the agents (first run, or to finish an
        interrupted one: the same transactions again)."""
        if self.state.start_ms == 0:
            now_ms = time.time_ns() // 1_000_000
            self.state = replace(self.state, start_ms=period_of(self.state.period, now_ms).start_ms)
            save_state(self.directory, self.state)
        signers = {
            name: load_signer(self.directory / "members" / f"{name}.json")
            for name in web.MEMBER_ROLES
        }
        keys = {name: s.public_key for name, s in signers.items()}
        shape = web.WebShape(
            start_ms=self.state.start_ms,
            end_ms=self.state.start_ms + LICENCE_YEARS * 365 * MS_PER_DAY,
            period=self.state.period,
            payment_due_days=0,
            os_minimum_annual=DEMO_OS_MINIMUM,
        )
        self.say(f"preparing {self.state.agents} simulated device agents ...")
        enrolments = [
            prepare_agent(spec, CHAIN_ID, self.apis, keys["oem"], ROOT)
            for spec in self.agent_specs()
        ]
        stages = [
            *web.deployment(keys, shape),
            *web.funding(DEPOSIT_ID, DEPOSIT),
            enrolments,
        ]
        plan = sign_plan(stages, signers, CHAIN_ID)
        for i, stage in enumerate(plan, 1):
            kinds = sorted({step.tx_type for step, _ in stage})
            self.say(f"deploying {i}/{len(plan)}: {', '.join(kinds)} ({len(stage)} txs)")
            send_stage(self.apis, stage)
        self.state = replace(self.state, deployed=True)
        save_state(self.directory, self.state)

    def start_agents(self) -> list[Child]:
        agents = []
        for spec in self.agent_specs():
            argv = agent_argv(spec, "run")
            agents.append(self.supervisor.start(spec.name, argv, spec.log_path))
        self.write_pids()
        return agents

    # the summary

    def watch(self, agents: list[Child], duration_s: float | None) -> None:
        signers = {
            n: load_signer(self.directory / "members" / f"{n}.json") for n in web.MEMBER_ROLES
        }
        collector = self.collector = Collector(
            self.apis, {n: s.public_key for n, s in signers.items()}
        )
        started = time.monotonic()
        while duration_s is None or time.monotonic() - started < duration_s:
            snap = collector.snapshot(time.monotonic())
            up = sum(a.alive() for a in agents)
            if snap is None:
                self.say("no node answers (see the node logs)")
            else:
                self.last_snapshot = snap  # kept for the commands printed at the end
                self.show(snap, up, len(agents))
            time.sleep(self.refresh_s)

    def show(self, snap: Snapshot, agents_up: int, agents: int) -> None:
        if not self.out_is_tty:
            self.say(one_line(snap, agents_up, agents))
            return
        lines = [
            f"ALPS demo: {VALIDATORS} validators, chain {CHAIN_ID}, periods {self.state.period},"
            f" {self.directory}   (Ctrl-C stops; run again to resume)",
            "",
            *render(snap, agents_up, agents),
            "",
            "explore and verify:",
            *(f"  {c}" for c in self.commands(snap)),
        ]
        click.echo("\x1b[H\x1b[2J" + "\n".join(lines), nl=True)

    def fresh_snapshot(self) -> None:
        """Read the chain once more before the nodes stop: the commands printed at the end
        name the newest paid statement, which may have settled since the last refresh
        (`last_snapshot` stays as it was if no node answers)."""
        if self.collector is not None:
            snap = self.collector.snapshot(time.monotonic())
            if snap is not None:
                self.last_snapshot = snap

    def commands(self, snap: Snapshot | None) -> list[str]:
        paid = [v.last_paid for v in (snap.licences if snap else []) if v.last_paid]
        statement = paid[0] if paid else "CODEC@<period>"
        return explore_commands(
            self.apis[0],
            str(self.directory / "genesis.json"),
            statement,
            str(self.agent_specs()[0].config_path),
        )


def run_demo(
    directory: pathlib.Path,
    period: str | None,
    agents: int | None,
    rate: float | None,
    duration_s: float | None,
    refresh_s: float,
) -> None:
    directory = directory.absolute()
    created = ensure_testnet(directory)
    with locked(directory):
        state = load_state(directory)
        if state is None:
            state = DemoState(period or "min1", agents or len(web.GATEWAYS), rate or 3.0)
            save_state(directory, state)
        elif (period, agents, rate) != (None, None, None):
            click.echo(
                f"note: resuming the existing demo in {directory} with its own settings "
                f"(period {state.period}, {state.agents} agents, rate {state.rate_per_s}/s)",
                err=True,
            )
        configs = node_configs(directory)
        check_ports(configs)
        demo = Demo(
            directory, state, configs, Supervisor(ROOT, child_env()), refresh_s, sys.stdout.isatty()
        )
        click.echo(
            ("created" if created else "resuming")
            + f" the demo consortium in {directory} (chain {CHAIN_ID}, periods {state.period})"
        )
        watched = False  # the nodes ran until the end or Ctrl-C (not an error)
        stops = demo.supervisor.stops
        with stops.installed():
            try:
                click.echo(
                    f"starting {VALIDATORS} validator nodes (logs: {directory}/node-<i>/node.log)"
                )
                demo.start_nodes()
                if demo.state.deployed:
                    click.echo("the licensing web is already deployed: resuming")
                else:
                    demo.deploy()
                agents_running = demo.start_agents()
                click.echo(f"{len(agents_running)} device agents reporting usage; Ctrl-C stops")
                for command in demo.commands(None):
                    click.echo(f"  {command}")
                demo.watch(agents_running, duration_s)
                watched = True
            except KeyboardInterrupt:
                watched = True
            finally:
                stops.stopping = True  # from here on a signal only says to wait
                if watched:
                    demo.fresh_snapshot()
                stop_all(demo)
        click.echo("explore and verify (run the demo again first: make demo):")
        for command in demo.commands(demo.last_snapshot):
            click.echo(f"  {command}")


def stop_all(demo: Demo) -> None:
    sup = demo.supervisor
    click.echo("stopping device agents and nodes ...")
    agents = [c for c in sup.children if c.name.startswith("agent-")]
    nodes = [c for c in sup.children if not c.name.startswith("agent-")]
    killed = sup.stop(agents, AGENT_STOP_S) + sup.stop(nodes, NODE_STOP_S)
    sup.kill_all()
    with contextlib.suppress(OSError):
        (demo.directory / PIDS_FILE).unlink()
    if killed:
        click.echo(f"killed after the grace period: {', '.join(killed)}", err=True)
    click.echo(f"stopped; run again to resume the same chain ({demo.directory})")


@click.command()
@click.option(
    "--dir",
    "directory",
    default=".demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="where the demo keeps its testnet, chain data, agents and logs",
)
@click.option(
    "--period",
    type=click.Choice(PERIOD_KINDS),
    default=None,
    help="licence reporting period (first run; default min1)",
)
@click.option(
    "--agents",
    type=click.IntRange(1, 50),
    default=None,
    help="device agents (first run; default 5)",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 1000),
    default=None,
    help="units per second per agent (first run; default 3)",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=None,
    help="stop after this many seconds (default: until Ctrl-C)",
)
@click.option("--refresh", type=click.FloatRange(0.5, 60), default=2.0, show_default=True)
def demo(
    directory: pathlib.Path,
    period: str | None,
    agents: int | None,
    rate: float | None,
    duration: float | None,
    refresh: float,
) -> None:
    """Run a local 4-validator consortium with the licensing web and simulated devices."""
    run_demo(directory, period, agents, rate, duration, refresh)
