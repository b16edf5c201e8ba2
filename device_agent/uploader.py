"""Uploads the outbox to the nodes: batches, failover, backoff, confirmation.

Rules kept here:
- Nothing is uploaded before a node shows this device enrolled and not revoked.
- Oldest first, in batches; rows are marked sent durably once the TCP connection is up
  and before the request is written (outbox rule): a node that refuses connections never
  saw them, so they may still be coalesced.
- A row leaves the outbox only when a node says `committed`, in the POST answer or in a
  later GET /v1/txs/<id>. `pending` rows are looked up, and POSTed again if the node
  forgets them (resubmitting is harmless: the id is the dedup key).
- A node that fails (refused, timeout, 5xx, garbage) is marked unhealthy and the next
  endpoint is tried at once; after a full sweep of failures the agent waits a full-jitter
  exponential backoff, uniform in [0, min(backoff_max_s, backoff_base_s * 2**n)], so it
  keeps retrying at least every backoff_max_s however long it was offline.
- A rejection is never silent: `unknown_device`/`revoked_device` stop uploads until the
  enrolment is seen again; any other rejection moves the row to the outbox's dead table
  with an error log.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from device_agent.errors import NodeBusy, NodeError, NodeGarbage
from device_agent.log import Logger
from device_agent.nodeclient import NodeClient, TxResult
from device_agent.outbox import Outbox, Row

ENROLMENT_CODES = ("unknown_device", "revoked_device")


def backoff_delay_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog, "Exponential Backoff and Jitter")."""
    ceiling = min(max_s, base_s * 2.0 ** min(max(attempt, 0), 60))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class UploadSettings:
    batch_size_max: int = 100
    backoff_base_s: float = 0.5
    backoff_max_s: float = 300.0
    confirm_interval_s: float = 1.0
    confirm_lookups_max: int = 5
    enrolment_check_s: float = 60.0
    clock_skew_warn_s: float = 120.0
    idle_s: float = 0.5


