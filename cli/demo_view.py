"""The demo's live summary: what the chain says, read over the public HTTP API.

Rule kept here: the summary is computed from node answers only (never from what the demo
believes it sent), so it shows what anyone could check; a node that does not answer is
skipped for that refresh, never fatal. Statements that are paid are final, so each
licence's statements are read from a cursor past the paid ones: a refresh costs a few
requests however long the demo has run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cli import web
from cli.demo_procs import HttpError, http_get, http_text

PAGES_MAX = 20
CONSISTENT_TRIES = 3
TXS_METRIC = re.compile(r"^alps_txs_committed_total\s+([0-9.eE+]+)\s*$", re.MULTILINE)


@dataclass
class LicenceView:
    licence_id: str
    licensor: str
    open_period: str = ""
    accruing: int = 0  # the open period's live estimate
    billed: int = 0  # closed statements' totals
    paid: int = 0
    closed: int = 0
    settled: int = 0  # statements with status "paid"
    last_paid: str = ""  # the newest settled statement with a non-zero total
    # statements up to `cursor` are settled (final) and already counted in `settled_counts`
    cursor: str | None = None
    settled_counts: tuple[int, int, int, int, str] = (0, 0, 0, 0, "")


@dataclass
class Snapshot:
    height: int
    node: str
    tx_per_s: float | None
    nodes_up: int
    licences: list[LicenceView]
    balances: dict[str, int]


@dataclass
class Collector:
    """Reads a snapshot from the first node that answers."""

    apis: Sequence[str]
    keys: Mapping[str, bytes]
    licences: dict[str, LicenceView] = field(default_factory=dict)
    _last_txs: tuple[float, float] | None = None  # (monotonic s, committed total)

    def __post_init__(self) -> None:
        owners = {"CODEC": "codec", "RADIO": "radio-pool", "OS": "osv", "GFX-OS": "gfx"}
        self.licences = {lid: LicenceView(lid, name) for lid, name in owners.items()}

    def snapshot(self, now_s: float) -> Snapshot | None:
        up = [api for api in self.apis if _answers(api)]
        for api in up:
            try:
                return self._read(api, now_s, len(up))
            except (OSError, HttpError, ValueError, KeyError):
                continue
        return None

    def _read(self, api: str, now_s: float, nodes_up: int) -> Snapshot:
        """Read everything between two equal heights (a few tries), so statements and
        balances come from the same block; the last try is shown if blocks kept coming."""
        for _ in range(CONSISTENT_TRIES):
            height = int(http_get(f"{api}/v1/status")["height"])
            for view in self.licences.values():
                self._read_licence(api, view)
            balances = {}
            for name in (*web.LICENSORS, "oem"):
                answer = http_get(f"{api}/v1/accounts/{self.keys[name].hex()}")
                balances[name] = sum(
                    b["balance"] for b in answer["balances"] if b["currency"] == web.CURRENCY
                )
            if int(http_get(f"{api}/v1/status")["height"]) == height:
                break
        return Snapshot(
            height=height,
            node=api,
            tx_per_s=self._rate(api, now_s),
            nodes_up=nodes_up,
            licences=list(self.licences.values()),
            balances=balances,
        )

    def _rate(self, api: str, now_s: float) -> float | None:
        found = TXS_METRIC.search(http_text(f"{api}/metrics"))
        if found is None:
            return None
        total = float(found.group(1))
        last, self._last_txs = self._last_txs, (now_s, total)
        if last is None or now_s <= last[0] or total < last[1]:
            return None  # first reading, or another node / a restarted one answered
        return (total - last[1]) / (now_s - last[0])

    def _read_licence(self, api: str, view: LicenceView) -> None:
        accruals = http_get(f"{api}/v1/licences/{view.licence_id}/accruals")
        estimate = accruals.get("estimate")
        view.accruing = int(estimate["total"]) if estimate else 0
        view.open_period = str(estimate["period_id"]) if estimate else ""
        closed, billed, paid, settled, last_paid = view.settled_counts
        cursor = view.cursor
        final = True
        after = cursor
        for _ in range(PAGES_MAX):
            query = f"?licence={view.licence_id}&limit=1000"
            if after is not None:
                query += f"&after={after}"
            page = http_get(f"{api}/v1/statements{query}")
            for s in page["statements"]:
                closed += 1
                billed += int(s["total"])
                paid += int(s["paid"])
                if s["status"] == "paid":
                    settled += 1
                    if s["total"]:
                        last_paid = s["statement_id"]
                else:
                    final = False
                if final:  # everything up to here is settled: move the cursor past it
                    cursor = s["statement_id"]
                    view.settled_counts = (closed, billed, paid, settled, last_paid)
            after = page["next"]
            if after is None:
                break
        view.cursor = cursor
        view.closed, view.billed, view.paid, view.settled = closed, billed, paid, settled
        view.last_paid = last_paid


def _answers(api: str) -> bool:
    try:
        return bool(http_get(f"{api}/health", timeout=2.0)["ok"])
    except (OSError, HttpError, ValueError, KeyError, TypeError):
        return False


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}"


def render(snap: Snapshot, agents_up: int, agents: int) -> list[str]:
    """The dashboard, as lines (for a terminal)."""
    rate = "-" if snap.tx_per_s is None else f"{snap.tx_per_s:.1f}"
    closed = sum(v.closed for v in snap.licences)
    settled = sum(v.settled for v in snap.licences)
    lines = [
        f"height {snap.height}   tx/s {rate}   nodes up {snap.nodes_up}   "
        f"agents running {agents_up}/{agents}   statements closed {closed}, settled {settled}",
        "",
        f"{'licence':<8} {'licensor':<11} {'open period':<17} {'accruing':>12} "
        f"{'billed':>14} {'paid':>14}  statements",
    ]
    for v in snap.licences:
        lines.append(
            f"{v.licence_id:<8} {v.licensor:<11} {v.open_period:<17} {money(v.accruing):>12} "
            f"{money(v.billed):>14} {money(v.paid):>14}  {v.settled}/{v.closed} settled"
        )
    received = "  ".join(f"{n} {money(snap.balances[n])}" for n in web.LICENSORS)
    lines += [
        "",
        f"royalties received (USD): {received}",
        f"OEM balance (USD): {money(snap.balances['oem'])}",
    ]
    return lines


def one_line(snap: Snapshot, agents_up: int, agents: int) -> str:
    """The summary in one line (when output is not a terminal)."""
    rate = "-" if snap.tx_per_s is None else f"{snap.tx_per_s:.1f}"
    closed = sum(v.closed for v in snap.licences)
    settled = sum(v.settled for v in snap.licences)
    paid = " ".join(f"{n}={money(snap.balances[n])}" for n in web.LICENSORS)
    accruing = " ".join(f"{v.licence_id}={money(v.accruing)}" for v in snap.licences)
    return (
        f"height={snap.height} tx/s={rate} nodes={snap.nodes_up} agents={agents_up}/{agents} "
        f"statements={settled}/{closed} accruing: {accruing} | received: {paid}"
    )


def explore_commands(node: str, genesis: str, statement: str, agent_config: str) -> list[str]:
    """The CLI commands that explore and verify what the demo did."""
    return [
        f"python -m cli statements --node {node}",
        f"python -m cli statement show {statement} --node {node}",
        f"python -m cli verify statement {statement} --genesis {genesis} --node {node}",
        f"curl -s {node}/v1/statements/{statement}",
        f"python -m device_agent.cli --config {agent_config} status",
    ]
