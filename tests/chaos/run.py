"""The chaos controller: a 4-node real-process cluster under load, with faults injected
from a seeded schedule, then healed and checked.

    python -m tests.chaos --seed 7 --duration 180        # what `make chaos` runs

Phases: make a testnet whose nodes reach each other only through the link proxies
(tests/chaos/proxy.py); start the nodes and the load (tests/chaos/load.py); run the fault
episodes of `plan(seed)` one at a time (never more than f = 1 node faulty), each followed
by a bounded wait for the healed node to catch up; stop the load, heal everything, wait
for every node to reach the same height, run the checks (tests/chaos/checks.py), stop
every node with SIGTERM (each must exit 0). A node process that dies without the
controller killing it is a failure (its log tail is printed) and is restarted.

Rule kept here: every process this starts is killed (process group, SIGKILL) on the way
out, whatever happens; every wait is bounded; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from typing import Any

import trio

from node.config import load_config, write_config
from node.runtime.byzantine import ENV_MODE, ENV_SEED
from tests.chaos import checks
from tests.chaos.checks import Check
from tests.chaos.load import Load
from tests.chaos.plan import TARGET_PRIMARY, Fault, plan
from tests.chaos.proxy import Mesh, open_mesh
from tests.e2e.procs import HttpError, NodeProc, Testnet

N = 4
DEFAULT_DEVICES = 8
CATCH_UP_S = 60.0
DRAIN_S = 90.0
CONVERGE_S = 90.0
START_S = 60.0
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Invalid|Exit)\w*: ")
MISBEHAVIOUR = re.compile(r'^alps_peer_misbehaviour_total\{code="([^"]+)"\} (\S+)$', re.M)


def crash_summary(log_text: str) -> str:
    """The innermost project frame and the exception line of the last traceback."""
    at = log_text.rfind("Traceback")
    if at < 0:
        return "no traceback (log tail: " + log_text[-300:].strip() + ")"
    lines = [line.strip(" |") for line in log_text[at:].splitlines()]
    frames = [ln for ln in lines if ln.startswith("File ") and "site-packages" not in ln]
    errors = [ln for ln in lines if EXCEPTION_LINE.match(ln) and "ExceptionGroup" not in ln]
    frame = frames[-1] if frames else "?"
    return f"{errors[-1] if errors else lines[-1]} (at {frame})"


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    seed: int
    duration_s: float
    byzantine: bool = True
    kinds: tuple[str, ...] = ()
    devices: int = DEFAULT_DEVICES
    tick_ms: int = 20
    timeout_ticks: int = 50

    def replay(self) -> str:
        kinds = f" --kinds {','.join(self.kinds)}" if self.kinds else ""
        byz = "" if self.byzantine else " --no-byzantine"
        command = (
            f"python -m tests.chaos --seed {self.seed} --duration {self.duration_s:g}"
            f" --devices {self.devices}{kinds}{byz}"
        )
        if not kinds and self.byzantine and self.devices == DEFAULT_DEVICES:
            command += f"  (or: make chaos SEED={self.seed} DURATION={self.duration_s:g})"
        return command


@dataclasses.dataclass
class Episode:
    fault: Fault
    target: int
    began_s: float
    progress: int = 0  # blocks the other nodes committed meanwhile
    catch_up_s: float | None = None  # None: the node did not catch up in time

    def line(self) -> str:
        caught = (
            f"caught up in {self.catch_up_s:.1f}s"
            if self.catch_up_s is not None
            else f"NOT caught up in {CATCH_UP_S:g}s"
        )
        return (
            f"  t={self.began_s:6.1f}s {self.fault.describe(self.target)}: "
            f"{self.progress} blocks meanwhile, {caught}"
        )


@dataclasses.dataclass
class Report:
    options: Options
    episodes: list[Episode]
    checks: list[Check]
    height: int
    load_stats: dict[str, int]
    proxy_stats: dict[str, int]
    misbehaviour: dict[str, int]
    elapsed_s: float
    workdir: pathlib.Path

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        out = [
            f"chaos seed {self.options.seed}: {len(self.episodes)} faults in "
            f"{self.elapsed_s:.0f}s, final height {self.height}",
            "faults injected:",
            *(e.line() for e in self.episodes),
            f"load: {self.load_stats}",
            f"proxies: {self.proxy_stats}",
            f"misbehaviour the nodes reported: {self.misbehaviour or 'none'}",
            "checks:",
        ]
        for c in self.checks:
            out.append(f"  {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        if self.ok:
            out.append(f"chaos seed {self.options.seed}: all {len(self.checks)} checks passed")
        else:
            out.append(f"FAIL chaos seed {self.options.seed} (logs in {self.workdir})")
            out.append(f"replay: {self.options.replay()}")
        return "\n".join(out)


def libp2p_port(node: NodeProc) -> int:
    listen = load_config(node.home).p2p.listen
    found = re.search(r"/tcp/(\d+)", listen)
    assert found, listen
    return int(found.group(1))


def wire_through(net: Testnet, mesh: Mesh) -> None:
    """Point every node's peer addresses at its link proxies."""
    for node in net.nodes:
        cfg = load_config(node.home)
        peers = {
            other.key: f"/ip4/127.0.0.1/tcp/{mesh.port(node.index, other.index)}"
            for other in net.nodes
            if other is not node
        }
        write_config(dataclasses.replace(cfg, p2p=dataclasses.replace(cfg.p2p, peers=peers)))


