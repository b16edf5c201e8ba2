"""The demo licensing web (issue 5's scenario), defined once for the ledger test and
`alps demo`: its members, products, the four licences and the transactions that deploy
them, in stages.

Rule kept here: everything is a pure function of the members' public keys and a
`WebShape`, so deploying twice produces byte-identical transactions (same signer, nonce
and body give the same id), and a deployment interrupted half-way is resumed by sending
the same stages again.

The web: an OEM (`oem`) makes cameras (`cam-1`) and hubs (`hub-1`). It licenses a video
codec from `codec` (tiered per unit, cameras only), radio patents from a pool
(`radio-pool`, apportioned to `r1`, `r2`, `r3` by patent count) and an operating system
from `osv` (2% of net sales with a minimum annual guarantee); `osv` sublicenses graphics
from `gfx` and passes 15% of its OS income upstream. `bank` acknowledges deposits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts_vm.rules import LEDGER_RULES
from node.ledger import crypto
from node.ledger.calendar import PERIOD_KINDS
from node.ledger.model import LicenceTerms, PoolShare

MEMBER_ROLES: dict[str, tuple[str, ...]] = {
    "oem": ("licensee",),
    "codec": ("licensor",),
    "radio-pool": ("pool",),
    "r1": ("licensor",),
    "r2": ("licensor",),
    "r3": ("licensor",),
    "osv": ("licensee", "licensor"),
    "gfx": ("licensor",),
    "bank": ("bank",),
}
PATENTS = {"r1": 10, "r2": 7, "r3": 3}  # pool weights
PRICE = {"cam-1": 8_000, "hub-1": 4_500}  # net sales price per unit, USD cents
# The OEM's production-line gateways: (sku, territory), one device agent each.
GATEWAYS = (("cam-1", "DE"), ("cam-1", "US"), ("cam-1", "JP"), ("hub-1", "DE"), ("hub-1", "US"))
BOM = {"cam-1": ("CODEC", "RADIO", "OS"), "hub-1": ("RADIO", "OS")}
RULE_NAMES = ("tiered_with_cap", "per_unit", "percent_of_net_sales")
CODEC_TIERS = [[1_000, 0], [20_000, 50], [None, 25]]  # per contract year, marginal
RADIO_FEE_PER_UNIT = 120
OS_RATE_BP = 200
OS_MINIMUM_ANNUAL = 20_000_000  # USD 200,000.00
OS_PASSTHROUGH_BPS = 1_500
LEGAL_TEXT_HASH = b"\x01" * 32
CURRENCY = "USD"
LICENSORS = ("codec", "r1", "r2", "r3", "osv", "gfx")  # who receives royalties
LICENSOR_NAMES = ("codec", "radio-pool", "gfx", "osv")  # who proposes licences


class WebError(ValueError):
    """A WebShape out of range."""


@dataclass(frozen=True, slots=True)
class WebShape:
    """The knobs a deployment may turn; the scenario's defaults are quarterly."""

    start_ms: int
    end_ms: int
    period: str = "quarter"
    payment_due_days: int = 30
    late_interest_bps: int = 800
    os_minimum_annual: int = OS_MINIMUM_ANNUAL

    def __post_init__(self) -> None:
        if self.period not in PERIOD_KINDS:
            raise WebError(f"period must be one of {PERIOD_KINDS}")
        if not 0 <= self.start_ms < self.end_ms:
            raise WebError("need 0 <= start_ms < end_ms")
        if self.payment_due_days < 0 or self.os_minimum_annual < 0:
            raise WebError("payment_due_days and os_minimum_annual must be >= 0")


@dataclass(frozen=True, slots=True)
class Step:
    """One transaction to send: who signs it, its type and body (nonce added when sent)."""

    signer: str
    tx_type: str
    body: dict[str, Any] = field(hash=False)


def code_hash(source: str) -> bytes:
    return crypto.sha256(source.encode())


