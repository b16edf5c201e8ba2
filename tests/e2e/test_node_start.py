"""`alps node start` when one of its ports is taken: one clear error line and exit 1,
no traceback, and the store untouched (a node restarted next to a stray process, or a
second node started with the same config)."""

from __future__ import annotations

import socket

import pytest

from node.config import load_config
from tests.e2e.procs import Testnet, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("which", ["p2p", "api", "admin"])
def test_a_taken_port_is_one_error_line_and_exit_1(net: Testnet, which: str) -> None:
    port = load_config(net.nodes[0].home).listen_ports[which]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        node = net.nodes[0]
        node.start()
        assert node.proc is not None
        assert node.proc.wait(60) == 1
    log = node.log_text()
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, log[-3000:]
    assert errors[0].startswith("Error: cannot listen on one of its addresses"), errors[0]
    assert str(port) in errors[0]
    reason = "libp2p could not listen" if which == "p2p" else "Address already in use"
    assert reason in errors[0], errors[0]

    # nothing was harmed: with the port free the same node starts and serves
    node.start()
    wait_for("the node's API", lambda: node.get("/health")["ok"], 30)
    assert node.height() == 0
