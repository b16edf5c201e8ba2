"""The durable outbox (device_agent/outbox.py): seqs never repeat, sent rows are never
rewritten, a full outbox coalesces losslessly, damage is reported, never dropped."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_agent.errors import OutboxCorrupt
from device_agent.outbox import Outbox, open_readonly, read_status
from node.ledger.usage import GENESIS_PREV, usage_report_of
from tests.device_agent.helpers import CHAIN, DEVICE, LICENSEE, build, outbox


def test_seq_and_prev_hash_chain_and_survive_reopen(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    assert box.record({"units": 1}, build).seq == 1
    assert box.record({"units": 2}, build).seq == 2
    box.close()
    box = outbox(tmp_path)
    assert box.record({"units": 3}, build).seq == 3
    rows = box.oldest(10)
    assert [r.seq for r in rows] == [1, 2, 3]
    prevs = [usage_report_of(r.tx).prev_hash for r in rows]
    assert prevs == [GENESIS_PREV, rows[0].tx_id, rows[1].tx_id]
    assert box.registers == {"units": 3}


def test_committed_rows_leave_and_seq_keeps_counting(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    for i in range(1, 4):
        box.record({"units": i}, build)
    box.mark_sent([1, 2, 3])
    assert box.committed([1, 2, 3]) == 3
    assert box.depth() == 0
    assert box.record({"units": 9}, build).seq == 4  # never reuses a committed seq
    assert box.status()["last_committed_seq"] == 3


def test_full_outbox_coalesces_unsent_rows_keeping_the_final_registers(
    tmp_path: pathlib.Path,
) -> None:
    box = outbox(tmp_path, records_max=4)
    for i in range(1, 5):
        box.record({"units": i}, build)
    box.mark_sent([1, 2])
    sent_before = {r.seq: r.tx_id for r in box.oldest(2)}
    taken = box.record({"units": 5, "hours": 1}, build)
    # rows 3 and 4 (never sent) are replaced by one report at seq 3
    assert (taken.seq, taken.replaced) == (3, 2)
    rows = box.oldest(10)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert {r.seq: r.tx_id for r in rows[:2]} == sent_before  # sent rows untouched
    last = usage_report_of(rows[2].tx)
    assert last.registers == {"units": 5, "hours": 1}
    assert last.prev_hash == rows[1].tx_id
    assert box.next_seq == 4
    for i in range(6, 50):  # stays bounded however long the node is away
        box.record({"units": i, "hours": 1}, build)
        assert box.depth() <= 4
    assert usage_report_of(box.oldest(10)[-1].tx).registers["units"] == 49


def test_full_outbox_of_sent_rows_defers_and_keeps_registers(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path, records_max=2)
    box.record({"units": 1}, build)
    box.record({"units": 2}, build)
    box.mark_sent([1, 2])
    taken = box.record({"units": 7}, build)
    assert taken.deferred and box.deferred and box.depth() == 2
    box.close()
    box = outbox(tmp_path, records_max=2)
    assert box.registers == {"units": 7}  # durable even though no report was taken
    box.committed([1])
    assert box.record(box.registers, build).seq == 3
    assert not box.deferred


def test_buried_rows_are_kept_and_counted(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    box.record({"units": 1}, build)
    box.bury(1, "bad_signature", "nope")
    assert box.depth() == 0 and box.dead_rows() == [(1, "bad_signature", "nope")]
    assert box.status()["dead"] == 1


def test_garbage_file_is_a_clear_error_and_is_left_alone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxCorrupt) as info:
        Outbox(path, DEVICE.public_key, CHAIN, 10)
    assert info.value.code == "unreadable"
    assert path.read_bytes() == b"this is not a database" * 100


def test_damaged_row_is_reported_not_skipped(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    box.record({"units": 1}, build)
    box.record({"units": 2}, build)
    box.close()
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    db.execute("UPDATE outbox SET tx = ? WHERE seq = 2", (b"\x93\x01\x02",))
    db.commit()
    db.close()
    box = outbox(tmp_path)
    with pytest.raises(OutboxCorrupt, match="seq 2"):
        box.oldest(10)


def test_outbox_of_another_device_or_chain_is_refused(tmp_path: pathlib.Path) -> None:
    outbox(tmp_path).close()
    with pytest.raises(OutboxCorrupt, match="another device"):
        Outbox(tmp_path / "outbox.sqlite", LICENSEE.public_key, CHAIN, 10)
    with pytest.raises(OutboxCorrupt, match="chain"):
        Outbox(tmp_path / "outbox.sqlite", DEVICE.public_key, "other-chain", 10)


def test_seq_counter_behind_rows_is_corruption(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    box.record({"units": 1}, build)
    box.close()
    db = sqlite3.connect(tmp_path / "outbox.sqlite")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'next_seq'")
    db.commit()
    db.close()
    with pytest.raises(OutboxCorrupt, match="next_seq"):
        outbox(tmp_path)


def test_adopt_chain_head_only_while_nothing_was_sent(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    box.record({"units": 3}, build)  # taken offline after the state was wiped
    assert box.adopt_chain_head(41, b"\x09" * 32)
    assert box.depth() == 0 and box.deferred and box.registers == {"units": 3}
    taken = box.record(box.registers, build)
    assert taken.seq == 42
    assert usage_report_of(box.oldest(1)[0].tx).prev_hash == b"\x09" * 32
    box.mark_sent([42])
    assert not box.adopt_chain_head(100, b"\x01" * 32)  # seq 42 may be on a node
    assert not box.adopt_chain_head(10, b"\x01" * 32)  # the chain is behind: nothing to do


def test_status_reads_while_the_owner_has_it_open(tmp_path: pathlib.Path) -> None:
    box = outbox(tmp_path)
    box.record({"units": 1}, build)
    box.set_status(last_error="x", endpoints={"http://a": "ok"})
    db = open_readonly(tmp_path / "outbox.sqlite")
    status = read_status(db)
    db.close()
    assert status["queue_depth"] == 1 and status["next_seq"] == 2
    assert status["last_error"] == "x" and status["endpoints"] == {"http://a": "ok"}


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["record", "send", "commit", "reopen"]), st.integers(1, 4)),
        max_size=40,
    ),
    records_max=st.integers(2, 5),
)
def test_outbox_invariants_under_any_interleaving(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]], records_max: int
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    box = outbox(tmp, records_max)
    units = 0
    handed: dict[int, bytes] = {}  # seq -> tx id of every row a node may have seen
    committed: dict[int, bytes] = {}
    for op, k in ops:
        if op == "record":
            units += k
            box.record({"units": units}, build)
        elif op == "send":
            rows = box.oldest(k)
            box.mark_sent([r.seq for r in rows])
            handed.update({r.seq: r.tx_id for r in rows})
        elif op == "commit":
            rows = [r for r in box.oldest(k) if r.sent]
            box.committed([r.seq for r in rows])
            committed.update({r.seq: r.tx_id for r in rows})
        else:
            box.close()
            box = outbox(tmp, records_max)
        rows = box.oldest(100)
        assert len(rows) <= records_max
        sent = [r.sent for r in rows]
        assert sent == sorted(sent, reverse=True)  # sent rows are a prefix
        for r in rows:
            if r.seq in handed:
                assert r.tx_id == handed[r.seq]  # never rewritten once handed out
        seqs = sorted([*committed, *(r.seq for r in rows)])
        assert seqs == list(range(1, box.next_seq))  # no gap, no reuse
        chain = {**committed, **{r.seq: r.tx_id for r in rows}}
        for r in rows:
            prev = usage_report_of(r.tx).prev_hash
            assert prev == chain.get(r.seq - 1, GENESIS_PREV)
        if rows and not box.deferred and units:
            assert usage_report_of(rows[-1].tx).registers == {"units": units}
    box.close()