class Controller:
    def __init__(self, options: Options, net: Testnet, mesh: Mesh, log: Callable[[str], None]):
        self.o = options
        self.net = net
        self.mesh = mesh
        self.log = log
        self.limiter = trio.CapacityLimiter(48)
        self.load = Load(net, options.seed, options.devices, self.limiter)
        self.expected_down: set[int] = set()  # nodes the controller killed or is restarting
        self.paused: set[int] = set()
        self.crashes: list[str] = []
        self.episodes: list[Episode] = []
        self.misbehaviour: dict[str, int] = {}
        self.t0 = trio.current_time()

    # -- HTTP helpers (blocking calls in threads) ----------------------------------------

    async def get(self, node: NodeProc, path: str, timeout: float = 3) -> Any:
        return await trio.to_thread.run_sync(
            lambda: node.get(path, timeout=timeout), limiter=self.limiter, abandon_on_cancel=True
        )

    async def height(self, node: NodeProc) -> int | None:
        try:
            return int((await self.get(node, "/v1/status"))["height"])
        except (OSError, HTTPException, HttpError, KeyError, ValueError):
            return None

    async def heights(self, nodes: list[NodeProc]) -> list[int | None]:
        out: list[int | None] = [None] * len(nodes)

        async def one(i: int) -> None:
            out[i] = await self.height(nodes[i])

        async with trio.open_nursery() as nursery:
            for i in range(len(nodes)):
                nursery.start_soon(one, i)
        return out

    async def primary(self) -> int:
        for node in self.net.nodes:
            if node.index in self.expected_down or node.index in self.paused:
                continue
            try:
                key = bytes.fromhex((await self.get(node, "/v1/status"))["primary"])
            except (OSError, HTTPException, HttpError, KeyError, ValueError):
                continue
            for other in self.net.nodes:
                if other.key == key:
                    return other.index
        return 0

    # -- processes -----------------------------------------------------------------------

    def start(self, node: NodeProc) -> None:
        """Start (or restart) a node; with Byzantine episodes planned, its test-only hook
        is armed (honest until `set_byzantine`, see node/runtime/byzantine.py)."""
        env = {}
        if self.o.byzantine:
            control = node.home / "byzantine-mode"
            control.write_text("")
            env = {ENV_MODE: f"file:{control}", ENV_SEED: str(self.o.seed * 100 + node.index)}
        node.start(env)
        self.expected_down.discard(node.index)

    def set_byzantine(self, node: NodeProc, mode: str) -> None:
        (node.home / "byzantine-mode").write_text(mode)
        node.signal(signal.SIGUSR1)

    def kill(self, node: NodeProc) -> None:
        self.expected_down.add(node.index)
        self.paused.discard(node.index)
        node.kill()

    async def watch_processes(self) -> None:
        """A node process that exits on its own is a crash: record it, restart it."""
        while True:
            await trio.sleep(0.5)
            for node in self.net.nodes:
                if node.index in self.expected_down or node.proc is None:
                    continue
                code = node.proc.poll()
                if code is None:
                    continue
                why = crash_summary(node.log_text())
                self.crashes.append(f"node-{node.index} exited with {code}: {why}")
                self.log(f"!! node-{node.index} died on its own (exit {code}); restarting")
                self.start(node)

    # -- faults --------------------------------------------------------------------------

    def now(self) -> float:
        return trio.current_time() - self.t0

    async def inject(self, fault: Fault) -> None:
        target = await self.primary() if fault.target == TARGET_PRIMARY else fault.target
        node = self.net.nodes[target]
        others = [n for n in self.net.nodes if n is not node]
        episode = Episode(fault, target, self.now())
        self.episodes.append(episode)
        self.log(f"fault {fault.describe(target)} at t={episode.began_s:.1f}s")
        before = max((h for h in await self.heights(others) if h is not None), default=0)
        if fault.kind == "kill":
            self.kill(node)
            await trio.sleep(fault.duration_s)
            self.start(node)
        elif fault.kind == "pause":
            node.signal(signal.SIGSTOP)
            self.paused.add(target)
            await trio.sleep(fault.duration_s)
            node.signal(signal.SIGCONT)
            self.paused.discard(target)
        elif fault.kind == "partition":
            self.mesh.isolate(target, fault.mode)
            await trio.sleep(fault.duration_s)
            self.mesh.heal_all()
        elif fault.kind == "slow":
            self.mesh.slow(target, int(fault.mode) / 1000)
            await trio.sleep(fault.duration_s)
            self.mesh.heal_all()
        elif fault.kind == "byzantine":
            self.set_byzantine(node, fault.mode)
            await trio.sleep(fault.duration_s)
            self.set_byzantine(node, "")
        after = [h for h in await self.heights(others) if h is not None]
        episode.progress = max(after, default=0) - before
        episode.catch_up_s = await self.wait_caught_up(node, max(after, default=0))

    async def wait_caught_up(self, node: NodeProc, target_height: int) -> float | None:
        began = trio.current_time()
        with trio.move_on_after(CATCH_UP_S):
            while True:
                h = await self.height(node)
                if h is not None and h >= target_height:
                    return trio.current_time() - began
                await trio.sleep(0.25)
        self.log(f"!! node-{node.index} did not reach height {target_height} in {CATCH_UP_S}s")
        return None

    async def run_faults(self) -> None:
        for fault in plan(self.o.seed, self.o.duration_s, N, self.o.byzantine, self.o.kinds):
            await trio.sleep(fault.gap_s)
            await self.inject(fault)

    # -- the whole run -------------------------------------------------------------------

    async def heal_everything(self) -> None:
        self.mesh.heal_all()
        for node in self.net.nodes:
            if node.index in self.paused:
                node.signal(signal.SIGCONT)
                self.paused.discard(node.index)
            if node.proc is None or node.proc.poll() is not None:
                self.start(node)

    async def converge(self) -> int | None:
        """The height every node reached with the same block hash; None if they did not
        within CONVERGE_S."""
        with trio.move_on_after(CONVERGE_S):
            while True:
                hs = await self.heights(self.net.nodes)
                if all(h is not None for h in hs):
                    top = min(h for h in hs if h is not None)
                    hashes = set()
                    for node in self.net.nodes:
                        try:
                            hashes.add((await self.get(node, f"/v1/blocks/{top}"))["hash"])
                        except (OSError, HTTPException, HttpError):
                            hashes.add(None)
                    if len(hashes) == 1 and None not in hashes:
                        return top
                await trio.sleep(0.5)
        return None

    async def main(self) -> tuple[list[Check], int]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch_processes)
            load_done = trio.Event()

            async def load_task() -> None:
                try:
                    await self.load.run()
                finally:
                    load_done.set()

            nursery.start_soon(load_task)
            await self.run_faults()
            self.log(f"faults done at t={self.now():.1f}s; healing, draining the load")
            self.load.stop.set()
            await self.heal_everything()
            self.load.drain_deadline = trio.current_time() + DRAIN_S
            began = trio.current_time()
            with trio.move_on_after(DRAIN_S + 15):
                await load_done.wait()
            self.log(f"load drained in {trio.current_time() - began:.1f}s")
            began = trio.current_time()
            converged = await self.converge()
            self.log(f"converge took {trio.current_time() - began:.1f}s")
            hs = [h or 0 for h in await self.heights(self.net.nodes)]
            height = converged if converged is not None else min(hs)
            self.log(f"heights {hs}, checking up to {height}")
            found = [
                Check(
                    "all nodes converged after healing",
                    converged is not None,
                    f"same block at height {height} on every node"
                    if converged is not None
                    else f"heights {hs} not converged within {CONVERGE_S:g}s",
                )
            ]
            self.misbehaviour = await trio.to_thread.run_sync(self.misbehaviour_seen)
            started = trio.current_time()
            found += await trio.to_thread.run_sync(checks.run_all, self.net, self.load, height)
            self.log(f"checks took {trio.current_time() - started:.1f}s")
            nursery.cancel_scope.cancel()
        found.append(self.check_processes())
        return found, height

    def misbehaviour_seen(self) -> dict[str, int]:
        """Peer misbehaviour the nodes counted (alps_peer_misbehaviour), summed by code."""
        seen: dict[str, int] = {}
        for node in self.net.nodes:
            try:
                text = http_text(node.api + "/metrics")
            except OSError as exc:
                self.log(f"!! node-{node.index} /metrics unreadable: {exc!r}")
                continue
            for code, count in MISBEHAVIOUR.findall(text):
                seen[code] = seen.get(code, 0) + int(float(count))
        return dict(sorted(seen.items()))

    def check_processes(self) -> Check:
        problems = list(self.crashes)
        self.expected_down.update(n.index for n in self.net.nodes)
        for node in self.net.nodes:
            try:
                code = node.stop(timeout=30)
            except Exception as exc:  # a node that ignores SIGTERM is a finding, not a crash here
                problems.append(f"node-{node.index} did not stop on SIGTERM: {exc!r}")
                continue
            if code != 0:
                problems.append(f"node-{node.index} exited {code} on SIGTERM")
        for node in self.net.nodes:
            text = node.log_text()
            if "Traceback" in text:
                problems.append(f"node-{node.index} logged a traceback: {crash_summary(text)}")
        detail = f"{N} nodes never died unless killed; all exited 0 on SIGTERM; no traceback"
        return Check("no node crashed", not problems, "\n".join(problems) or detail)


