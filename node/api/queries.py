"""Read-only queries over the chain store, answered as API models.

Rules kept here: every list is paged (at most `LIMIT_MAX` items, a cursor for the rest)
and every scan examines at most `SCAN_MAX` entries per request, so no request costs more
than a bounded amount of work however large the state grows. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from node.api.errors import ApiError, bad_request, not_found
from node.api.models import (
    AccountOut,
    AccrualOut,
    AccrualsAnswer,
    BalanceOut,
    BlockOut,
    CertificateOut,
    DeviceOut,
    LicenceOut,
    LicencesPage,
    LicenceSummary,
    MemberDetailOut,
    MemberOut,
    MembersPage,
    ReceiptOut,
    ReceiptsPage,
    ReceiptWithIdOut,
    StatementOut,
    StatementsPage,
    TxAnswer,
    TxOut,
    jsonable,
)
from node.ledger import codec, periods
from node.ledger.block import Block, Receipt
from node.ledger.context import Reject
from node.ledger.errors import LedgerError
from node.ledger.model import (
    ID_RE,
    Account,
    Accrual,
    Device,
    Licence,
    Member,
    Statement,
    k_accrual,
    k_device,
    k_licence,
    k_member,
    k_nonce,
    k_statement,
)
from node.store.chain import STATE, ChainStore

LIMIT_MAX = 1000
SCAN_MAX = 100_000
T = TypeVar("T")


def parse_hex(text: str, size: int, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError as exc:
        raise bad_request("bad_hex", f"{what} must be hex") from exc
    if len(value) != size or text != value.hex():
        raise bad_request("bad_hex", f"{what} must be {size} bytes of lowercase hex")
    return value


def parse_id(text: str, what: str) -> str:
    if not ID_RE.match(text):
        raise bad_request("bad_id", f"{what} {text[:80]!r} is not a valid id")
    return text


def scan_after(
    store: ChainStore, prefix: bytes, after: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    """State entries under `prefix` (suffix, value), strictly after `prefix + after`."""
    start = None if after is None else STATE + prefix + after
    n = len(STATE) + len(prefix)
    for key, value in store.kv.scan(STATE + prefix, start=start):
        if start is not None and key == start:
            continue
        yield key[n:], value


def page(
    entries: Iterator[tuple[bytes, bytes]],
    limit: int,
    convert: Callable[[bytes, bytes], T | None],
    cursor: Callable[[bytes], str],
) -> tuple[list[T], str | None]:
    """Up to `limit` converted items (None skips), and the cursor to continue from."""
    items: list[T] = []
    for examined, (suffix, value) in enumerate(entries, 1):
        item = convert(suffix, value)
        if item is not None:
            items.append(item)
        if len(items) == limit or examined == SCAN_MAX:
            return items, cursor(suffix)
    return items, None


# -- transactions and blocks ------------------------------------------------------------------


def receipt_out(r: Receipt) -> ReceiptOut:
    return ReceiptOut.model_validate(
        {"accepted": r.accepted, "code": r.code, "detail": r.detail, "events": _events(r)}
    )


def _events(r: Receipt) -> list[dict[str, object]]:
    return [{"kind": e.kind, "attrs": jsonable(e.attrs)} for e in r.events]


def tx_answer(store: ChainStore, tx_id: bytes, pending: bool) -> TxAnswer:
    location = store.tx_location(tx_id)
    if location is None:
        return TxAnswer(
            tx_id=tx_id.hex(),
            status="pending" if pending else "unknown",
            height=None,
            index=None,
            receipt=None,
            tx=None,
        )
    height, index = location
    block, receipts = _block_and_receipts(store, height)
    tx = block.txs[index]
    return TxAnswer(
        tx_id=tx_id.hex(),
        status="committed",
        height=height,
        index=index,
        receipt=receipt_out(receipts[index]),
        tx=TxOut.model_validate(jsonable(tx.to_value())),
    )


def committed_receipt(store: ChainStore, tx_id: bytes) -> tuple[int, Receipt] | None:
    location = store.tx_location(tx_id)
    if location is None:
        return None
    height, index = location
    return height, _block_and_receipts(store, height)[1][index]


def _block_and_receipts(store: ChainStore, height: int) -> tuple[Block, list[Receipt]]:
    block, receipts = store.block(height), store.receipts(height)
    if block is None or receipts is None:
        raise LedgerError("store_inconsistent", f"block {height} is indexed but missing")
    return block, receipts


def latest_height(store: ChainStore) -> int:
    head = store.head()
    if head is None:
        raise not_found("block", "latest")
    return head.height


def block_out(store: ChainStore, height: int) -> BlockOut:
    block = store.block(height)
    if block is None:
        raise not_found("block", str(height))
    h = block.header
    return BlockOut.model_validate(
        {
            **jsonable(h.to_value()),
            "hash": block.hash().hex(),
            "certified": store.certificate(height) is not None,
            "tx_ids": [tx.tx_id.hex() for tx in block.txs],
        }
    )


def receipts_page(store: ChainStore, height: int, offset: int, limit: int) -> ReceiptsPage:
    receipts = store.receipts(height)
    if receipts is None:
        raise not_found("block", str(height))
    chosen = receipts[offset : offset + limit]
    items = [
        ReceiptWithIdOut.model_validate({**receipt_out(r).model_dump(), "tx_id": r.tx_id.hex()})
        for r in chosen
    ]
    more = offset + limit < len(receipts)
    return ReceiptsPage(height=height, receipts=items, next=offset + limit if more else None)


def certificate_out(store: ChainStore, height: int) -> CertificateOut:
    if store.block_bytes(height) is None:
        raise not_found("block", str(height))
    cert = store.certificate(height)
    if cert is None:
        raise ApiError(404, "not_certified", f"no commit certificate stored for block {height}")
    return CertificateOut.model_validate(
        {**jsonable(cert.to_value()), "encoded": cert.encode().hex()}
    )


# -- devices, members, accounts ---------------------------------------------------------------


def device_out(store: ChainStore, device: bytes) -> DeviceOut:
    raw = store.get_state(k_device(device))
    if raw is None:
        raise not_found("device", device.hex())
    d = Device.decode(raw)
    return DeviceOut.model_validate({**jsonable(d.to_value()), "enrolled": True})


def members_page(store: ChainStore, after: bytes | None, limit: int) -> MembersPage:
    def convert(_suffix: bytes, value: bytes) -> MemberOut:
        return MemberOut.model_validate(jsonable(Member.decode(value).to_value()))

    items, nxt = page(scan_after(store, b"member/", after), limit, convert, bytes.hex)
    return MembersPage(members=items, next=nxt)


def member_out(store: ChainStore, key: bytes) -> MemberDetailOut:
    """A member and its last executed nonce (0 before its first transaction)."""
    raw = store.get_state(k_member(key))
    if raw is None:
        raise not_found("member", key.hex())
    nonce_raw = store.get_state(k_nonce(key))
    nonce = codec.decode(nonce_raw) if nonce_raw is not None else 0
    return MemberDetailOut.model_validate(
        {**jsonable(Member.decode(raw).to_value()), "nonce": nonce}
    )


def raw_block(store: ChainStore, height: int) -> bytes:
    """Canonical msgpack {"height", "block": block bytes, "certificate": bytes | None}:
    exactly what the node stored, for verifiers that re-derive everything themselves."""
    block = store.block_bytes(height)
    if block is None:
        raise not_found("block", str(height))
    cert = store.certificate(height)
    return codec.encode(
        {"height": height, "block": block, "certificate": None if cert is None else cert.encode()}
    )


def account_out(store: ChainStore, member: bytes) -> AccountOut:
    raw_member = store.get_state(k_member(member))
    prefix = b"acct/" + member
    balances = [
        BalanceOut(currency=suffix.decode(), balance=Account.decode(value).balance)
        for suffix, value in _bounded(scan_after(store, prefix, None))
    ]
    if raw_member is None and not balances:
        raise not_found("account", member.hex())
    name = Member.decode(raw_member).name if raw_member is not None else None
    return AccountOut(member=member.hex(), name=name, balances=balances)


def _bounded(entries: Iterator[T]) -> Iterator[T]:
    for i, entry in enumerate(entries):
        if i == SCAN_MAX:
            return
        yield entry


# -- licences, accruals, statements -----------------------------------------------------------


def _licence(store: ChainStore, licence_id: str) -> Licence:
    raw = store.get_state(k_licence(licence_id))
    if raw is None:
        raise not_found("licence", licence_id)
    return Licence.decode(raw)


def licence_out(store: ChainStore, licence_id: str) -> LicenceOut:
    return LicenceOut.model_validate(jsonable(_licence(store, licence_id).to_value()))


def licences_page(store: ChainStore, after: str | None, limit: int) -> LicencesPage:
    def convert(_suffix: bytes, value: bytes) -> LicenceSummary:
        lic = Licence.decode(value)
        t = lic.current
        return LicenceSummary(
            licence_id=lic.licence_id,
            status=lic.status,
            licensor=t.licensor.hex(),
            licensee=t.licensee.hex(),
            skus=list(t.skus),
            currency=t.currency,
            period=t.period,
            start_ms=t.start_ms,
            end_ms=t.end_ms,
            terms_hash=t.terms_hash().hex(),
        )

    start = None if after is None else after.encode()
    items, nxt = page(scan_after(store, b"licence/", start), limit, convert, bytes.decode)
    return LicencesPage(licences=items, next=nxt)


def statement_out(s: Statement) -> StatementOut:
    return StatementOut.model_validate(
        {
            **jsonable(s.to_value()),
            "statement_id": f"{s.licence_id}@{s.period_id}",
            "lines": [
                {"label": li.label, "amount": li.amount, "disputed": i in s.frozen}
                for i, li in enumerate(s.lines)
            ],
            "payable_total": s.payable_total,
            "principal_outstanding": s.principal_outstanding,
            "interest_outstanding": s.interest_outstanding,
            "disputed_amount": s.disputed_amount,
        }
    )


def parse_statement_id(statement_id: str) -> tuple[str, str]:
    licence_id, sep, period_id = statement_id.partition("@")
    if not sep or not ID_RE.match(licence_id) or not ID_RE.match(period_id):
        raise bad_request("bad_id", "a statement id is <licence_id>@<period_id>")
    return licence_id, period_id


def statement_by_id(store: ChainStore, statement_id: str) -> StatementOut:
    licence_id, period_id = parse_statement_id(statement_id)
    raw = store.get_state(k_statement(licence_id, period_id))
    if raw is None:
        raise not_found("statement", statement_id)
    return statement_out(Statement.decode(raw))


def statements_page(
    store: ChainStore, licence: str | None, period: str | None, after: str | None, limit: int
) -> StatementsPage:
    """Statements in (licence, period) order, optionally of one licence and/or period."""
    prefix = b"stmt/" + (licence.encode() + b"/" if licence else b"")
    start = None
    if after is not None:
        a_licence, a_period = parse_statement_id(after)
        start = (k_statement(a_licence, a_period))[len(prefix) :]
        if not k_statement(a_licence, a_period).startswith(prefix):
            raise bad_request("bad_cursor", "cursor is outside the requested licence")

    def convert(_suffix: bytes, value: bytes) -> StatementOut | None:
        s = Statement.decode(value)
        return statement_out(s) if period is None or s.period_id == period else None

    def cursor(suffix: bytes) -> str:
        licence_id, _, period_id = (prefix + suffix)[len(b"stmt/") :].decode().partition("/")
        return f"{licence_id}@{period_id}"

    items, nxt = page(scan_after(store, prefix, start), limit, convert, cursor)
    return StatementsPage(statements=items, next=nxt)


def accruals_answer(
    store: ChainStore, chain_id: str, licence_id: str, at_ms: int | None
) -> AccrualsAnswer:
    """Usage accrued per period, and the live estimate of the open period's statement."""
    lic = _licence(store, licence_id)
    prefix = k_accrual(licence_id, "")  # accrual/<id>/ ; leaves add "/<index>"
    accruals = [
        AccrualOut(period_id=suffix.decode(), records=a.records, quantities=a.quantities)
        for suffix, a in _accrual_records(store, prefix)
    ]
    if at_ms is None:
        head = store.head()
        block = store.block(head.height) if head else None
        at_ms = block.header.timestamp_ms if block else 0
    estimate, error = None, None
    try:
        estimate = statement_out(periods.estimate(store, chain_id, lic.licence_id, at_ms))
    except Reject as exc:
        error = f"{exc.code}: {exc.detail}"
    return AccrualsAnswer(
        licence_id=licence_id,
        periods=accruals,
        estimate_at_ms=at_ms,
        estimate=estimate,
        estimate_error=error,
    )


def _accrual_records(store: ChainStore, prefix: bytes) -> Iterator[tuple[bytes, Accrual]]:
    """One entry per period, seeking past each period's usage leaves (under
    accrual/<id>/<period>/<index>) instead of reading them."""
    start: bytes | None = None
    for _ in range(LIMIT_MAX):
        entry = next(scan_after(store, prefix, start), None)
        if entry is None:
            return
        suffix, value = entry
        period_id = suffix.split(b"/", 1)[0]
        start = period_id + b"/" + _PAST_LEAVES
        if period_id == suffix:
            yield suffix, Accrual.decode(value)


_PAST_LEAVES = b"\xff" * 5  # sorts after every 4-byte leaf index
