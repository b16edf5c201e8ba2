"""The JSON answers of the API as pydantic models (FastAPI derives the OpenAPI document
from them).

Rule kept here: byte strings are lowercase hex, money is integer minor units, times are
milliseconds since the epoch; a model mirrors its ledger record field for field, so
`jsonable(record.to_value())` validates straight into it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Hex = str


def jsonable(value: Any) -> Any:
    """A canonical ledger value as JSON: bytes become lowercase hex, tuples lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class ErrorAnswer(BaseModel):
    error: str = Field(description="stable machine-readable code")
    detail: str = ""


# -- v1 contract (docs/api.md) --------------------------------------------------------------


class SubmitResultOut(BaseModel):
    tx_id: Hex
    status: Literal["pending", "committed", "rejected"]
    code: str
    detail: str
    height: int | None


class SubmitAnswer(BaseModel):
    results: list[SubmitResultOut]


class EventOut(BaseModel):
    kind: str
    attrs: dict[str, Any]


class ReceiptOut(BaseModel):
    accepted: bool
    code: str
    detail: str
    events: list[EventOut]


class ReceiptWithIdOut(ReceiptOut):
    tx_id: Hex


class TxOut(BaseModel):
    chain_id: str
    tx_type: str
    body: dict[str, Any]
    signer: Hex
    nonce: int
    signature: Hex


class TxAnswer(BaseModel):
    tx_id: Hex
    status: Literal["pending", "committed", "unknown"]
    height: int | None
    index: int | None
    receipt: ReceiptOut | None
    tx: TxOut | None = Field(None, description="the transaction, once committed")


class DeviceOut(BaseModel):
    device: Hex
    licensee: Hex
    sku: str
    enrolled: bool
    revoked: bool
    last_seq: int
    last_hash: Hex
    registers: dict[str, int]
    anomalies: int


class StatusOut(BaseModel):
    """node.status(); fields beyond these are passed through."""

    model_config = ConfigDict(extra="allow")

    chain_id: str
    height: int
    view: int
    primary: Hex
    validators: list[Hex]
    peers: list[Any]
    mempool: int
    mempool_max: int
    syncing: bool
    genesis_hash: Hex


class HealthOut(BaseModel):
    ok: bool
    syncing: bool


# -- blocks and proofs ----------------------------------------------------------------------


class BlockOut(BaseModel):
    height: int
    hash: Hex
    chain_id: str
    parent_hash: Hex
    proposer: Hex
    timestamp_ms: int
    tx_count: int
    receipt_count: int = Field(description="tx_count + end-of-block receipts")
    tx_root: Hex
    receipt_root: Hex
    state_digest: Hex
    validator_set_hash: Hex
    certified: bool = Field(description="this node holds the block's commit certificate")
    tx_ids: list[Hex]


class ReceiptsPage(BaseModel):
    height: int
    receipts: list[ReceiptWithIdOut]
    next: int | None = Field(description="offset of the next page, null at the end")


class CommitSignatureOut(BaseModel):
    validator: Hex
    signature: Hex


class CertificateOut(BaseModel):
    height: int
    view: int
    block_hash: Hex
    signatures: list[CommitSignatureOut]
    encoded: Hex = Field(description="canonical encoding (what proofs carry)")


class ProofOut(BaseModel):
    kind: Literal["tx", "receipt"]
    chain_id: str
    tx_id: Hex
    height: int
    index: int
    tree_size: int
    path: list[Hex] = Field(description="RFC 6962 audit path, leaf to root")
    leaf: Hex = Field(description="encoded transaction or receipt")
    header: Hex = Field(description="encoded block header")
    certificate: Hex = Field(description="encoded commit certificate of the last header")
    descendants: list[Hex] = Field(
        default_factory=list,
        description="encoded headers after `header` up to a certified one (past null blocks)",
    )


class EventProofOut(BaseModel):
    event_index: int
    receipt: ProofOut


class UsageProofOut(BaseModel):
    leaf: Hex = Field(description="encoded usage leaf (the usage.report transaction id)")
    index: int
    path: list[Hex] = Field(description="audit path under the statement's usage_root")
    tx: ProofOut


