"""Devices and their usage: enrolment, revocation, transfer, and usage accrual.

Rules kept here:
- A device is enrolled by its owning licensee together with the device's proof of
  possession of its key (a signature over [device key, licensee key] with the
  possession domain), so nobody enrols a key they do not control or for someone else.
- A usage report's sequence number must exceed the device's last one; a report at or
  below it is a replay and changes nothing. A gap, a wrong previous hash and a register
  that went backwards are accepted but counted as anomalies (events say which).
- Usage is billed from register DELTAS, under every licence the bill of IP maps the SKU
  to, in the period that contains the block time (never a closed period), aggregated by
  territory and product class (the licence terms map the SKU to its class). The first
  record of a device under a licence also counts one `_new_devices`. Usage that no
  active licence covers (wrong territory, expired, terminated, unmapped SKU) is recorded
  as unlicensed use and never billed at a licensed rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from node.ledger import codec, crypto
from node.ledger.calendar import period_of
from node.ledger.context import Ctx, Reject
from node.ledger.model import (
    Accrual,
    Device,
    Licence,
    LicenceTerms,
    Member,
    k_accrual,
    k_accrual_leaf,
    k_billed_device,
    k_bom,
    k_device,
    k_licence,
    k_member,
    k_unlicensed,
    require_id,
    require_key,
)
from node.ledger.records import Record, require_bytes
from node.ledger.usage import GENESIS_PREV, TX_USAGE_REPORT, UsageReport, verify_possession

# The metric the ledger itself adds: 1 for the first usage record of a device that accrues
# under a licence (one-time per-device fees). Device metrics start with a letter, so a
# device can never report it.
NEW_DEVICES = "_new_devices"


@dataclass(frozen=True, slots=True)
class EnrolBody(Record):
    device: bytes
    sku: str
    proof: bytes

    def __post_init__(self) -> None:
        require_key(self.device, "device")
        require_id(self.sku, "sku")
        require_bytes(self.proof, crypto.SIGNATURE_BYTES, "proof")


@dataclass(frozen=True, slots=True)
class DeviceBody(Record):
    device: bytes


@dataclass(frozen=True, slots=True)
class TransferBody(Record):
    device: bytes
    new_licensee: bytes


def _licensee(ctx: Ctx, key: bytes) -> Member:
    member = ctx.get(k_member(key), Member)
    if member is None or "licensee" not in member.roles:
        raise Reject("not_a_licensee", "the owner must be a member with the licensee role")
    return member


def enrol(ctx: Ctx, body: dict[str, Any]) -> None:
    b = EnrolBody.from_value(body)
    _licensee(ctx, ctx.signer)
    if ctx.get(k_device(b.device), Device) is not None:
        raise Reject("already_enrolled", b.device.hex())
    if not verify_possession(b.device, ctx.signer, ctx.block.chain_id, b.proof):
        raise Reject("bad_proof", "device proof of possession does not verify")
    ctx.put(k_device(b.device), Device(b.device, ctx.signer, b.sku, False, 0, GENESIS_PREV, {}, 0))
    ctx.emit("device_enrolled", device=b.device, licensee=ctx.signer, sku=b.sku)


def _owned(ctx: Ctx, device: bytes) -> Device:
    dev = ctx.must(k_device(device), Device, "unknown_device", device.hex())
    if dev.licensee != ctx.signer:
        raise Reject("not_owner", "only the owning licensee may do this")
    return dev


def revoke(ctx: Ctx, body: dict[str, Any]) -> None:
    dev = _owned(ctx, DeviceBody.from_value(body).device)
    ctx.put(k_device(dev.device), replace(dev, revoked=True))
    ctx.emit("device_revoked", device=dev.device)


def transfer(ctx: Ctx, body: dict[str, Any]) -> None:
    b = TransferBody.from_value(body)
    dev = _owned(ctx, b.device)
    _licensee(ctx, b.new_licensee)
    ctx.put(k_device(dev.device), replace(dev, licensee=b.new_licensee))
    ctx.emit("device_transferred", device=dev.device, to=b.new_licensee)


def report(ctx: Ctx, body: dict[str, Any]) -> None:
    r = UsageReport.from_value(body, TX_USAGE_REPORT)
    dev = ctx.must(k_device(ctx.signer), Device, "unknown_device", ctx.signer.hex())
    if dev.revoked:
        raise Reject("revoked_device", ctx.signer.hex())
    seq = ctx.nonce
    if seq <= dev.last_seq:
        raise Reject("replay", f"sequence {seq} already reported (last {dev.last_seq})")
    if r.sku != dev.sku:
        raise Reject("wrong_sku", f"device is enrolled for {dev.sku}")
    anomalies = []
    if seq > dev.last_seq + 1:
        anomalies.append(("gap", seq - dev.last_seq - 1))
    elif r.prev_hash != dev.last_hash:
        anomalies.append(("prev_hash_mismatch", seq))
    deltas: dict[str, int] = {}
    for metric, value in sorted(r.registers.items()):
        last = dev.registers.get(metric, 0)
        if value < last:
            anomalies.append(("register_rollback", last - value))
        else:
            deltas[metric] = value - last
    for kind, amount in anomalies:
        ctx.emit("usage_anomaly", device=dev.device, anomaly=kind, amount=amount)
    registers = {**dev.registers, **r.registers}
    ctx.put(
        k_device(dev.device),
        Device(
            device=dev.device,
            licensee=dev.licensee,
            sku=dev.sku,
            revoked=dev.revoked,
            last_seq=seq,
            last_hash=ctx.tx_id,
            registers=registers,
            anomalies=dev.anomalies + len(anomalies),
        ),
    )
    if any(deltas.values()):
        _accrue(ctx, dev, r, {m: q for m, q in deltas.items() if q})


def _covering_licences(ctx: Ctx, dev: Device, territory: str) -> list[tuple[Licence, LicenceTerms]]:
    ids = ctx.get_value(k_bom(dev.licensee, dev.sku)) or []
    out = []
    for licence_id in ids:
        lic = ctx.get(k_licence(licence_id), Licence)
        if lic is None or lic.status != "active":
            continue
        now = ctx.block.time_ms
        terms = lic.terms_at(now)
        if (
            terms.licensee == dev.licensee
            and terms.start_ms <= now < terms.end_ms
            and (lic.terminated_ms == 0 or now < lic.terminated_ms)
            and dev.sku in terms.skus
            and (not terms.territories or territory in terms.territories)
        ):
            out.append((lic, terms))
    return out


def _accrue(ctx: Ctx, dev: Device, r: UsageReport, deltas: dict[str, int]) -> None:
    licences = _covering_licences(ctx, dev, r.territory)
    if not licences:
        month = period_of("month", ctx.block.time_ms).period_id
        key = k_unlicensed(dev.licensee, dev.sku, month)
        totals = ctx.get_value(key) or {}
        for metric, qty in deltas.items():
            totals[metric] = totals.get(metric, 0) + qty
        ctx.put_value(key, totals)
        ctx.emit(
            "unlicensed_use",
            device=dev.device,
            sku=dev.sku,
            territory=r.territory,
            quantities=deltas,
        )
        return
    for lic, terms in licences:
        period = period_of(lic.current.period, ctx.block.time_ms)
        product_class = terms.product_class(dev.sku)
        key = k_accrual(lic.licence_id, period.period_id)
        acc = ctx.get(key, Accrual) or Accrual({}, 0)
        # a new value sharing the untouched parts of the old one (records are never mutated)
        quantities = dict(acc.quantities)
        old_classes = quantities.get(r.territory, {})
        old_bucket = old_classes.get(product_class)
        classes = quantities[r.territory] = dict(old_classes)
        bucket = classes[product_class] = dict(old_bucket or {})
        added = dict(deltas)
        if ctx.state.get(k_billed_device(lic.licence_id, dev.device)) is None:
            ctx.put_value(k_billed_device(lic.licence_id, dev.device), period.period_id)
            added[NEW_DEVICES] = 1
        for metric, qty in sorted(added.items()):
            bucket[metric] = bucket.get(metric, 0) + qty
        ctx.put(k_accrual_leaf(lic.licence_id, period.period_id, acc.records), UsageLeaf(ctx.tx_id))
        accrual = Accrual(quantities, acc.records + 1)
        if old_bucket is not None and _same_keys_in_range(old_bucket, bucket, added, quantities):
            ctx.put_vouched(key, accrual)  # the next report replaces it: encoded once a block
        else:
            ctx.put(key, accrual)
        ctx.emit(
            "accrued",
            licence_id=lic.licence_id,
            period_id=period.period_id,
            territory=r.territory,
            product_class=product_class,
            quantities=added,
        )


MAX_WRITE_BACK_ITEMS = 4096


def _same_keys_in_range(
    old_bucket: dict[str, int],
    bucket: dict[str, int],
    added: dict[str, int],
    quantities: dict[str, dict[str, dict[str, int]]],
) -> bool:
    """What `Ctx.put_vouched` needs of a new accrual: it has the old accrual's keys (the
    bucket added none) in the old one's canonical order (copied maps keep it), so it is
    what decoding its bytes gives; the counts it changed are within the codec's integer
    range (the others were encoded before); and it holds at most MAX_WRITE_BACK_ITEMS
    territories, classes and metrics, whose names are the ledger's validated ids (at most
    64 characters), so its encoding is far below the state's value limit."""
    if len(bucket) != len(old_bucket):
        return False
    for metric in added:
        if bucket[metric] > codec.INT_MAX:
            return False
    items = len(quantities)
    for classes in quantities.values():
        items += len(classes)
        for metrics in classes.values():
            items += len(metrics)
    return items <= MAX_WRITE_BACK_ITEMS


@dataclass(frozen=True, slots=True)
class UsageLeaf(Record):
    """One usage record billed under a licence and period: the id of its `usage.report`
    transaction. A statement's `usage_root` is the Merkle root of these, in accrual order."""

    tx_id: bytes

    def __post_init__(self) -> None:
        require_bytes(self.tx_id, 32, "tx_id")


HANDLERS = {
    "device.enrol": enrol,
    "device.revoke": revoke,
    "device.transfer": transfer,
    TX_USAGE_REPORT: report,
}
