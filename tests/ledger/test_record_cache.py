"""Sharing decoded records within a block changes nothing: every ledger scenario below is
executed block by block both with the per-block RecordCache and with fresh decoding, and
the two results (receipts, state changes, digest, roots, validator set) must be equal."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from node.ledger import app
from node.ledger.app import BlockResult
from node.ledger.context import BlockInfo, RecordCache, ScanReader
from node.ledger.model import Member
from node.ledger.state import StateAccumulator
from node.ledger.tx import Transaction
from tests.ledger import harness as harness_module
from tests.ledger import test_ledger_flows as flows
from tests.ledger import test_ledger_terms as terms
from tests.ledger import test_licensing_web as web

compared: list[int] = []


def _both_ways(
    base: ScanReader,
    accumulator: StateAccumulator,
    block: BlockInfo,
    txs: Sequence[Transaction],
    signature_ok: Callable[[Transaction], bool] = app._verify,
    share_records: bool = True,
) -> BlockResult:
    fresh = app.execute_block(base, accumulator, block, txs, signature_ok, share_records=False)
    shared = app.execute_block(base, accumulator, block, txs, signature_ok, share_records=True)
    assert shared == fresh
    compared.append(len(txs))
    return shared


@pytest.fixture
def differential(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(harness_module, "execute_block", _both_ways)
    compared.clear()
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


def test_the_cache_is_bounded() -> None:
    class Small(RecordCache):
        __slots__ = ()
        MAX_ENTRIES = 2

    cache = Small()
    members = [Member(f"m{i}", bytes([i]) * 32, ("licensee",)) for i in range(5)]
    for member in members:
        assert cache.decode(Member, member.encode()) == member
        assert len(cache._entries) <= 2
