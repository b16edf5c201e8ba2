"""Records the licensing ledger keeps in state, and the key each one lives under.

Rule kept here: every state value is the canonical encoding of one of these records,
under a key built by the functions below, so state is self-describing and every replica
writes identical bytes. Money is integer minor units with an ISO 4217 currency code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from node.ledger import crypto
from node.ledger.calendar import PERIOD_KINDS
from node.ledger.records import Record, require, require_bytes, require_uint

ROLES = ("licensor", "licensee", "pool", "auditor", "validator", "bank")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_AMOUNT = 2**62
BPS = 10_000


def require_id(value: str, name: str) -> None:
    require(isinstance(value, str) and bool(ID_RE.match(value)), f"bad {name}")


def require_key(value: bytes, name: str) -> None:
    require_bytes(value, crypto.PUBLIC_KEY_BYTES, name)


def require_amount(value: int, name: str) -> None:
    require_uint(value, name, MAX_AMOUNT)


# -- keys ------------------------------------------------------------------------------


def k_member(key: bytes) -> bytes:
    return b"member/" + key


def k_nonce(key: bytes) -> bytes:
    return b"nonce/" + key


def k_proposal(proposal_id: str) -> bytes:
    return b"gov/" + proposal_id.encode()


def k_rule(code_hash: bytes) -> bytes:
    return b"rule/" + code_hash


def k_licence(licence_id: str) -> bytes:
    return b"licence/" + licence_id.encode()


def k_bom(licensee: bytes, sku: str) -> bytes:
    return b"bom/" + licensee + sku.encode()


def k_device(device: bytes) -> bytes:
    return b"device/" + device


def k_account(member: bytes, currency: str) -> bytes:
    return b"acct/" + member + currency.encode()


def k_accrual(licence_id: str, period_id: str) -> bytes:
    return b"accrual/" + licence_id.encode() + b"/" + period_id.encode()


def k_accrual_leaf(licence_id: str, period_id: str, index: int) -> bytes:
    return k_accrual(licence_id, period_id) + b"/" + index.to_bytes(4, "big")


def k_statement(licence_id: str, period_id: str) -> bytes:
    return b"stmt/" + licence_id.encode() + b"/" + period_id.encode()


def k_statement_closed(licence_id: str, period_id: str) -> bytes:
    """The statement's record exactly as its period close fixed it (never rewritten): its
    SHA-256 is the `statement_hash` every event about the statement carries."""
    return b"stmt-closed/" + licence_id.encode() + b"/" + period_id.encode()


def k_close_due(end_ms: int, licence_id: str) -> bytes:
    """Index of licence periods to close, ordered by period end."""
    return b"due-close/" + end_ms.to_bytes(8, "big") + licence_id.encode()


def k_settle_due(due_ms: int, licence_id: str, period_id: str) -> bytes:
    """Index of statements to settle, ordered by due date."""
    return b"due-pay/" + due_ms.to_bytes(8, "big") + k_statement(licence_id, period_id)


def k_billed_device(licence_id: str, device: bytes) -> bytes:
    """Marks a device whose usage has accrued under a licence (one-time device fees)."""
    return b"billed-device/" + licence_id.encode() + b"/" + device


def k_unlicensed(licensee: bytes, sku: str, period_id: str) -> bytes:
    return b"unlicensed/" + licensee + sku.encode() + b"/" + period_id.encode()


def k_totals(currency: str) -> bytes:
    return b"totals/" + currency.encode()


def k_ytd(licence_id: str, contract_year: int) -> bytes:
    """Year-to-date figures of a licence's contract year (1, 2, ...)."""
    return b"ytd/" + licence_id.encode() + b"/" + str(contract_year).encode()


def k_deposit(deposit_id: str) -> bytes:
    return b"deposit/" + deposit_id.encode()


def k_withdrawal(withdrawal_id: str) -> bytes:
    return b"withdrawal/" + withdrawal_id.encode()


def k_overdue(licensee: bytes, due_ms: int, statement_key: bytes) -> bytes:
    """Statements past due and not fully paid, retried when the licensee deposits."""
    return b"overdue/" + licensee + due_ms.to_bytes(8, "big") + statement_key


def k_dispute(statement_key: bytes, line: int) -> bytes:
    return b"dispute/" + statement_key + b"/" + line.to_bytes(2, "big")


def k_adjustment(statement_key: bytes, line: int) -> bytes:
    return b"adjust/" + statement_key + b"/" + line.to_bytes(2, "big")


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member(Record):
    name: str
    public_key: bytes
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        require_id(self.name, "member name")
        require_key(self.public_key, "public_key")
        require(len(self.roles) >= 1, "a member has at least one role")
        require(all(r in ROLES for r in self.roles), f"roles must be among {ROLES}")
        require(list(self.roles) == sorted(set(self.roles)), "roles sorted and unique")


@dataclass(frozen=True, slots=True)
class PoolShare(Record):
    licensor: bytes
    weight: int

    def __post_init__(self) -> None:
        require_key(self.licensor, "pool licensor")
        require_uint(self.weight, "weight", 10**9)


