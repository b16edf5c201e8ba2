"""Structured logs carry their fields in both formats; the node exports its metrics."""

from __future__ import annotations

import io
import json
import logging
import pathlib

import pytest
import trio

from node.runtime.logs import setup_logging
from tests.runtime.cluster import Cluster, deposit


@pytest.fixture(autouse=True)
def restore_root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_view_seq_and_peer() -> None:
    out = io.StringIO()
    setup_logging("json", "info", stream=out)
    logging.getLogger("alps.node").info("committed", extra={"view": 2, "seq": 17, "peer": "ab"})
    line = json.loads(out.getvalue().strip())
    assert (line["msg"], line["view"], line["seq"], line["peer"]) == ("committed", 2, 17, "ab")
    assert line["level"] == "info" and line["ts"].endswith("Z")


def test_text_lines_carry_fields_and_libp2p_warnings_reach_our_handler() -> None:
    out = io.StringIO()
    setup_logging("text", "info", stream=out)
    lib = logging.getLogger("libp2p.swarm")
    logging.getLogger("libp2p").propagate = False  # what libp2p does to itself on import
    setup_logging("text", "info", stream=out)
    logging.getLogger("alps.node").warning("view changed", extra={"view": 3})
    lib.warning("dial failed")
    text = out.getvalue()
    assert "view changed view=3" in text and "dial failed" in text


@pytest.mark.trio
async def test_metrics_export_height_view_peers_mempool_and_latency(tmp_path: pathlib.Path) -> None:
    cluster = Cluster(tmp_path)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(4):
                await cluster.start(nursery, i)
            node = cluster.nodes[0]
            tx = deposit(cluster.user, 1)
            await node.submit([tx])
            height = await node.wait_committed(tx.tx_id, 20)
            assert height is not None
            text = node.metrics_text().decode()
            assert f"alps_height {float(height)}" in text
            assert "alps_view 0.0" in text
            assert "alps_peers_connected 3.0" in text
            assert "alps_mempool_size 0.0" in text
            assert "alps_commit_latency_seconds_count 1.0" in text
            nursery.cancel_scope.cancel()
