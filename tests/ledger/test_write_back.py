"""Write-back of vouched records (`Ctx.put_vouched`, `state.Pending`): a record written
unencoded is read back typed as it is, and as bytes exactly as if it had been `put`;
a rejected transaction's pending writes vanish with its overlay; `changes()` sees final
bytes. The accrual is the one writer that vouches: it does so only when nothing about its
encoding can differ (same keys, counts in range), and otherwise encodes at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.ledger import codec
from node.ledger.context import BlockInfo, BlockReads, Ctx, RecordCache, ScanOverlay
from node.ledger.devices import MAX_WRITE_BACK_ITEMS, _same_keys_in_range
from node.ledger.model import Accrual, Device
from node.ledger.state import Overlay, Pending
from node.ledger.usage import MAX_REGISTER
from tests.ledger.harness import CHAIN
from tests.ledger.identical import assert_identical
from tests.ledger.test_exec_reference import DEVICES, _setup
from tests.ledger.test_record_cache import assert_same_result

ACCRUAL = Accrual({"DE": {"cam-1": {"hours": 3, "units": 7}}}, 2)


class Committed(dict[bytes, bytes]):
    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted((k, v) for k, v in self.items() if k.startswith(prefix)))


def _ctx(committed: Committed, records: RecordCache | None) -> tuple[ScanOverlay, Ctx]:
    overlay = ScanOverlay(BlockReads(committed))
    return overlay, Ctx(overlay.child(), BlockInfo(CHAIN, 1, 0), b"", records=records)


def test_a_pending_record_reads_back_typed_as_itself_and_as_the_bytes_put_would_write() -> None:
    overlay, ctx = _ctx(Committed({b"accrual/x/p": b"old", b"accrual/x/q": b"q"}), RecordCache())
    ctx.put_vouched(b"accrual/x/p", ACCRUAL)
    pending = ctx.state.lookup(b"accrual/x/p")
    assert isinstance(pending, Pending) and pending._raw is None  # nothing encoded yet
    assert ctx.get(b"accrual/x/p", Accrual) is ACCRUAL
    assert ctx.state.get(b"accrual/x/p") == ACCRUAL.encode() == pending._raw
    assert ctx.get_value(b"accrual/x/p") == codec.decode(ACCRUAL.encode())
    assert list(ctx.scan(b"accrual/x/")) == [
        (b"accrual/x/p", ACCRUAL.encode()),
        (b"accrual/x/q", b"q"),
    ]
    ctx.state.merge_into_parent()
    assert overlay.changes() == {b"accrual/x/p": (b"old", ACCRUAL.encode())}


def test_a_rejected_transactions_pending_write_changes_nothing() -> None:
    overlay, ctx = _ctx(Committed({b"k": ACCRUAL.encode()}), RecordCache())
    ctx.put_vouched(b"k", Accrual({}, 9))  # the transaction is then rejected: not merged
    assert overlay.get(b"k") == ACCRUAL.encode()
    assert overlay.changes() == {}


def test_the_last_pending_version_is_the_one_encoded() -> None:
    overlay, ctx = _ctx(Committed({}), RecordCache())
    versions = [Accrual({"DE": {"c": {"units": n}}}, n) for n in range(1, 4)]
    for version in versions:
        child = ctx.state.child()
        Ctx(child, ctx.block, b"", records=ctx.records).put_vouched(b"k", version)
        child.merge_into_parent()
    pendings = [ctx.state.lookup(b"k")]
    ctx.state.merge_into_parent()
    assert overlay.changes() == {b"k": (None, versions[-1].encode())}
    assert isinstance(pendings[0], Pending) and pendings[0].value is versions[-1]


def test_without_a_record_cache_put_vouched_is_put() -> None:
    _, ctx = _ctx(Committed({}), None)
    ctx.put_vouched(b"k", ACCRUAL)
    assert ctx.state.lookup(b"k") == ACCRUAL.encode()


def test_a_typed_read_of_another_class_decodes_the_bytes() -> None:
    _, ctx = _ctx(Committed({}), RecordCache())
    device = Device(bytes(32), bytes(32), "cam-1", False, 1, bytes(32), {"units": 1}, 0)
    ctx.put_vouched(b"k", device)
    with pytest.raises(Exception) as info:
        ctx.get(b"k", Accrual)  # what decoding the bytes as an Accrual does
    assert getattr(info.value, "code", None) == "fields"


def test_put_pending_keeps_the_key_limit() -> None:
    with pytest.raises(Exception) as info:
        Overlay({}).put_pending(b"k" * 300, Pending(ACCRUAL))
    assert getattr(info.value, "code", None) == "state_limit"


@pytest.mark.parametrize(
    ("bucket", "added", "vouched"),
    [
        ({"hours": 4, "units": 9}, {"hours": 1, "units": 2}, True),
        ({"hours": 3, "units": 7, "zz": 1}, {"zz": 1}, False),  # a new metric: new key
        ({"hours": 3, "units": codec.INT_MAX + 1}, {"units": 1}, False),  # out of range
    ],
)
def test_the_accrual_vouches_only_for_the_same_keys_in_range(
    bucket: dict[str, int], added: dict[str, int], vouched: bool
) -> None:
    old = {"hours": 3, "units": 7}
    quantities = {"DE": {"cam-1": bucket}}
    assert _same_keys_in_range(old, bucket, added, quantities) == vouched


def test_the_accrual_vouches_only_for_a_small_map() -> None:
    old = {"units": 7}
    quantities = {"DE": {f"c{i}": {"units": 1} for i in range(MAX_WRITE_BACK_ITEMS // 2)}}
    assert not _same_keys_in_range(old, {"units": 8}, {"units": 1}, quantities)


def test_many_reports_into_one_accrual_equal_the_reference_and_overflow_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One block of reports into one accrual: written back while the counts stay in range;
    the two that would push the units past 2**64 - 1 are encoded at once and rejected
    with int_range, as on the reference path."""
    from node.ledger.app import execute_block
    from tests.ledger.test_exec_reference import KVReader

    h = _setup()
    for device in DEVICES:
        h.usage(device, "cam-1", "DE", {"units": 5, "hours": 1})
    h.ok()
    for device in DEVICES[:3]:
        h.usage(device, "cam-1", "DE", {"units": 6, "hours": 2})
    h.usage(DEVICES[3], "cam-1", "DE", {"units": MAX_REGISTER, "hours": 2})
    h.usage(DEVICES[0], "cam-1", "DE", {"units": MAX_REGISTER, "hours": 3})
    h.usage(DEVICES[1], "cam-1", "DE", {"units": MAX_REGISTER, "hours": 3})
    info = BlockInfo(CHAIN, h.store.next_height, h.time_ms + 1000)
    acc = h.store.accumulator()
    txs, h.queue = h.queue, []
    reference = execute_block(KVReader(h.store), acc, info, txs, share_records=False)
    pending: list[bytes] = []
    put_pending = Overlay.put_pending
    monkeypatch.setattr(
        Overlay, "put_pending", lambda self, k, v: (pending.append(k), put_pending(self, k, v))
    )
    optimised = execute_block(h.store, acc, info, txs, record_cache=RecordCache())
    assert len(pending) == 2 * 4  # two licences cover DE: 4 written back each
    assert_same_result(optimised, reference)
    codes = [r.code for r in optimised.receipts[: len(txs)]]
    assert codes == ["ok"] * 4 + ["int_range"] * 2  # the units pass 2**64 - 1 at the 5th
    assert_identical(optimised.changes, reference.changes)