def licences(key: Mapping[str, bytes], shape: WebShape) -> dict[str, LicenceTerms]:
    """The four licences by id: CODEC, RADIO and OS (the OEM's), GFX-OS (the OS vendor's)."""

    def terms(licence_id: str, rule: str, params: dict[str, Any], **kw: Any) -> LicenceTerms:
        base: dict[str, Any] = dict(
            licence_id=licence_id,
            licensee=key["oem"],
            pool=(),
            skus=("cam-1", "hub-1"),
            product_classes={},
            territories=(),
            currency=CURRENCY,
            period=shape.period,
            start_ms=shape.start_ms,
            end_ms=shape.end_ms,
            payment_due_days=shape.payment_due_days,
            rule=code_hash(LEDGER_RULES[rule]),
            rule_params=params,
            upfront_fee=0,
            minimum_annual=0,
            annual_cap=0,
            advance=0,
            late_interest_bps=shape.late_interest_bps,
            upstream_licence="",
            passthrough_bps=0,
            legal_text_hash=LEGAL_TEXT_HASH,
            arbiter=b"",
        )
        base.update(kw)
        return LicenceTerms(**base)

    return {
        "CODEC": terms(
            "CODEC",
            "tiered_with_cap",
            {"tiers": CODEC_TIERS, "annual_cap": None},
            licensor=key["codec"],
            skus=("cam-1",),
        ),
        "RADIO": terms(
            "RADIO",
            "per_unit",
            {"fee_per_unit": RADIO_FEE_PER_UNIT},
            licensor=key["radio-pool"],
            pool=tuple(PoolShare(key[n], w) for n, w in PATENTS.items()),
        ),
        "GFX-OS": terms(
            "GFX-OS",
            "per_unit",
            {"fee_per_unit": 0},
            licensor=key["gfx"],
            licensee=key["osv"],
            skus=("os-image",),
        ),
        "OS": terms(
            "OS",
            "percent_of_net_sales",
            {"rate_bp": OS_RATE_BP, "sublicense_rate_bp": 0},
            licensor=key["osv"],
            minimum_annual=shape.os_minimum_annual,
            upstream_licence="GFX-OS",
            passthrough_bps=OS_PASSTHROUGH_BPS,
        ),
    }


def deployment(key: Mapping[str, bytes], shape: WebShape) -> list[list[Step]]:
    """The stages that deploy the web; each stage must commit before the next is sent."""
    lic = licences(key, shape)
    first = ("CODEC", "RADIO", "GFX-OS")

    def propose(licence_id: str) -> Step:
        t = lic[licence_id]
        proposer = next(n for n in LICENSOR_NAMES if key[n] == t.licensor)
        return Step(proposer, "licence.propose", {"terms": t.to_value()})

    def sign(licence_id: str) -> Step:
        t = lic[licence_id]
        cosigner = "osv" if t.licensee == key["osv"] else "oem"
        return Step(
            cosigner, "licence.sign", {"licence_id": licence_id, "terms_hash": t.terms_hash()}
        )

    return [
        [Step("codec", "rule.deploy", {"source": LEDGER_RULES[r]}) for r in RULE_NAMES],
        [propose(lid) for lid in first],
        [sign(lid) for lid in first],
        [propose("OS")],  # after GFX-OS exists: OS names it upstream
        [sign("OS")]
        + [Step("oem", "bom.set", {"sku": s, "licences": list(ls)}) for s, ls in BOM.items()],
    ]


def funding(deposit_id: str, amount: int) -> list[list[Step]]:
    """The OEM deposits `amount` (USD cents) and the bank acknowledges it."""
    return [
        [
            Step(
                "oem",
                "account.deposit",
                {
                    "deposit_id": deposit_id,
                    "currency": CURRENCY,
                    "amount": amount,
                    "reference": "escrow",
                    "counterparty": b"",
                },
            )
        ],
        [Step("bank", "account.ack_deposit", {"deposit_id": deposit_id})],
    ]


def enrolment(device: bytes, sku: str, proof: bytes) -> Step:
    """The OEM enrols a device with the device's proof of possession."""
    return Step("oem", "device.enrol", {"device": device, "sku": sku, "proof": proof})