async def run(options: Options, workdir: pathlib.Path, log: Callable[[str], None]) -> Report:
    """One chaos run. SIGTERM/SIGHUP end it early (every node is still killed)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_signal, nursery.cancel_scope)
        report = await _run(options, workdir, log)
        nursery.cancel_scope.cancel()
    return report


async def _cancel_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for _ in signals:
            scope.cancel()
            raise KeyboardInterrupt("chaos run stopped by a signal")


async def _run(options: Options, workdir: pathlib.Path, log: Callable[[str], None]) -> Report:
    started = time.monotonic()
    net = await trio.to_thread.run_sync(
        lambda: Testnet(workdir, N, options.tick_ms, options.timeout_ticks)
    )
    try:
        async with open_mesh([libp2p_port(n) for n in net.nodes]) as mesh:
            wire_through(net, mesh)
            controller = Controller(options, net, mesh, log)
            for node in net.nodes:
                controller.start(node)
            with trio.fail_after(START_S):
                for node in net.nodes:
                    while await controller.height(node) is None:
                        await trio.sleep(0.2)
            controller.t0 = trio.current_time()
            log(f"cluster up in {workdir}; load + faults for {options.duration_s:g}s")
            found, height = await controller.main()
            stats = mesh.stats()
        return Report(
            options,
            controller.episodes,
            found,
            height,
            dataclasses.asdict(controller.load.stats),
            dataclasses.asdict(stats),
            controller.misbehaviour,
            time.monotonic() - started,
            workdir,
        )
    finally:
        for node in net.nodes:
            node.kill()


def stderr_log(line: str) -> None:
    print(f"[chaos] {line}", file=sys.stderr, flush=True)