@dataclass(frozen=True, slots=True)
class LicenceTerms(Record):
    """Everything both parties sign. `rule` is the code hash of a deployed rule."""

    licence_id: str
    licensor: bytes  # the pool administrator when `pool` is non-empty
    licensee: bytes
    pool: tuple[PoolShare, ...]
    skus: tuple[str, ...]
    product_classes: dict[str, str]  # sku -> product class; an unmapped sku is its own class
    territories: tuple[str, ...]  # empty: worldwide
    currency: str
    period: str
    start_ms: int
    end_ms: int
    payment_due_days: int
    rule: bytes
    rule_params: dict[str, Any]
    upfront_fee: int
    minimum_annual: int
    annual_cap: int  # 0: none
    advance: int  # recouped against earned royalties
    late_interest_bps: int  # per year, actual/365
    upstream_licence: str  # "" or the licence this one sublicenses under
    passthrough_bps: int  # share of this licence's income owed upstream
    legal_text_hash: bytes
    arbiter: bytes  # b"" or the member whose signature alone resolves a dispute

    def __post_init__(self) -> None:
        require_id(self.licence_id, "licence_id")
        require_key(self.licensor, "licensor")
        require_key(self.licensee, "licensee")
        require(self.licensor != self.licensee, "licensor and licensee differ")
        require(len(self.pool) <= 64, "pool too large")
        require(sum(p.weight for p in self.pool) > 0 or not self.pool, "pool weights sum > 0")
        require(1 <= len(self.skus) <= 64 and all(require_id_ok(s) for s in self.skus), "skus")
        require(
            all(
                sku in self.skus and require_id_ok(cls) for sku, cls in self.product_classes.items()
            ),
            "product_classes maps licensed skus to product class ids",
        )
        require(all(re.match(r"^[A-Z]{2}$", t) for t in self.territories), "territories")
        require(bool(CURRENCY_RE.match(self.currency)), "currency must be ISO 4217")
        require(self.period in PERIOD_KINDS, f"period must be one of {PERIOD_KINDS}")
        require_uint(self.start_ms, "start_ms")
        require_uint(self.end_ms, "end_ms")
        require(self.start_ms < self.end_ms, "start before end")
        require_uint(self.payment_due_days, "payment_due_days", 3650)
        require_bytes(self.rule, crypto.HASH_BYTES, "rule")
        for name in ("upfront_fee", "minimum_annual", "annual_cap", "advance"):
            require_amount(getattr(self, name), name)
        require_uint(self.late_interest_bps, "late_interest_bps", 100 * BPS)
        require(self.upstream_licence == "" or bool(ID_RE.match(self.upstream_licence)), "up")
        require_uint(self.passthrough_bps, "passthrough_bps", BPS)
        require(bool(self.upstream_licence) == (self.passthrough_bps > 0), "passthrough pair")
        require_bytes(self.legal_text_hash, crypto.HASH_BYTES, "legal_text_hash")
        if self.arbiter:
            require_key(self.arbiter, "arbiter")
            require(self.arbiter not in (self.licensor, self.licensee), "arbiter is no party")

    def terms_hash(self) -> bytes:
        return crypto.sha256(self.encode())

    def product_class(self, sku: str) -> str:
        """The pricing class a SKU's usage accrues under (the SKU itself if unmapped)."""
        cls: str = self.product_classes.get(sku, sku)
        return cls

    def parties(self) -> tuple[bytes, ...]:
        return tuple(sorted({self.licensor, self.licensee}))


def require_id_ok(value: str) -> bool:
    return isinstance(value, str) and bool(ID_RE.match(value))


@dataclass(frozen=True, slots=True)
class TermsVersion(Record):
    """One version of a licence's terms, in force from `effective_ms` (a period start)."""

    terms: LicenceTerms
    effective_ms: int
    signed_by: tuple[bytes, ...]

    def __post_init__(self) -> None:
        require_uint(self.effective_ms, "effective_ms")


@dataclass(frozen=True, slots=True)
class Licence(Record):
    """A licence's lifecycle: proposed -> active -> terminated; amendments pend as versions."""

    licence_id: str
    status: str  # proposed | active | terminated
    versions: tuple[TermsVersion, ...]  # in force, oldest first
    pending: TermsVersion | None  # an amendment (or the first terms) awaiting signatures
    open_period_start_ms: int  # first period not yet closed
    terminated_ms: int  # 0 unless terminated
    advance_remaining: int
    upfront_billed: bool

    def __post_init__(self) -> None:
        require(self.status in ("proposed", "active", "terminated"), "status")
        require(len(self.versions) <= 64, "too many amendments")

    def terms_at(self, ms: int) -> LicenceTerms:
        current = self.versions[0].terms
        for v in self.versions:
            if v.effective_ms <= ms:
                current = v.terms
        return current

    @property
    def current(self) -> LicenceTerms:
        return self.versions[-1].terms if self.versions else self.first_terms

    @property
    def first_terms(self) -> LicenceTerms:
        if self.versions:
            return self.versions[0].terms
        assert self.pending is not None
        return self.pending.terms


