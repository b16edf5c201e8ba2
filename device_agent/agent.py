"""The agent's run loop: poll the source, take reports into the outbox, upload.

Rule kept here: registers only move forward, and a report is taken (signed and fsynced
in the outbox) at most once per `record_interval_s`, carrying the latest cumulative
registers. Uploading is paced by the uploader's own delays, so a slow or absent node
never stops the meter; the loop is single-threaded (sources with blocking input buffer
lines in their own thread).
"""

from __future__ import annotations

import pathlib
import random
import time
from collections.abc import Callable

from device_agent.config import AgentConfig
from device_agent.log import Logger
from device_agent.nodeclient import NodeClient
from device_agent.outbox import Outbox, Taken
from device_agent.sources import Source, apply_updates, build_source
from device_agent.uploader import Uploader, UploadSettings
from node.ledger import crypto
from node.ledger.tx import Transaction
from node.ledger.usage import UsageReport, make_usage_report

PLAUSIBLE_CLOCK_MS = 1_577_836_800_000  # 2020-01-01: earlier means the RTC is unset


class Agent:
    def __init__(
        self,
        cfg: AgentConfig,
        signer: crypto.Signer,
        outbox: Outbox,
        source: Source,
        uploader: Uploader,
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.cfg = cfg
        self.signer = signer
        self.outbox = outbox
        self.source = source
        self.uploader = uploader
        self.log = log
        self.clock = clock
        self.wall_ms = wall_ms
        self.registers = outbox.registers
        self._recorded = dict(self.registers)
        self._next_record_s = 0.0
        self._last_time_ms = 0
        self._clock_warned = False

    def build(self, seq: int, prev_hash: bytes, registers: dict[str, int]) -> Transaction:
        now_ms = self.wall_ms()
        if now_ms < PLAUSIBLE_CLOCK_MS and not self._clock_warned:
            self._clock_warned = True
            self.log.warning("device_clock_unset", device_time_ms=now_ms)
        if now_ms < self._last_time_ms:
            self.log.warning("device_clock_backwards", was_ms=self._last_time_ms, now_ms=now_ms)
        self._last_time_ms = now_ms
        report = UsageReport(self.cfg.sku, self.cfg.territory, max(0, now_ms), prev_hash, registers)
        return make_usage_report(self.signer, self.cfg.chain_id, seq, report)

    def tick(self, now_s: float) -> Taken | None:
        """Poll the source; take a report if registers changed and one is due."""
        updates = self.source.poll(now_s)
        if updates:
            self.registers = apply_updates(self.registers, updates, self.log)
        changed = self.registers != self._recorded or self.outbox.deferred
        if not changed or not self.registers or now_s < self._next_record_s:
            return None
        taken = self.outbox.record(self.registers, self.build)
        self._recorded = dict(self.registers)
        self._next_record_s = now_s + self.cfg.record_interval_s
        if taken.deferred:
            self.log.warning("outbox_full", depth=self.outbox.depth(), action="report deferred")
        elif taken.replaced:
            self.log.info("coalesced", seq=taken.seq, replaced=taken.replaced)
        return taken

    def run(self, should_stop: Callable[[], bool], ticks_max: int | None = None) -> None:
        upload_due = self.clock()
        ticks = 0
        self.log.info(
            "agent_started",
            device=self.signer.public_key,
            next_seq=self.outbox.next_seq,
            queue_depth=self.outbox.depth(),
        )
        while not should_stop() and (ticks_max is None or ticks < ticks_max):
            ticks += 1
            now = self.clock()
            self.tick(now)
            if now >= upload_due:
                upload_due = self.clock() + self.uploader.step()
            wait = min(self.cfg.tick_s, max(0.0, upload_due - self.clock()))
            if wait > 0:
                time.sleep(wait)
        self.log.info("agent_stopped", next_seq=self.outbox.next_seq, depth=self.outbox.depth())


def build_agent(
    cfg: AgentConfig, signer: crypto.Signer, log: Logger, base_dir: pathlib.Path
) -> Agent:
    cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    outbox = Outbox(cfg.outbox_path, signer.public_key, cfg.chain_id, cfg.records_max)
    clients = [NodeClient(e, cfg.timeout_s) for e in cfg.endpoints]
    settings = UploadSettings(
        batch_size_max=cfg.batch_size_max,
        backoff_base_s=cfg.backoff_base_s,
        backoff_max_s=cfg.backoff_max_s,
        confirm_interval_s=cfg.confirm_interval_s,
        confirm_lookups_max=cfg.confirm_lookups_max,
        enrolment_check_s=cfg.enrolment_check_s,
        clock_skew_warn_s=cfg.clock_skew_warn_s,
        idle_s=cfg.tick_s,
    )
    rng = random.Random(cfg.jitter_seed)
    uploader = Uploader(outbox, clients, signer.public_key, settings, rng, log)
    source = build_source(cfg.source, base_dir, log)
    return Agent(cfg, signer, outbox, source, uploader, log)