class Uploader:
    """Call `step()` when due; it returns the seconds until it wants to run again."""

    def __init__(
        self,
        outbox: Outbox,
        clients: list[NodeClient],
        device: bytes,
        settings: UploadSettings,
        rng: random.Random,
        log: Logger,
    ) -> None:
        self.outbox = outbox
        self.clients = clients
        self.device = device
        self.s = settings
        self.rng = rng
        self.log = log
        self.current = 0
        self.failures = 0
        self.busy = 0
        self.enrolled = False
        self.awaiting: list[Row] = []
        self.lookups = 0
        stored = outbox.status().get("endpoints")
        known = {c.endpoint for c in clients}
        self.health: dict[str, str] = (
            {k: v for k, v in stored.items() if k in known} if isinstance(stored, dict) else {}
        )
        self._skew_warned: set[str] = set()

    @property
    def client(self) -> NodeClient:
        return self.clients[self.current]

    def step(self) -> float:
        try:
            if not self.enrolled:
                if not self._check_enrolment():
                    return self.s.enrolment_check_s
            if self.awaiting and self._confirm():
                return self.s.confirm_interval_s
            delay = self._send()
        except NodeBusy as exc:
            self.busy += 1
            delay = max(exc.retry_after_s, self._backoff(self.busy - 1))
            self.log.warning("node_busy", endpoint=self.client.endpoint, retry_in_s=delay)
            self._note_health("busy: 429")
            return min(delay, self.s.backoff_max_s)
        except NodeError as exc:
            return self._failed(exc)
        self.busy = 0
        self._succeeded()
        return delay

    # --- enrolment -----------------------------------------------------------------------

    def _check_enrolment(self) -> bool:
        info = self.client.device(self.device)
        self._succeeded()
        if not info.enrolled or info.revoked:
            state = "revoked" if info.revoked else "not_enrolled"
            self.log.warning(
                "enrolment_missing",
                state=state,
                device=self.device,
                hint="submit the enrolment request printed by `alps-agent init`",
            )
            self.outbox.set_status(enrolment=state)
            return False
        self.enrolled = True
        self.log.info("enrolled", device=self.device, chain_last_seq=info.last_seq)
        self.outbox.set_status(enrolment="enrolled")
        if info.last_seq >= self.outbox.next_seq:
            if self.outbox.adopt_chain_head(info.last_seq, info.last_hash):
                self.log.warning("adopted_chain_head", last_seq=info.last_seq)
            else:
                self.log.error(
                    "device_state_behind_chain",
                    chain_last_seq=info.last_seq,
                    next_seq=self.outbox.next_seq,
                    detail="the ledger has reports this outbox never issued (restored backup "
                    "or cloned key?); new reports will be rejected as replays",
                )
        return True

    # --- upload and confirmation ---------------------------------------------------------

    def _send(self) -> float:
        rows = self.outbox.oldest(self.s.batch_size_max)
        if not rows:
            return self.s.idle_s
        unsent = [r.seq for r in rows if not r.sent]
        results = self.client.submit(
            [r.tx for r in rows], before_send=lambda: self.outbox.mark_sent(unsent)
        )
        self._check_skew()
        committed, pending = self._sort_results(rows, results)
        self.outbox.committed(committed)
        if committed:
            self.log.debug("committed", seqs=len(committed), last=max(committed))
        if not self.enrolled:
            return self.s.enrolment_check_s
        if pending:
            self.awaiting, self.lookups = pending, 0
            return self.s.confirm_interval_s
        return 0.0

    def _sort_results(
        self, rows: list[Row], results: list[TxResult]
    ) -> tuple[list[int], list[Row]]:
        committed: list[int] = []
        pending: list[Row] = []
        for row, result in zip(rows, results, strict=True):
            if result.status == "committed":
                committed.append(row.seq)
            elif result.status == "pending":
                pending.append(row)
            elif result.code in ENROLMENT_CODES:
                self.enrolled = False
                self.log.error("upload_refused", code=result.code, seq=row.seq)
                self.outbox.set_status(last_error=f"{result.code}: seq {row.seq}")
                break
            elif result.code == "replay" and self.client.lookup(row.tx_id) == "committed":
                committed.append(row.seq)
            else:
                self.log.error(
                    "report_rejected",
                    seq=row.seq,
                    tx_id=row.tx_id,
                    code=result.code,
                    detail=result.detail[:300],
                    action="moved to the dead table",
                )
                self.outbox.bury(row.seq, result.code or "rejected", result.detail)
                self.outbox.set_status(last_error=f"rejected {result.code}: seq {row.seq}")
        return committed, pending

    def _confirm(self) -> bool:
        """Look up awaited ids; True while some stay pending and lookups remain."""
        self.lookups += 1
        committed: list[int] = []
        still: list[Row] = []
        forgotten = False
        for row in self.awaiting:
            status = self.client.lookup(row.tx_id)
            if status == "committed":
                committed.append(row.seq)
            elif status == "pending":
                still.append(row)
            else:
                forgotten = True
        self.outbox.committed(committed)
        if still and not forgotten and self.lookups < self.s.confirm_lookups_max:
            self.awaiting = still
            return True
        self.awaiting = []
        return False

    # --- health --------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return backoff_delay_s(attempt, self.s.backoff_base_s, self.s.backoff_max_s, self.rng)

    def _failed(self, exc: NodeError) -> float:
        endpoint = self.client.endpoint
        level = "error" if isinstance(exc, NodeGarbage) else "warning"
        self.failures += 1
        self.awaiting = []
        self.current = (self.current + 1) % len(self.clients)
        sweep_done = self.failures % len(self.clients) == 0
        delay = self._backoff(self.failures // len(self.clients) - 1) if sweep_done else 0.0
        self.log.event(
            level,
            "node_garbage" if isinstance(exc, NodeGarbage) else "node_unavailable",
            endpoint=endpoint,
            code=exc.code,
            detail=exc.detail[:300],
            failures=self.failures,
            next_endpoint=self.client.endpoint,
            retry_in_s=round(delay, 3),
        )
        self._note_health(f"{exc.code}: {exc.detail[:200]}", endpoint, last_error=True)
        return delay

    def _succeeded(self) -> None:
        if self.failures:
            self.log.info("node_recovered", endpoint=self.client.endpoint, after=self.failures)
        self.failures = 0
        self._note_health("ok")

    def _note_health(self, state: str, endpoint: str = "", last_error: bool = False) -> None:
        endpoint = endpoint or self.client.endpoint
        if self.health.get(endpoint) == state and not last_error:
            return  # status is written only when it changes (each write is an fsync)
        self.health[endpoint] = state
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        values: dict[str, object] = {"endpoints": dict(sorted(self.health.items()))}
        if last_error:
            values["last_error"] = f"{stamp} {endpoint} {state}"
        self.outbox.set_status(**values)

    def _check_skew(self) -> None:
        skew, endpoint = self.client.skew_s, self.client.endpoint
        if skew is None:
            return
        if abs(skew) > self.s.clock_skew_warn_s:
            if endpoint not in self._skew_warned:
                self._skew_warned.add(endpoint)
                self.log.warning(
                    "clock_skew",
                    endpoint=endpoint,
                    node_minus_device_s=round(skew, 1),
                    detail="device_time_ms in reports follows the device clock; fix NTP/RTC",
                )
        else:
            self._skew_warned.discard(endpoint)
