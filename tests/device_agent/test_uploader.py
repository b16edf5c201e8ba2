"""Uploading (device_agent/uploader.py) against fake nodes speaking docs/api.md: the
enrolment gate, confirmation, failover, bounded full-jitter backoff, 429/5xx/garbage/
timeouts, rejections that are kept, and a node that goes away and comes back.

The uploader returns delays instead of sleeping, so these tests step it without waiting."""

from __future__ import annotations

import io
import json
import pathlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agent.log import Logger
from device_agent.nodeclient import NodeClient
from device_agent.outbox import Outbox
from device_agent.uploader import Uploader, UploadSettings, backoff_delay_s
from tests.device_agent.fakenode import FakeLedger, FakeNode
from tests.device_agent.helpers import DEVICE, build, outbox

SETTINGS = UploadSettings(
    batch_size_max=10, backoff_base_s=0.5, backoff_max_s=8.0, confirm_lookups_max=3
)


class Rig:
    def __init__(self, tmp: pathlib.Path, nodes: int = 1, mode: str = "immediate") -> None:
        self.ledger = FakeLedger(commit_mode=mode)
        self.nodes = [FakeNode(self.ledger) for _ in range(nodes)]
        self.box: Outbox = outbox(tmp, records_max=50)
        self.logs = io.StringIO()
        clients = [NodeClient(n.url, timeout_s=0.3) for n in self.nodes]
        self.up = Uploader(
            self.box, clients, DEVICE.public_key, SETTINGS, random.Random(7), Logger(self.logs)
        )

    def record(self, n: int) -> None:
        start = self.box.next_seq
        for i in range(start, start + n):
            self.box.record({"units": i * 10}, build)

    def drive(self, steps: int = 30) -> list[float]:
        delays = []
        for _ in range(steps):
            delays.append(self.up.step())
            if self.box.depth() == 0 and self.up.enrolled:
                break
        return delays

    def events(self) -> list[str]:
        return [json.loads(line)["event"] for line in self.logs.getvalue().splitlines()]

    def close(self) -> None:
        for n in self.nodes:
            n.stop()
        self.box.close()


