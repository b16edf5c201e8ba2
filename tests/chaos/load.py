"""Device and money load for a chaos run, recording every answer a node gave.

Clients behave like real ones: each holds one nonce stream (a member) or one report
sequence (a device), sends one transaction at a time to a node chosen at random, and
resends the SAME signed transaction to another node until some node answers that it is
committed (`POST /v1/txs?wait_s=`) or the drain deadline passes. Every answer
"committed at height h" is an acknowledgement the checks hold the cluster to.

- Members (`DEPOSITORS` + oem) deposit random amounts, and withdraw part of what the bank
  has credited them; the bank acknowledges every deposit and accepts or declines every
  withdrawal. The client-side `expected` balances follow only acknowledged outcomes.
- oem enrols `devices` devices first; each device then reports cumulative usage.

Rule kept here: nothing here trusts a node beyond its answers; every wait is bounded by
the run's drain deadline.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from http.client import HTTPException
from typing import Any

import trio

from node.ledger import codec, crypto
from node.ledger.tx import Transaction, make_tx
from node.ledger.usage import GENESIS_PREV, UsageReport, make_usage_report, possession_value
from tests.e2e.procs import HttpError, NodeProc, Testnet, http

DEPOSITORS = ("codec", "r1", "r2", "r3", "osv", "gfx", "auditor")
CURRENCY = "EUR"
WAIT_S = 3.0
BANK_BATCH = 100
SKU = "cam-1"


@dataclasses.dataclass
class TxRecord:
    """One signed transaction and everything nodes said about it."""

    tx_id: str
    kind: str
    who: str
    acks: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)  # node, h, code
    rejections: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    http_errors: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)
    attempts: int = 0

    @property
    def final(self) -> bool:
        return bool(self.acks or self.rejections)


@dataclasses.dataclass
class LoadStats:
    submitted: int = 0
    attempts: int = 0
    acked: int = 0
    unresolved: int = 0
    connection_errors: int = 0
    busy: int = 0


class Load:
    def __init__(self, net: Testnet, seed: int, devices: int, limiter: trio.CapacityLimiter):
        self.net = net
        self.seed = seed
        self.device_count = devices
        self.limiter = limiter
        self.records: dict[str, TxRecord] = {}
        self.expected: dict[str, int] = {}  # member name -> balance the acks imply
        self.in_transit = 0
        self.stats = LoadStats()
        self.surprises: list[str] = []  # answers an honest client should never get
        self.stop = trio.Event()
        self.drain_deadline = float("inf")
        self._bank_send, self._bank_receive = trio.open_memory_channel[tuple[str, str, bool]](
            100_000
        )
        self._members_running = 0
        self._members_done = trio.Event()
        self._pending_amounts: dict[str, tuple[str, int]] = {}  # deposit/withdrawal id

    # -- submitting ----------------------------------------------------------------------

    async def submit(self, rng: random.Random, tx: Transaction, kind: str, who: str) -> TxRecord:
        return (await self.submit_batch(rng, [(tx, kind, who)]))[0]

    async def submit_batch(
        self, rng: random.Random, items: Sequence[tuple[Transaction, str, str]]
    ) -> list[TxRecord]:
        """Send the transactions (in order) until a node says each is committed or
        rejected, or the drain deadline passes; each retry goes to a random node."""
        recs = []
        for tx, kind, who in items:
            rec = TxRecord(tx.tx_id.hex(), kind, who)
            self.records[rec.tx_id] = rec
            recs.append(rec)
        self.stats.submitted += len(recs)
        waiting = [(tx, rec) for (tx, _, _), rec in zip(items, recs, strict=True)]
        while waiting and trio.current_time() < self.drain_deadline:
            node = rng.choice(self.net.nodes)
            body = codec.encode({"txs": [tx.to_value() for tx, _ in waiting]})
            self.stats.attempts += 1
            try:
                answer = await trio.to_thread.run_sync(
                    _post, node, body, limiter=self.limiter, abandon_on_cancel=True
                )
            except HttpError as exc:
                if exc.status == 429:
                    self.stats.busy += 1
                else:
                    for _, rec in waiting:
                        rec.http_errors.append((node.index, exc.status, exc.body[:200].decode()))
                await trio.sleep(0.3)
                continue
            except (OSError, HTTPException):  # refused, timed out, cut mid-answer
                self.stats.connection_errors += 1
                await trio.sleep(0.2)
                continue
            for (_, rec), result in zip(waiting, answer["results"], strict=True):
                rec.attempts += 1
                if result["status"] == "committed":
                    rec.acks.append((node.index, int(result["height"]), str(result["code"])))
                    self.stats.acked += 1
                elif result["status"] == "rejected":
                    rec.rejections.append((node.index, result["code"], result.get("detail", "")))
            waiting = [(tx, rec) for tx, rec in waiting if not rec.final]
        self.stats.unresolved += len(waiting)
        return recs

    # -- clients -------------------------------------------------------------------------

    async def run(self) -> None:
        """All clients; returns when every client stopped (stop set, then drained)."""
        async with trio.open_nursery() as nursery:
            oem = self.net.member("oem")
            devices = [
                crypto.Signer(crypto.sha256(f"chaos/{self.seed}/device/{i}".encode()))
                for i in range(self.device_count)
            ]
            nonce = 1
            if devices:
                nonce = await self._enrol(oem, devices)
            names = [*DEPOSITORS, "oem"]
            self._members_running = len(names)
            for name in names:
                start = nonce if name == "oem" else 1
                nursery.start_soon(self._member, name, start)
            nursery.start_soon(self._bank)
            for i, device in enumerate(devices):
                nursery.start_soon(self._device, i, device)

    def _rng(self, who: str) -> random.Random:
        return random.Random(f"alps-chaos/{self.seed}/{who}")

    def _tx(self, who: str, tx_type: str, body: dict[str, Any], nonce: int) -> Transaction:
        return make_tx(self.net.member(who), self.net.chain_id, tx_type, body, nonce)

    async def _enrol(self, oem: crypto.Signer, devices: Sequence[crypto.Signer]) -> int:
        rng = self._rng("oem-enrol")
        nonce = 1
        for device in devices:
            value = possession_value(device.public_key, oem.public_key)
            proof = device.sign(crypto.DOMAIN_POSSESSION, self.net.chain_id, value)
            body = {"device": device.public_key, "sku": SKU, "proof": proof}
            rec = await self.submit(
                rng, self._tx("oem", "device.enrol", body, nonce), "enrol", "oem"
            )
            if not rec.acks:
                raise RuntimeError(f"device enrolment did not commit: {rec}")
            nonce += 1
        return nonce

    async def _member(self, name: str, nonce: int) -> None:
        rng = self._rng(name)
        self.expected.setdefault(name, 0)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                have = self.expected[name]
                if have > 10 and rng.random() < 0.3:
                    ok = await self._withdraw(
                        rng, name, nonce, f"{name}-w{n}", rng.randint(1, have // 2)
                    )
                else:
                    ok = await self._deposit(rng, name, nonce, f"{name}-d{n}", rng.randint(1, 1000))
                if ok is None:
                    return  # unresolved at the deadline: this nonce stream is stuck
                if ok:
                    nonce += 1  # a rejected transaction does not use up its nonce
                await trio.sleep(rng.uniform(0, 0.3))
        finally:
            self._members_running -= 1
            if self._members_running == 0:
                self._members_done.set()

    async def _deposit(
        self, rng: random.Random, name: str, nonce: int, dep: str, amount: int
    ) -> bool | None:
        body = {
            "deposit_id": dep,
            "currency": CURRENCY,
            "amount": amount,
            "reference": "chaos",
            "counterparty": b"",
        }
        rec = await self.submit(
            rng, self._tx(name, "account.deposit", body, nonce), "deposit", name
        )
        if not rec.final:
            return None
        if not self._accepted(rec):
            return False
        self._pending_amounts[dep] = (name, amount)
        await self._bank_send.send(("deposit", dep, True))
        return True

    async def _withdraw(
        self, rng: random.Random, name: str, nonce: int, wid: str, amount: int
    ) -> bool | None:
        body = {
            "withdrawal_id": wid,
            "currency": CURRENCY,
            "amount": amount,
            "reference": "chaos",
            "counterparty": b"",
        }
        rec = await self.submit(
            rng, self._tx(name, "account.withdraw", body, nonce), "withdraw", name
        )
        if not rec.final:
            return None
        if not self._accepted(rec):
            return False
        self.expected[name] -= amount
        self.in_transit += amount
        self._pending_amounts[wid] = (name, amount)
        await self._bank_send.send(("withdrawal", wid, rng.random() < 0.7))
        return True

    def _accepted(self, rec: TxRecord) -> bool:
        if rec.rejections:
            self.surprises.append(
                f"{rec.kind} {rec.tx_id[:16]} by {rec.who} refused: {rec.rejections[0]}"
            )
            return False
        codes = {code for _, _, code in rec.acks}
        if codes != {"ok"}:
            self.surprises.append(
                f"{rec.kind} {rec.tx_id[:16]} by {rec.who} committed with {codes}"
            )
        return "ok" in codes

    async def _bank(self) -> None:
        """Acknowledges what the members asked for, in batches of up to BANK_BATCH."""
        rng = self._rng("bank")
        nonce = 1
        while True:
            batch: list[tuple[str, str, bool]] = []
            with trio.move_on_after(0.5):
                batch.append(await self._bank_receive.receive())
            if not batch:
                if self._members_done.is_set():
                    return
                continue
            while len(batch) < BANK_BATCH:
                try:
                    batch.append(self._bank_receive.receive_nowait())
                except trio.WouldBlock:
                    break
            items = []
            for i, (kind, ref, accept) in enumerate(batch):
                if kind == "deposit":
                    tx = self._tx("bank", "account.ack_deposit", {"deposit_id": ref}, nonce + i)
                else:
                    body = {"withdrawal_id": ref, "accept": accept}
                    tx = self._tx("bank", "account.ack_withdrawal", body, nonce + i)
                items.append((tx, f"ack_{kind}", "bank"))
            recs = await self.submit_batch(rng, items)
            for (kind, ref, accept), rec in zip(batch, recs, strict=True):
                if not self._accepted(rec):
                    return  # the nonce stream is stuck (already reported)
                nonce += 1
                member, amount = self._pending_amounts.pop(ref)
                if kind == "deposit":
                    self.expected[member] += amount
                else:
                    self.in_transit -= amount
                    if not accept:
                        self.expected[member] += amount

    async def _device(self, index: int, device: crypto.Signer) -> None:
        rng = self._rng(f"device-{index}")
        prev, units, seq = GENESIS_PREV, 0, 0
        while not self.stop.is_set():
            seq += 1
            units += rng.randint(1, 50)
            report = UsageReport(SKU, "DE", time.time_ns() // 1_000_000, prev, {"units": units})
            tx = make_usage_report(device, self.net.chain_id, seq, report)
            rec = await self.submit(rng, tx, "usage", f"device-{index}")
            if not rec.final:
                return
            self._accepted(rec)
            prev = tx.tx_id
            await trio.sleep(rng.uniform(0, 0.3))


def _post(node: NodeProc, body: bytes) -> Any:
    return http(f"{node.api}/v1/txs?wait_s={WAIT_S}", body, timeout=WAIT_S + 5)
