"""Sharing decoded records changes nothing: every ledger scenario below is executed block
by block both with a RecordCache kept across the scenario's blocks (seeded by every record
written, as a node's shell keeps one) and with fresh decoding, and the two results
(receipts, state changes, digest, roots, validator set) must be identical: equal, of the
same types, with every map in the same order, and with the same encodings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from node.ledger import app, codec
from node.ledger.app import BlockResult
from node.ledger.block import Receipt
from node.ledger.context import (
    BlockInfo,
    BlockReads,
    Ctx,
    RecordCache,
    ScanOverlay,
    ScanReader,
    _seedable,
)
from node.ledger.errors import SchemaError
from node.ledger.model import Device, Member
from node.ledger.state import StateAccumulator
from node.ledger.tx import Transaction
from tests.ledger import harness as harness_module
from tests.ledger import test_ledger_flows as flows
from tests.ledger import test_ledger_terms as terms
from tests.ledger import test_licensing_web as web
from tests.ledger.identical import assert_identical

compared: list[int] = []
kept = [RecordCache()]


def assert_same_result(shared: BlockResult, fresh: BlockResult) -> None:
    assert shared == fresh
    assert_identical(shared.receipts, fresh.receipts, "receipts")
    assert [r.encode() for r in shared.receipts] == [r.encode() for r in fresh.receipts]
    assert_identical(shared.changes, fresh.changes, "changes")
    assert shared.state_digest == fresh.state_digest
    assert (shared.tx_root, shared.receipt_root) == (fresh.tx_root, fresh.receipt_root)
    assert shared.validator_set.hash() == fresh.validator_set.hash()


def _both_ways(
    base: ScanReader,
    accumulator: StateAccumulator,
    block: BlockInfo,
    txs: Sequence[Transaction],
    signature_ok: Callable[[Transaction], bool] = app._verify,
    share_records: bool = True,
) -> BlockResult:
    fresh = app.execute_block(base, accumulator, block, txs, signature_ok, share_records=False)
    shared = app.execute_block(
        base, accumulator, block, txs, signature_ok, share_records=True, record_cache=kept[0]
    )
    assert_same_result(shared, fresh)
    compared.append(len(txs))
    return shared


@pytest.fixture
def differential(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(harness_module, "execute_block", _both_ways)
    compared.clear()
    kept[0] = RecordCache()
    yield
    assert compared, "the scenario executed no block"


FLOWS = [name for name in dir(flows) if name.startswith("test_")]
NO_ARG_SCENARIOS: list[Callable[[], Any]] = [
    *(getattr(terms, n) for n in dir(terms) if n.startswith("test_")),
    web.test_a_year_of_the_licensing_web,
]


@pytest.mark.usefixtures("differential")
@pytest.mark.parametrize("name", FLOWS)
def test_ledger_flows_give_the_same_results_with_shared_records(name: str) -> None:
    h = harness_module.Harness(flows.MEMBERS, flows.T0)
    for source in (flows.rules.PER_UNIT, flows.rules.TIERED_ANNUAL):
        h.tx("codec", "rule.deploy", {"source": source})
    h.ok()
    getattr(flows, name)(h)


@pytest.mark.usefixtures("differential")
@pytest.mark.parametrize("scenario", NO_ARG_SCENARIOS, ids=lambda f: f.__name__)
def test_licensing_scenarios_give_the_same_results_with_shared_records(
    scenario: Callable[[], Any],
) -> None:
    scenario()


def test_the_cache_returns_the_record_the_bytes_decode_to() -> None:
    key = bytes(range(32))
    raw = Member("oem", key, ("licensee",)).encode()
    cache = RecordCache()
    first = cache.decode(Member, raw)
    assert first == Member.decode(raw)
    assert cache.decode(Member, bytes(raw)) is first  # same bytes: decoded once
    other = Member("oem", key, ("licensor",)).encode()
    assert cache.decode(Member, other).roles == ("licensor",)


class Small(RecordCache):
    __slots__ = ()
    MAX_ENTRIES = 2
    MAX_BYTES = 4096


def test_the_cache_is_bounded() -> None:
    cache = Small()
    members = [Member(f"m{i}", bytes([i]) * 32, ("licensee",)) for i in range(5)]
    for member in members:
        assert cache.decode(Member, member.encode()) == member
        assert len(cache) <= 2 * Small.MAX_ENTRIES


def test_the_cache_is_bounded_in_bytes() -> None:
    class Tiny(RecordCache):
        __slots__ = ()
        MAX_BYTES = 100

    cache = Tiny()
    for i in range(6):
        member = Member(f"m{i}", bytes([i]) * 32, ("licensee",))  # 60 bytes encoded
        cache.decode(Member, member.encode())
        assert len(cache) <= 2 and cache._young_bytes <= Tiny.MAX_BYTES


def test_only_a_blocks_final_values_are_kept_from_its_seeds() -> None:
    cache = RecordCache()
    versions = [Member(f"m{i}", bytes(32), ("licensee",)) for i in range(3)]
    raws = [m.encode() for m in versions]
    cache.seed(Member, raws[0], versions[0].to_value(), b"member/x")
    assert len(cache) == 0  # Member was never read through the cache: not seeded
    cache.decode(Member, raws[0])
    for i, (member, raw) in enumerate(zip(versions[1:], raws[1:], strict=True)):
        cache.seed(Member, raw, member.to_value(), b"member/%d" % i)
    assert len(cache) == 3
    cache.end_block({b"member/x": (raws[0], raws[2])})  # version 1 was replaced in-block
    assert len(cache) == 2
    assert cache.decode(Member, raws[2]) == versions[2]
    assert len(cache) == 2


def test_a_used_entry_survives_the_generation_change() -> None:
    cache = Small()
    members = [Member(f"m{i}", bytes([i]) * 32, ("licensee",)) for i in range(4)]
    raws = [m.encode() for m in members]
    first = cache.decode(Member, raws[0])
    cache.decode(Member, raws[1])
    cache.decode(Member, raws[2])  # the first two become the old generation
    assert cache.decode(Member, raws[0]) is first  # used: back to the young generation
    cache.decode(Member, raws[3])  # the young generation (m2, m0) becomes the old one
    assert cache.decode(Member, raws[0]) is first


def test_a_version_replaced_in_the_block_is_not_kept_but_still_answered() -> None:
    cache = RecordCache()
    versions = [Member(f"m{i}", bytes(32), ("licensee",)) for i in range(3)]
    raws = [m.encode() for m in versions]
    cache.decode(Member, raws[0])
    cache.seed(Member, raws[1], versions[1].to_value(), b"member/x")
    cache.seed(Member, raws[2], versions[2].to_value(), b"member/x")  # replaces version 1
    assert len(cache) == 2
    assert cache.decode(Member, raws[1]) == versions[1]  # (after a rejection): decoded
    assert cache.decode(Member, raws[2]) == versions[2]


def test_a_seeded_record_is_built_from_its_tree_as_decode_would_build_it() -> None:
    device = Device(
        bytes(range(32)), bytes(32), "cam-1", False, 7, bytes(32), {"units": 3, "hours": 1}, 0
    )
    raw, tree = codec.encode_value(device.to_value())
    assert tree is not None
    cache = RecordCache()
    cache.decode(Device, replace(device, last_seq=6).encode())  # Device is read: seeded
    cache.seed(Device, raw, tree, b"device/x")
    built = cache.decode(Device, raw)
    assert_identical(built, Device.decode(raw))
    assert list(built.registers) == ["hours", "units"]  # canonical order, not the writer's
    assert cache.decode(Device, raw) is built
    cache.end_block({b"device/x": (None, raw)})
    assert cache.decode(Device, raw) is built


def test_a_seeded_tree_that_does_not_validate_raises_as_decode_does() -> None:
    raw, tree = codec.encode_value({"name": "oem", "public_key": b"short", "roles": ["licensee"]})
    assert tree is not None
    cache = RecordCache()
    cache.decode(Member, Member("oem", bytes(32), ("licensee",)).encode())
    cache.seed(Member, raw, tree, b"member/x")
    with pytest.raises(SchemaError) as seeded:
        cache.decode(Member, raw)
    with pytest.raises(SchemaError) as reference:
        Member.decode(raw)
    assert (seeded.value.code, seeded.value.detail) == (
        reference.value.code,
        reference.value.detail,
    )


def test_ctx_put_seeds_the_cache_with_the_bytes_it_writes() -> None:
    cache = RecordCache()
    overlay = ScanOverlay(BlockReads(SortedDict({})))
    ctx = Ctx(overlay, BlockInfo("c", 1, 0), b"", records=cache)
    device = Device(bytes(range(32)), bytes(32), "cam-1", False, 7, bytes(32), {"z": 1, "a": 2}, 0)
    cache.decode(Device, replace(device, last_seq=6).encode())
    ctx.put(b"device/x", device)
    raw = overlay.get(b"device/x")
    assert raw == device.encode() and len(cache) == 2
    assert_identical(ctx.get(b"device/x", Device), Device.decode(raw))


def test_only_records_with_the_plain_codec_are_seeded() -> None:
    assert _seedable(Device) and _seedable(Member)
    assert not _seedable(Transaction) and not _seedable(Receipt)  # they cache their bytes


class SortedDict(dict[bytes, bytes]):
    """A committed state for the tests above (a ScanReader)."""

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted((k, v) for k, v in self.items() if k.startswith(prefix)))
