"""The end-of-run checks of a chaos run, over the nodes' public HTTP API only.

- identical chains: the reference node's blocks form one hash chain up to the common
  height, every other node has the same block hash there and at HEIGHT_SAMPLE other
  heights, and every node has the same state digest at the top;
- acknowledged transactions: every transaction a node answered "committed at h" is in
  block h on the chain, never included twice, and `/v1/txs/<id>` agrees (a sample of
  LOOKUP_SAMPLE on every node);
- money: per currency, the sum of every member's balance plus withdrawals in transit
  equals deposits minus withdrawals (totals from the chain's receipt events), on every
  node; and each member's balance equals what the client saw acknowledged;
- the clients got no answer an honest client should never get.

Rule kept here: a check reports what it saw (counts, first offenders); it never stops
at the first failure, so one run shows every broken property.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from tests.chaos.load import CURRENCY, Load
from tests.e2e.procs import NodeProc, Testnet

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 16
SHOW = 5
GET_ATTEMPTS = 3
LOOKUP_SAMPLE = 1000  # acknowledged transactions looked up on each node (/v1/txs)
HEIGHT_SAMPLE = 300  # heights compared with the reference node on each other node


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def pmap(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, items))


class Reader:
    """GETs with one keep-alive connection pool per node (a new TCP connection per
    request costs three times the request itself)."""

    def __init__(self, nodes: list[NodeProc]) -> None:
        self.clients = {n.index: httpx.Client(base_url=n.api, timeout=30) for n in nodes}

    def get(self, node: NodeProc, path: str) -> Any:
        """A GET; a kept-alive connection the server closed meanwhile is retried."""
        for attempt in range(GET_ATTEMPTS):
            try:
                resp = self.clients[node.index].get(path)
                break
            except httpx.TransportError:
                if attempt == GET_ATTEMPTS - 1:
                    raise
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@dataclasses.dataclass
class ChainScan:
    """Blocks of one node at some heights: hash and parent hash per height, tx ids per
    height, receipts of non-empty blocks (reference node only), state digest at the top."""

    height: int
    hashes: dict[int, str]
    parents: dict[int, str]
    state_digest: str
    tx_ids: dict[int, list[str]]
    receipts: dict[int, list[dict[str, Any]]]


def scan_chain(api: Reader, node: NodeProc, heights: list[int], with_receipts: bool) -> ChainScan:
    """`heights` ascending, ending at the height every node has."""
    blocks = pmap(lambda h: api.get(node, f"/v1/blocks/{h}"), heights)
    tx_ids = {b["height"]: list(b["tx_ids"]) for b in blocks if b["tx_ids"]}
    receipts: dict[int, list[dict[str, Any]]] = {}
    if with_receipts:
        pages = pmap(lambda h: (h, _receipts(api, node, h)), sorted(tx_ids))
        receipts = dict(pages)
    return ChainScan(
        heights[-1] if heights else 0,
        {b["height"]: b["hash"] for b in blocks},
        {b["height"]: b["parent_hash"] for b in blocks},
        blocks[-1]["state_digest"] if blocks else "",
        tx_ids,
        receipts,
    )


def _receipts(api: Reader, node: NodeProc, height: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(node, f"/v1/blocks/{height}/receipts?offset={offset}&limit=1000")
        out.extend(page["receipts"])
        offset = page["next"]
    return out


def check_chains(scans: dict[int, ChainScan]) -> Check:
    """The reference node's chain is one hash chain (every parent hash is the previous
    block's hash); every other node has the same hash at every height it was asked
    about (a sample and the top) and the same state digest at the top."""
    ref_index = min(scans)
    ref = scans[ref_index]
    problems = []
    for h in range(2, ref.height + 1):
        if ref.parents.get(h) != ref.hashes.get(h - 1):
            problems.append(f"node-{ref_index} block {h} does not link to block {h - 1}")
            break
    for index, scan in scans.items():
        for h, got in sorted(scan.hashes.items()):
            if ref.hashes.get(h) != got:
                problems.append(f"node-{index} block {h} hash {got[:16]} differs")
                break
        if scan.state_digest != ref.state_digest:
            problems.append(f"node-{index} state digest differs at {ref.height}")
    compared = min(len(scan.hashes) for scan in scans.values())
    detail = (
        f"{ref.height} blocks hash-linked on node-{ref_index}; {len(scans)} nodes agree on "
        f"the hash at >= {compared} heights incl. the top, and on the state digest there"
    )
    return Check("identical chains and state digests", not problems, "; ".join(problems) or detail)


def check_acknowledged(api: Reader, load: Load, ref: ChainScan, nodes: list[NodeProc]) -> Check:
    inclusions: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for h in sorted(ref.tx_ids):
        receipts = {r["tx_id"]: r for r in ref.receipts[h]}
        for tx_id in ref.tx_ids[h]:
            inclusions[tx_id].append((h, bool(receipts[tx_id]["accepted"])))
    problems: list[str] = []
    twice = {t: inc for t, inc in inclusions.items() if len(inc) > 1}
    for tx_id, inc in list(twice.items())[:SHOW]:
        problems.append(f"tx {tx_id[:16]} included {len(inc)} times: {inc}")
    if len(twice) > SHOW:
        problems.append(f"... {len(twice)} transactions included more than once")
    acked = [rec for rec in load.records.values() if rec.acks]
    missing = 0
    for rec in acked:
        inc = inclusions.get(rec.tx_id, [])
        for node, height, code in rec.acks:
            if (height, code == "ok") not in inc:
                missing += 1
                if missing <= SHOW:
                    problems.append(
                        f"{rec.kind} {rec.tx_id[:16]}: node-{node} acked height {height} "
                        f"code {code}, chain has {inc or 'nothing'}"
                    )
    every = [rec.tx_id for rec in acked]

    def lookups(node: NodeProc) -> list[str]:
        ids = random.Random(node.index).sample(every, min(len(every), LOOKUP_SAMPLE))
        answers = pmap(lambda t: api.get(node, f"/v1/txs/{t}"), ids)
        return [
            f"node-{node.index} /v1/txs/{t[:16]}: {a['status']} {a['height']}"
            for t, a in zip(ids, answers, strict=True)
            if a["status"] != "committed"
            or (a["height"], a["receipt"]["accepted"]) not in inclusions.get(t, [])
        ]

    for wrong in pmap(lookups, nodes):
        problems.extend(wrong[:SHOW])
    detail = (
        f"{len(acked)} acknowledged transactions on the chain exactly once; "
        f"{min(len(every), LOOKUP_SAMPLE)} looked up on each node; {len(inclusions)} in blocks"
    )
    return Check(
        "acknowledged transactions committed exactly once",
        not problems,
        "; ".join(problems) or detail,
    )


def ledger_totals(ref: ChainScan) -> dict[str, int]:
    """deposited, withdrawn, in_transit from the receipt events (EUR)."""
    totals: Counter[str] = Counter()
    for receipts in ref.receipts.values():
        for r in receipts:
            if not r["accepted"]:
                continue
            for e in r["events"]:
                attrs = e["attrs"]
                if attrs.get("currency", CURRENCY) != CURRENCY:
                    continue
                amount = int(attrs.get("amount", 0))
                if e["kind"] == "deposit":
                    totals["deposited"] += amount
                elif e["kind"] == "withdrawal_requested":
                    totals["in_transit"] += amount
                elif e["kind"] == "withdrawal":
                    totals["in_transit"] -= amount
                    totals["withdrawn"] += amount
                elif e["kind"] == "withdrawal_declined":
                    totals["in_transit"] -= amount
    return {k: totals[k] for k in ("deposited", "withdrawn", "in_transit")}


def balances(api: Reader, node: NodeProc) -> dict[str, int]:
    """member name -> EUR balance, for every member."""
    members: list[dict[str, Any]] = []
    after = ""
    while True:
        page = api.get(node, f"/v1/members?limit=1000{'&after=' + after if after else ''}")
        members.extend(page["members"])
        if not page["next"]:
            break
        after = page["next"]
    out = {}
    for m in members:
        acct = api.get(node, f"/v1/accounts/{m['public_key']}")
        out[m["name"]] = sum(
            int(b["balance"]) for b in acct["balances"] if b["currency"] == CURRENCY
        )
    return out


def check_money(api: Reader, load: Load, ref: ChainScan, nodes: list[NodeProc]) -> Check:
    totals = ledger_totals(ref)
    problems = []
    for node in nodes:
        held = balances(api, node)
        total = sum(held.values())
        if total + totals["in_transit"] != totals["deposited"] - totals["withdrawn"]:
            problems.append(
                f"node-{node.index}: balances {total} + in transit {totals['in_transit']} != "
                f"deposited {totals['deposited']} - withdrawn {totals['withdrawn']}"
            )
        for name, want in load.expected.items():
            if held.get(name, 0) != want:
                problems.append(
                    f"node-{node.index}: {name} holds {held.get(name)}, acks say {want}"
                )
    if totals["in_transit"] != load.in_transit:
        problems.append(f"in transit {totals['in_transit']} on chain, acks say {load.in_transit}")
    detail = (
        f"deposited {totals['deposited']} - withdrawn {totals['withdrawn']} = balances + "
        f"in transit {totals['in_transit']} on {len(nodes)} nodes; {len(load.expected)} "
        "members' balances match the acknowledged deposits/withdrawals"
    )
    return Check("money conserved", not problems, "; ".join(problems[: 2 * SHOW]) or detail)


def check_client_answers(load: Load) -> Check:
    problems = list(load.surprises)
    for rec in load.records.values():
        for node, status, body in rec.http_errors:
            problems.append(f"node-{node} answered {status} to {rec.kind} {rec.tx_id[:16]}: {body}")
    unresolved = [rec for rec in load.records.values() if not rec.final]
    if unresolved:
        problems.append(f"{len(unresolved)} transactions never resolved, e.g. {unresolved[0]}")
    detail = f"{len(load.records)} transactions, {load.stats.attempts} submissions, no refusal"
    return Check(
        "honest clients got honest answers", not problems, "; ".join(problems[:SHOW]) or detail
    )


def run_all(net: Testnet, load: Load, height: int) -> list[Check]:
    nodes = net.nodes
    api = Reader(nodes)
    try:
        every = list(range(1, height + 1))
        some = sorted(random.Random(height).sample(every[:-1], min(height - 1, HEIGHT_SAMPLE)))
        some.append(height)

        def scan(node: NodeProc) -> ChainScan:
            reference = node is nodes[0]
            return scan_chain(api, node, every if reference else some, with_receipts=reference)

        try:
            found = pmap(scan, nodes)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return [Check("chains readable over the API", False, f"scan failed: {exc!r}")]
        scans = {node.index: scan for node, scan in zip(nodes, found, strict=True)}
        ref = scans[0]
        checks: list[tuple[str, Callable[[], Check]]] = [
            ("identical chains and state digests", lambda: check_chains(scans)),
            (
                "acknowledged transactions committed exactly once",
                lambda: check_acknowledged(api, load, ref, nodes),
            ),
            ("money conserved", lambda: check_money(api, load, ref, nodes)),
            ("honest clients got honest answers", lambda: check_client_answers(load)),
        ]
        return [_guarded(name, fn) for name, fn in checks]
    finally:
        api.close()


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot read what it needs fails; it does not stop the others."""
    try:
        return check()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return Check(name, False, f"could not be checked: {exc!r}")