@dataclass(frozen=True, slots=True)
class Device(Record):
    device: bytes
    licensee: bytes
    sku: str
    revoked: bool
    last_seq: int
    last_hash: bytes
    registers: dict[str, int]
    anomalies: int

    def __post_init__(self) -> None:
        require_key(self.device, "device")
        require_key(self.licensee, "licensee")
        require_uint(self.last_seq, "last_seq")


@dataclass(frozen=True, slots=True)
class Account(Record):
    balance: int

    def __post_init__(self) -> None:
        require_amount(self.balance, "balance")


@dataclass(frozen=True, slots=True)
class Accrual(Record):
    """Usage aggregated for one licence and period by pricing dimension:
    {territory: {product_class: {metric: quantity}}}."""

    quantities: dict[str, dict[str, dict[str, int]]]
    records: int

    def __post_init__(self) -> None:
        require_uint(self.records, "records")


@dataclass(frozen=True, slots=True)
class LineItem(Record):
    label: str
    amount: int  # may be negative (a recoupment or credit)

    def __post_init__(self) -> None:
        require(0 < len(self.label) <= 128, "label")
        require(-MAX_AMOUNT <= self.amount <= MAX_AMOUNT, "amount range")


@dataclass(frozen=True, slots=True)
class Statement(Record):
    """A licence's statement for one period.

    What the period close fixed (lines, total, earned, due date, usage root, rule and VM
    versions) never changes afterwards. The rest is settlement state: what has been paid,
    late interest, the lines frozen by open disputes, and `adjustment`, the sum of the
    dispute resolutions (each one also kept as its own `Adjustment` record).
    """

    licence_id: str
    period_id: str
    licensor: bytes
    licensee: bytes
    currency: str
    lines: tuple[LineItem, ...]
    total: int
    earned: int  # royalty earned by the rule this period (before MG/cap/advance)
    due_ms: int
    usage_root: bytes
    usage_count: int
    rule: bytes
    vm_version: int
    paid: int  # principal paid
    interest_accrued: int
    interest_paid: int
    interest_from_ms: int  # late interest accrues on the unpaid principal from here
    frozen: tuple[int, ...]  # indices of lines under an open dispute
    adjustment: int  # net change by dispute resolutions (never positive)
    status: str  # open | paid | disputed | rule_failed

    def __post_init__(self) -> None:
        require_amount(self.total, "total")
        require(self.total == sum(li.amount for li in self.lines), "total is the sum of lines")
        require_amount(self.paid, "paid")
        require(-self.total <= self.adjustment <= 0, "adjustment between -total and 0")
        require(self.paid <= self.payable_total, "paid at most the adjusted total")
        require(list(self.frozen) == sorted(set(self.frozen)), "frozen lines sorted, unique")
        require(all(0 <= i < len(self.lines) for i in self.frozen), "frozen lines exist")
        require(self.status in ("open", "paid", "disputed", "rule_failed"), "status")
        require(0 <= self.interest_paid <= self.interest_accrued, "interest paid <= accrued")

    @property
    def payable_total(self) -> int:
        return self.total + self.adjustment

    @property
    def disputed_amount(self) -> int:
        return sum(self.lines[i].amount for i in self.frozen)

    @property
    def principal_outstanding(self) -> int:
        """Unpaid principal that is payable now (disputed lines are frozen)."""
        return max(0, self.payable_total - self.paid - self.disputed_amount)

    @property
    def interest_outstanding(self) -> int:
        return self.interest_accrued - self.interest_paid


@dataclass(frozen=True, slots=True)
class Dispute(Record):
    """A dispute of one statement line: opened with evidence, resolved once."""

    statement_key: bytes
    line: int
    original: int  # the line's amount when disputed
    opened_by: bytes
    evidence_hash: bytes
    opened_ms: int
    votes: dict[str, int]  # party key (hex) -> the amount that party signed for
    status: str  # open | resolved

    def __post_init__(self) -> None:
        require(self.status in ("open", "resolved"), "status")
        require_amount(self.original, "original")


@dataclass(frozen=True, slots=True)
class Adjustment(Record):
    """A resolved dispute's correction: a new record; the statement's lines stay as closed."""

    statement_key: bytes
    line: int
    original: int
    agreed: int
    delta: int  # agreed - original
    resolved_by: tuple[bytes, ...]  # both parties, or the arbiter
    resolved_ms: int
    evidence_hash: bytes

    def __post_init__(self) -> None:
        require(self.delta == self.agreed - self.original, "delta is agreed - original")
        require(0 <= self.agreed <= self.original, "agreed between 0 and the original")


@dataclass(frozen=True, slots=True)
class Proposal(Record):
    """A governance change awaiting approval by more than two thirds of members."""

    proposal_id: str
    action: str  # add_member | remove_member | set_validators
    member: Member | None
    remove_key: bytes
    validators: tuple[bytes, ...]
    effective_height: int
    approvals: tuple[bytes, ...]
    executed: bool
