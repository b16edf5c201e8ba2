"""Time-driven work per block is bounded: a backlog of period closes and settlements
drains over the following blocks in due order; nothing is lost or done twice. And the
overlay's prefix listing (which the due indexes are read with) is a lazy, exact merge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import periods
from node.ledger.calendar import ms_of_date
from node.ledger.context import ScanOverlay
from node.ledger.model import Account, Statement, k_account, k_statement
from tests.ledger import rules_for_tests as rules
from tests.ledger.harness import Harness
from tests.ledger.test_ledger_flows import DEVICE, MEMBERS, T0, deposit, terms

LICENCES, CLOSES, SETTLEMENTS = 20, 8, 5  # bounds lowered so a small test has a backlog
Q2 = ms_of_date(2026, 4, 1)


def ids() -> list[str]:
    return [f"L{i:03d}" for i in range(LICENCES)]


def test_the_bounds_are_set() -> None:
    assert 1 <= periods.MAX_CLOSES_PER_BLOCK <= 256
    assert 1 <= periods.MAX_SETTLEMENTS_PER_BLOCK <= 1024


def test_a_backlog_of_closes_and_settlements_drains_in_due_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(periods, "MAX_CLOSES_PER_BLOCK", CLOSES)
    monkeypatch.setattr(periods, "MAX_SETTLEMENTS_PER_BLOCK", SETTLEMENTS)
    h = Harness(MEMBERS, T0)
    h.tx("codec", "rule.deploy", {"source": rules.PER_UNIT})
    h.ok()
    all_terms = [
        terms(h, lid, rules.PER_UNIT, {"fee_per_unit": 1 + i}) for i, lid in enumerate(ids())
    ]
    for t in all_terms:
        h.tx("codec", "licence.propose", {"terms": t.to_value()})
    h.ok()
    for t in all_terms:
        h.tx("oem", "licence.sign", {"licence_id": t.licence_id, "terms_hash": t.terms_hash()})
    h.tx("oem", "bom.set", {"sku": "cam-1", "licences": ids()})
    h.enrol("oem", DEVICE, "cam-1")
    h.ok()
    h.usage(DEVICE, "cam-1", "DE", {"units": 10})
    h.ok()
    deposit(h, "oem", 10**9, "fund")

    def progress(period: str, status: str = "") -> list[str]:
        found = [h.get(k_statement(lid, period), Statement) for lid in ids()]
        return [lid for lid, s in zip(ids(), found, strict=True) if s and s.status != status]

    h.ok(Q2)  # every licence's Q1 is due to close now
    closed = [progress("2026-Q1")]
    h.usage(DEVICE, "cam-1", "DE", {"units": 15})  # after Q1's end: accrues to Q2
    for _ in range(3):
        h.ok()
        closed.append(progress("2026-Q1"))
    assert [len(c) for c in closed] == [CLOSES, 2 * CLOSES, LICENCES, LICENCES]
    assert all(c == ids()[: len(c)] for c in closed)  # in due order: lowest id first
    statements = [h.get(k_statement(lid, "2026-Q1"), Statement) for lid in ids()]
    assert [s.total for s in statements] == [10 * (1 + i) for i in range(LICENCES)]

    h.ok(statements[0].due_ms)  # all twenty fall due together
    unpaid = [progress("2026-Q1", status="paid")]
    for _ in range(4):
        h.ok()
        unpaid.append(progress("2026-Q1", status="paid"))
    assert [len(u) for u in unpaid] == [15, 10, 5, 0, 0]
    assert all(u == ids()[LICENCES - len(u) :] for u in unpaid)
    codec = h.get(k_account(h.key["codec"], "EUR"), Account).balance
    assert codec == sum(10 * (1 + i) for i in range(LICENCES))  # each paid exactly once
    assert progress("2026-Q2") == []  # the late usage waits for Q2's close


class SortedReader:
    """A committed state that lists keys in order (as the chain store does)."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.read = 0

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self.data):
            if key.startswith(prefix):
                self.read += 1
                yield key, self.data[key]


small = st.binary(min_size=1, max_size=3)
writes = st.lists(st.tuples(small, st.none() | st.binary(max_size=3)), max_size=20)


@settings(max_examples=200)
@given(st.dictionaries(small, st.binary(max_size=3), max_size=20), writes, writes, small)
def test_overlay_scan_is_an_exact_merge(
    base: dict[bytes, bytes],
    outer: list[tuple[bytes, bytes | None]],
    inner: list[tuple[bytes, bytes | None]],
    prefix: bytes,
) -> None:
    overlay = ScanOverlay(SortedReader(base))
    child = overlay.child()
    want = dict(base)
    for layer, batch in ((overlay, outer), (child, inner)):
        for key, value in batch:
            if value is None:
                layer.delete(key)
                want.pop(key, None)
            else:
                layer.put(key, value)
                want[key] = value
    expected = sorted((k, v) for k, v in want.items() if k.startswith(prefix))
    assert list(child.scan_state(prefix)) == expected


def test_overlay_scan_reads_the_base_lazily() -> None:
    reader = SortedReader({bytes([i]): b"v" for i in range(200)})
    overlay = ScanOverlay(reader)
    first = []
    for key, _ in overlay.scan_state(b""):
        first.append(key)
        if len(first) == 5:
            break
    assert first == [bytes([i]) for i in range(5)]
    assert reader.read <= 6  # not the whole prefix