class StatementProofOut(BaseModel):
    kind: Literal["statement"]
    chain_id: str
    statement_id: str
    statement: Hex = Field(description="encoded Statement record as its period close fixed it")
    close: EventProofOut
    payments: list[EventProofOut]
    usage: UsageProofOut | None


class SetChangeOut(BaseModel):
    height: int
    validators: list[Hex]
    header: Hex
    certificate: Hex
    descendants: list[Hex]


class ValidatorHistoryOut(BaseModel):
    chain_id: str
    changes: list[SetChangeOut] = Field(description="validator set changes, in height order")


# -- consortium state -----------------------------------------------------------------------


class MemberOut(BaseModel):
    name: str
    public_key: Hex
    roles: list[str]


class MemberDetailOut(MemberOut):
    nonce: int = Field(description="last executed transaction nonce; the next is nonce + 1")


class MembersPage(BaseModel):
    members: list[MemberOut]
    next: str | None = Field(description="cursor for `after`, null at the end")


class PoolShareOut(BaseModel):
    licensor: Hex
    weight: int


class TermsOut(BaseModel):
    licence_id: str
    licensor: Hex
    licensee: Hex
    pool: list[PoolShareOut]
    skus: list[str]
    product_classes: dict[str, str]
    territories: list[str]
    currency: str
    period: str
    start_ms: int
    end_ms: int
    payment_due_days: int
    rule: Hex
    rule_params: dict[str, Any]
    upfront_fee: int
    minimum_annual: int
    annual_cap: int
    advance: int
    late_interest_bps: int
    upstream_licence: str
    passthrough_bps: int
    legal_text_hash: Hex
    arbiter: Hex = Field(description='"" or the member whose signature alone resolves a dispute')


class TermsVersionOut(BaseModel):
    terms: TermsOut
    effective_ms: int
    signed_by: list[Hex]


class LicenceOut(BaseModel):
    licence_id: str
    status: Literal["proposed", "active", "terminated"]
    versions: list[TermsVersionOut]
    pending: TermsVersionOut | None
    open_period_start_ms: int
    terminated_ms: int
    advance_remaining: int
    upfront_billed: bool


class LicenceSummary(BaseModel):
    licence_id: str
    status: str
    licensor: Hex
    licensee: Hex
    skus: list[str]
    currency: str
    period: str
    start_ms: int
    end_ms: int
    terms_hash: Hex


class LicencesPage(BaseModel):
    licences: list[LicenceSummary]
    next: str | None


class LineOut(BaseModel):
    label: str
    amount: int
    disputed: bool = Field(description="frozen by an open dispute")


class StatementOut(BaseModel):
    statement_id: str = Field(description="<licence_id>@<period_id>")
    licence_id: str
    period_id: str
    licensor: Hex
    licensee: Hex
    currency: str
    lines: list[LineOut]
    total: int
    earned: int
    due_ms: int
    usage_root: Hex
    usage_count: int
    rule: Hex
    vm_version: int
    paid: int
    interest_accrued: int
    interest_paid: int
    interest_from_ms: int
    status: str
    frozen: list[int] = Field(description="indices of lines under an open dispute")
    adjustment: int = Field(description="net change by dispute resolutions (<= 0)")
    payable_total: int
    principal_outstanding: int
    interest_outstanding: int
    disputed_amount: int


class StatementsPage(BaseModel):
    statements: list[StatementOut]
    next: str | None


class AccrualOut(BaseModel):
    period_id: str
    records: int
    quantities: dict[str, dict[str, dict[str, int]]] = Field(
        description="{territory: {product_class: {metric: qty}}}"
    )


class AccrualsAnswer(BaseModel):
    licence_id: str
    periods: list[AccrualOut]
    estimate_at_ms: int
    estimate: StatementOut | None = Field(
        description="the statement the open period would get if it closed at estimate_at_ms"
    )
    estimate_error: str | None


class BalanceOut(BaseModel):
    currency: str
    balance: int


class AccountOut(BaseModel):
    member: Hex
    name: str | None
    balances: list[BalanceOut]


# -- admin ----------------------------------------------------------------------------------


class PeersOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    validators: list[Hex]
    peers: list[Any]


class LogLevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["debug", "info", "warning", "error", "critical"]


class LogLevelOut(BaseModel):
    level: str
