"""The real-process fixtures: a 4-validator testnet killed after each test, whose nodes'
log tails are attached to the report of a test that failed (a node that crashed or never
came back says why there, not only as "connection refused")."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.e2e.procs import Testnet

LOG_TAIL = 3000


@pytest.fixture
def net(tmp_path: pathlib.Path) -> Iterator[Testnet]:
    testnet = Testnet(tmp_path / "net")
    try:
        yield testnet
    finally:
        testnet.kill_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    testnet = getattr(item, "funcargs", {}).get("net")
    if report.failed and call.when == "call" and isinstance(testnet, Testnet):
        for node in testnet.nodes:
            if node.proc is None:
                state = "never started"
            else:
                state = "running" if node.alive() else f"exited {node.proc.poll()}"
            report.sections.append(
                (f"node {node.index} log tail ({state})", node.log_text()[-LOG_TAIL:])
            )
    return report
