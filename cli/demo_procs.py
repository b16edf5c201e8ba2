"""Child processes, ports, the directory lock and a small HTTP client for `alps demo`.

Rules kept here: every child runs in its own session (process group), so a Ctrl-C in the
terminal reaches only the demo, which then stops the children in order: SIGTERM to each
group, a bounded wait, SIGKILL to whatever is left. Nothing is signalled that this
process did not start. Every wait is bounded; every socket is on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import click


class DemoError(click.ClickException):
    """Anything that stops the demo; shown as one line by the `alps` group."""


# -- HTTP ---------------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, url: str, status: int, body: bytes) -> None:
        super().__init__(f"{url}: HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


def http_get(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON answer; HttpError for a non-2xx status, OSError if unreachable."""
    return _request(urllib.request.Request(url), timeout)


def http_post(url: str, data: bytes, timeout: float = 5.0) -> Any:
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/msgpack")
    return _request(req, timeout)


def http_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read()).decode("utf-8", "replace")


def _request(req: urllib.request.Request, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise HttpError(req.full_url, exc.code, exc.read()) from None
    return json.loads(body) if body else None


def wait_until(
    what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 0.25
) -> None:
    """Poll `check` until it is true; DemoError after `timeout_s` (errors count as false)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            if check():
                return
        except (OSError, HttpError, ValueError) as exc:
            last = f" (last error: {exc})"
        if time.monotonic() >= deadline:
            raise DemoError(f"timed out after {timeout_s:.0f}s waiting for {what}{last}")
        time.sleep(every_s)


# -- ports -------------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:port now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux; else IANA's)."""
    try:
        low, high = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49_152, 65_535


LOWEST_RANDOM_PORT = 10_000


def free_block(count: int, preferred: int | None, seed: int, avoid: range = range(0)) -> int:
    """`preferred` if `count` ports from it are free, else a random free block below the
    ephemeral range, never overlapping `avoid`. A listening port inside the ephemeral
    range can be taken by any outgoing connection (an agent's or a peer's) while its node
    is down, and the node then cannot restart ("address already in use")."""

    def usable(base: int) -> bool:
        ports = range(base, base + count)
        return not (ports.start < avoid.stop and avoid.start < ports.stop) and all(
            port_free(p) for p in ports
        )

    if preferred is not None and usable(preferred):
        return preferred
    rng = random.Random(seed)
    top = max(ephemeral_port_range()[0] - count, LOWEST_RANDOM_PORT + 1)
    for _ in range(200):
        base = rng.randrange(LOWEST_RANDOM_PORT, top)
        if usable(base):
            return base
    raise DemoError(f"found no {count} free consecutive ports on 127.0.0.1")


# -- the directory lock ------------------------------------------------------------------------


@contextlib.contextmanager
def locked(directory: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive lock on DIR/demo.lock: one demo per directory."""
    path = directory / "demo.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise DemoError(
                f"another alps demo (pid {holder}) is running on {directory}; stop it first"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


# -- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: pathlib.Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)  # its own session: pgid == pid

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class StopRequests:
    """The first SIGINT/SIGTERM becomes a KeyboardInterrupt (inside `deferred()`, once the
    section ends, so a child is never started untracked); later ones only say to wait,
    so nothing interrupts the stopping itself (which is bounded)."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending = False
        self.stopping = False

    def handler(self, signum: int, frame: object) -> None:
        if self.stopping:
            click.echo("stopping, please wait ...", err=True)
            return
        self.stopping = True
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM (even if SIGINT was ignored, as a shell does for
        background jobs) until the block ends."""
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.signal(s, self.handler) for s in signals}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending:
                self.pending = False
                raise KeyboardInterrupt


@dataclass
class Supervisor:
    """The children of this demo, started in their own sessions, stopped in order."""

    cwd: pathlib.Path
    env: dict[str, str]
    stops: StopRequests = field(default_factory=StopRequests)
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], log_path: pathlib.Path) -> Child:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes]
        with self.stops.deferred(), open(log_path, "ab") as log:
            popen = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            child = Child(name, popen, log_path)
            self.children.append(child)
        return child

    def stop(self, group: list[Child], timeout_s: float) -> list[str]:
        """SIGTERM each, wait up to `timeout_s` in all, SIGKILL the rest; names killed."""
        for child in group:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in group:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(max(0.0, deadline - time.monotonic()))
        killed = []
        for child in group:
            if child.alive():
                child.signal_group(signal.SIGKILL)
                killed.append(child.name)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(10)  # reap (bounded): a SIGKILLed process dies at once
        return killed

    def kill_all(self) -> None:
        """Last resort on the way out: SIGKILL every group still alive."""
        for child in self.children:
            child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(10)