@pytest.fixture
def rig(tmp_path: pathlib.Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def committed_seqs(r: Rig) -> list[int]:
    return [seq for seq, _ in r.ledger.reports(DEVICE.public_key)]


def test_nothing_is_uploaded_before_enrolment(rig: Rig) -> None:
    rig.record(3)
    assert rig.up.step() == SETTINGS.enrolment_check_s
    assert "enrolment_missing" in rig.events()
    assert rig.ledger.seen == {} and rig.box.depth() == 3
    rig.ledger.enrol(DEVICE.public_key)
    rig.drive()
    assert committed_seqs(rig) == [1, 2, 3] and rig.box.depth() == 0
    assert rig.box.status()["last_committed_seq"] == 3


def test_batches_of_at_most_batch_size(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    rig.record(25)
    rig.drive()
    assert committed_seqs(rig) == list(range(1, 26))
    assert rig.nodes[0].requests == 1 + 3  # device lookup + 3 batches


def test_pending_rows_are_confirmed_by_lookup(tmp_path: pathlib.Path) -> None:
    r = Rig(tmp_path, mode="on_lookup")
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.record(4)
        assert r.up.step() == SETTINGS.confirm_interval_s  # enrolment seen, POST: all pending
        assert r.box.depth() == 4 and all(row.sent for row in r.box.oldest(10))
        r.drive()
        assert committed_seqs(r) == [1, 2, 3, 4] and r.box.depth() == 0
    finally:
        r.close()


def test_forgotten_pending_rows_are_resubmitted_with_the_same_content(
    tmp_path: pathlib.Path,
) -> None:
    r = Rig(tmp_path, mode="manual")
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.record(2)
        r.up.step()  # POSTed, pending
        r.up.step()  # looked up, still pending
        with r.ledger.lock:
            r.ledger.pending.clear()  # the node restarted and lost its mempool
        r.ledger.commit_mode = "immediate"
        r.drive()
        assert committed_seqs(r) == [1, 2]
        assert all(len(ids) == 1 for ids in r.ledger.seen.values())
    finally:
        r.close()


def test_failover_to_the_second_node(tmp_path: pathlib.Path) -> None:
    r = Rig(tmp_path, nodes=2)
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.nodes[0].stop()
        r.record(5)
        delays = r.drive()
        assert committed_seqs(r) == [1, 2, 3, 4, 5]
        assert delays[0] == 0.0  # the other endpoint is tried at once
        assert "node_unavailable" in r.events() and "node_recovered" in r.events()
        assert r.box.status()["endpoints"][r.nodes[0].url].startswith("unreachable")
        assert r.box.status()["endpoints"][r.nodes[1].url] == "ok"
    finally:
        r.close()


@pytest.mark.parametrize("fault", ["500", "garbage", "wrong_ids", "hang", "drop"])
def test_a_failing_node_is_failed_over_and_logged(tmp_path: pathlib.Path, fault: str) -> None:
    r = Rig(tmp_path, nodes=2)
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.nodes[0].fault = fault
        r.nodes[0].hang_s = 0.6
        r.record(3)
        r.drive()
        assert committed_seqs(r) == [1, 2, 3]
        expected = "node_garbage" if fault in ("garbage", "wrong_ids") else "node_unavailable"
        assert expected in r.events()
        assert r.box.status()["last_error"]
    finally:
        r.close()


def test_busy_node_is_retried_after_its_retry_after(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    rig.record(2)
    rig.nodes[0].fault = "429"
    delays = [rig.up.step() for _ in range(6)]
    assert all(0 <= d <= SETTINGS.backoff_max_s for d in delays)
    assert rig.box.depth() == 2 and "node_busy" in rig.events()
    rig.nodes[0].fault = None
    rig.drive()
    assert committed_seqs(rig) == [1, 2]


def test_backoff_grows_but_stays_bounded_while_all_nodes_are_down(
    tmp_path: pathlib.Path,
) -> None:
    r = Rig(tmp_path, nodes=2)
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.record(1)
        for n in r.nodes:
            n.stop()
        delays = [r.up.step() for _ in range(40)]  # a long time offline
        assert all(0 <= d <= SETTINGS.backoff_max_s for d in delays)
        assert delays[0::2] == [0.0] * 20  # the second endpoint is always tried at once
        assert max(delays) > SETTINGS.backoff_base_s  # it did back off
        for n in r.nodes:
            n.start()  # back, on the same ports
        r.drive()
        assert committed_seqs(r) == [1]
    finally:
        r.close()


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=10),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_full_jitter_backoff_is_within_its_ceiling(attempt: int, base: float, seed: int) -> None:
    cap = 300.0
    delay = backoff_delay_s(attempt, base, max(cap, base), random.Random(seed))
    assert 0 <= delay <= min(max(cap, base), base * 2.0 ** min(attempt, 60))


def test_backoff_is_reproducible_with_a_seed() -> None:
    def seq(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff_delay_s(i, 0.5, 60, rng) for i in range(10)]

    assert seq(3) == seq(3) and seq(3) != seq(4)


def test_rejected_report_is_kept_in_the_dead_table(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    rig.record(1)
    rig.drive()
    rig.record(1)
    with rig.ledger.lock:
        rig.ledger.devices[DEVICE.public_key].last_seq = 5  # e.g. a cloned key reported
    rig.drive()
    assert rig.box.depth() == 0 and rig.box.dead_rows()[0][:2] == (2, "replay")
    assert "report_rejected" in rig.events()


def test_revoked_device_stops_uploading(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    rig.record(1)
    rig.drive()
    with rig.ledger.lock:
        rig.ledger.devices[DEVICE.public_key].revoked = True
    rig.record(1)
    rig.drive(steps=5)
    assert rig.box.depth() == 1 and not rig.up.enrolled
    assert "upload_refused" in rig.events() and "enrolment_missing" in rig.events()


def test_clock_skew_is_logged_once(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    rig.nodes[0].skew_s = 3600.0
    rig.record(1)
    rig.drive()
    rig.record(1)
    rig.drive()
    assert rig.events().count("clock_skew") == 1


def test_fresh_outbox_continues_after_the_chain_head(rig: Rig) -> None:
    rig.ledger.enrol(DEVICE.public_key)
    with rig.ledger.lock:
        rig.ledger.devices[DEVICE.public_key].last_seq = 9
        rig.ledger.devices[DEVICE.public_key].last_hash = b"\x05" * 32
    rig.record(2)  # taken before the node was reachable
    rig.up.step()
    assert "adopted_chain_head" in rig.events() and rig.box.deferred
    rig.record(1)
    assert rig.box.oldest(1)[0].seq == 10


def test_rows_count_as_sent_only_once_a_node_could_have_received_them(
    tmp_path: pathlib.Path,
) -> None:
    r = Rig(tmp_path)
    try:
        r.ledger.enrol(DEVICE.public_key)
        r.record(1)
        r.up.step()
        r.record(2)
        r.nodes[0].stop()
        r.up.step()  # connection refused: nothing left the device
        assert [row.sent for row in r.box.oldest(5)] == [False, False]
        r.nodes[0].start()
        r.nodes[0].fault = "500"  # the node read the request, then failed: it may have it
        r.up.step()
        assert [row.sent for row in r.box.oldest(5)] == [True, True]
    finally:
        r.close()
