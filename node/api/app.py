"""The public HTTP API: the v1 contract of docs/api.md plus queries and proofs.

Rules kept here:
- Every route is `async def`, so it runs on the node's trio loop (Hypercorn's trio
  worker): store reads and `NodeControl` calls happen on the one thread that owns them.
  A plain `def` route would run in a worker thread; do not add one.
- A submission reaches `node.submit` only when the whole body was read within the bound
  and every transaction in it decoded and validated; otherwise 400/413/415 and nothing
  happened. A full mempool is 429 with Retry-After.
- Every error is JSON {"error": code, "detail": ...}; unknown ids are 404, malformed
  ones 400. The `Date` header comes from the server (Hypercorn adds it to every answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import aclosing
from typing import Annotated, Any

import trio
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from node.api import proofs, queries
from node.api.body import check_msgpack_type, decode_submission, read_bounded
from node.api.errors import ApiError, not_found
from node.api.models import (
    AccountOut,
    AccrualsAnswer,
    BlockOut,
    CertificateOut,
    DeviceOut,
    ErrorAnswer,
    HealthOut,
    LicenceOut,
    LicencesPage,
    MemberDetailOut,
    MembersPage,
    ProofOut,
    ReceiptsPage,
    StatementOut,
    StatementProofOut,
    StatementsPage,
    StatusOut,
    SubmitAnswer,
    TxAnswer,
    ValidatorHistoryOut,
)
from node.ledger.crypto import HASH_BYTES, PUBLIC_KEY_BYTES
from node.ledger.errors import ProofError
from node.runtime.interface import MempoolFull, NodeControl, SubmitResult
from node.store.chain import ChainStore

BODY_BYTES_MAX = 1024 * 1024
BATCH_MAX = 1000
WAIT_S_MAX = 60.0
LIMIT_DEFAULT = 100

Limit = Annotated[int, Query(ge=1, le=queries.LIMIT_MAX, description="page size")]
TxIdPath = Annotated[str, Path(description="transaction id, 64 hex digits")]
KeyPath = Annotated[str, Path(description="Ed25519 public key, 64 hex digits")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "malformed request"},
    404: {"model": ErrorAnswer, "description": "not found"},
}
SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "description": 'canonical msgpack of {"txs": [transaction, ...]} (docs/api.md)',
        "content": {"application/msgpack": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def error_response(exc: ApiError) -> JSONResponse:
    headers = {} if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(
        {"error": exc.code, "detail": exc.detail}, status_code=exc.status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal is {"error", "detail"}; FastAPI's 422 for bad parameters becomes 400."""

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return error_response(ApiError(400, "bad_request", detail))

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(ApiError(exc.status_code, code, str(exc.detail)))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def _submit_answer(results: list[SubmitResult]) -> Response:
    """The SubmitAnswer JSON, built as plain data: one answer per submitted transaction,
    so pydantic models (built, then validated again by FastAPI) cost more than the rest
    of the request (tests/api check the shape against the model)."""
    body = {
        "results": [
            {
                "tx_id": r.tx_id.hex(),
                "status": r.status,
                "code": r.code,
                "detail": r.detail,
                "height": r.height,
            }
            for r in results
        ]
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


async def _wait_for_commit(
    node: NodeControl, results: list[SubmitResult], wait_s: float
) -> list[SubmitResult]:
    """Wait (together at most `wait_s`) for pending results to commit; committed ones take
    their receipt's code and detail."""
    deadline = trio.current_time() + wait_s
    out = []
    for r in results:
        if r.status == "pending":
            remaining = max(0.0, deadline - trio.current_time())
            height = await node.wait_committed(r.tx_id, remaining) if remaining else None
            found = queries.committed_receipt(node.store, r.tx_id) if height is not None else None
            if found is not None:
                h, receipt = found
                r = SubmitResult(r.tx_id, "committed", receipt.code, receipt.detail, h)
        out.append(r)
    return out


def make_app(
    node: NodeControl, *, body_bytes_max: int = BODY_BYTES_MAX, batch_max: int = BATCH_MAX
) -> FastAPI:
    """The public ASGI app over `node` (serve it with node.api.serve.serve_api)."""
    app = FastAPI(
        title="ALPS node API",
        version="1",
        description="Submit transactions, look up chain state, fetch inclusion proofs.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    _submit_routes(app, node, body_bytes_max, batch_max)
    _chain_routes(app, node)
    _state_routes(app, node)
    _service_routes(app, node)
    _client_routes(app, node)
    return app


def _submit_routes(app: FastAPI, node: NodeControl, body_bytes_max: int, batch_max: int) -> None:
    @app.post(
        "/v1/txs",
        tags=["v1"],
        response_model=SubmitAnswer,
        openapi_extra=SUBMIT_BODY,
        responses={
            400: {"model": ErrorAnswer, "description": "undecodable body or bad schema"},
            413: {"model": ErrorAnswer, "description": "body or batch over the bound"},
            415: {"model": ErrorAnswer, "description": "not application/msgpack"},
            429: {"model": ErrorAnswer, "description": "mempool full; see Retry-After"},
        },
    )
    async def submit(
        request: Request,
        wait_s: Annotated[
            float, Query(ge=0, le=WAIT_S_MAX, description="wait this long for commitment")
        ] = 0.0,
    ) -> Response:
        """Submit a batch; one result per transaction, in order."""
        check_msgpack_type(request.headers.get("content-type"))
        async with aclosing(request.stream()) as chunks:
            data = await read_bounded(request.headers.get("content-length"), chunks, body_bytes_max)
        txs = decode_submission(data, batch_max)
        try:
            results = await node.submit(txs)
        except MempoolFull as exc:
            raise ApiError(429, "mempool_full", str(exc), retry_after_s=exc.retry_after_s) from exc
        if len(results) != len(txs):
            raise ApiError(500, "internal", "node answered a different number of results")
        if wait_s > 0:
            results = await _wait_for_commit(node, results, wait_s)
        return _submit_answer(results)


def _chain_routes(app: FastAPI, node: NodeControl) -> None:
    store = node.store

    @app.get("/v1/txs/{tx_id}", tags=["v1"], responses=ERRORS)
    async def get_tx(tx_id: TxIdPath) -> TxAnswer:
        """Where a transaction is: pending, committed (with its receipt) or unknown."""
        key = queries.parse_hex(tx_id, HASH_BYTES, "tx_id")
        return queries.tx_answer(store, key, node.is_pending(key))

    @app.get("/v1/txs/{tx_id}/proof", tags=["proofs"], responses=ERRORS)
    async def get_tx_proof(tx_id: TxIdPath) -> ProofOut:
        """Inclusion proof of a committed transaction (see node/api/proofs.py)."""
        return _proof(store, tx_id, proofs.build_tx_proof)

    @app.get("/v1/receipts/{tx_id}/proof", tags=["proofs"], responses=ERRORS)
    async def get_receipt_proof(tx_id: TxIdPath) -> ProofOut:
        """Inclusion proof of a committed transaction's receipt, or of an end-of-block
        receipt by its id."""
        return _proof(store, tx_id, proofs.build_receipt_proof)

    @app.get("/v1/statements/{statement_id}/proof", tags=["proofs"], responses=ERRORS)
    async def get_statement_proof(
        statement_id: Annotated[str, Path(description="<licence_id>@<period_id>")],
        usage_tx: Annotated[
            str | None, Query(description="also prove this billed usage record (tx id)")
        ] = None,
    ) -> StatementProofOut:
        """A closed statement, its payments and optionally one usage record it billed,
        each in a final block (see node/api/proofs.py)."""
        licence_id, period_id = queries.parse_statement_id(statement_id)
        usage = None if usage_tx is None else queries.parse_hex(usage_tx, HASH_BYTES, "usage_tx")
        try:
            doc = proofs.build_statement_proof(store, f"{licence_id}@{period_id}", usage)
        except proofs.NotCertified as exc:
            raise ApiError(404, "not_certified", exc.detail) from exc
        except ProofError as exc:
            raise ApiError(404, exc.code, exc.detail) from exc
        if doc is None:
            raise not_found("statement", statement_id)
        return StatementProofOut.model_validate(doc.to_json())

    @app.get("/v1/validator-history", tags=["proofs"])
    async def get_validator_history() -> ValidatorHistoryOut:
        """Every validator set change, each with the certified header that made it."""
        changes = proofs.build_validator_history(store)
        return ValidatorHistoryOut.model_validate(
            {"chain_id": node.chain_id, "changes": [c.to_json() for c in changes]}
        )

    @app.get("/v1/blocks/latest", tags=["blocks"], responses=ERRORS)
    async def get_latest_block() -> BlockOut:
        return queries.block_out(store, queries.latest_height(store))

    @app.get("/v1/blocks/{height}", tags=["blocks"], responses=ERRORS)
    async def get_block(height: Annotated[int, Path(ge=0)]) -> BlockOut:
        """Header fields, block hash and the ids of its transactions."""
        return queries.block_out(store, height)

    @app.get("/v1/blocks/{height}/receipts", tags=["blocks"], responses=ERRORS)
    async def get_receipts(
        height: Annotated[int, Path(ge=0)],
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Limit = LIMIT_DEFAULT,
    ) -> ReceiptsPage:
        return queries.receipts_page(store, height, offset, limit)

    @app.get("/v1/blocks/{height}/certificate", tags=["blocks"], responses=ERRORS)
    async def get_certificate(height: Annotated[int, Path(ge=0)]) -> CertificateOut:
        """The commit certificate (2f+1 COMMIT signatures over the block hash)."""
        return queries.certificate_out(store, height)


def _proof(
    store: ChainStore,
    tx_id: str,
    build: Callable[[ChainStore, bytes], proofs.InclusionProofDoc | None],
) -> ProofOut:
    key = queries.parse_hex(tx_id, HASH_BYTES, "tx_id")
    try:
        proof = build(store, key)
    except proofs.NotCertified as exc:
        raise ApiError(404, "not_certified", exc.detail) from exc
    if proof is None:
        raise not_found("committed transaction", tx_id)
    return ProofOut.model_validate(proof.to_json())


def _state_routes(app: FastAPI, node: NodeControl) -> None:
    store = node.store

    @app.get("/v1/devices/{device}", tags=["v1"], responses=ERRORS)
    async def get_device(device: KeyPath) -> DeviceOut:
        """An enrolled device (404 if never enrolled)."""
        return queries.device_out(store, queries.parse_hex(device, PUBLIC_KEY_BYTES, "device"))

    @app.get("/v1/members", tags=["state"], responses=ERRORS)
    async def get_members(
        after: Annotated[str | None, Query(description="cursor: last public key seen")] = None,
        limit: Limit = LIMIT_DEFAULT,
    ) -> MembersPage:
        start = None if after is None else queries.parse_hex(after, PUBLIC_KEY_BYTES, "after")
        return queries.members_page(store, start, limit)

    @app.get("/v1/accounts/{member}", tags=["state"], responses=ERRORS)
    async def get_account(member: KeyPath) -> AccountOut:
        """A member's balances per currency (minor units)."""
        return queries.account_out(store, queries.parse_hex(member, PUBLIC_KEY_BYTES, "member"))

    @app.get("/v1/licences", tags=["state"], responses=ERRORS)
    async def get_licences(
        after: Annotated[str | None, Query(description="cursor: last licence id seen")] = None,
        limit: Limit = LIMIT_DEFAULT,
    ) -> LicencesPage:
        start = None if after is None else queries.parse_id(after, "after")
        return queries.licences_page(store, start, limit)

    @app.get("/v1/licences/{licence_id}", tags=["state"], responses=ERRORS)
    async def get_licence(licence_id: str) -> LicenceOut:
        """A licence with every terms version in force and any pending amendment."""
        return queries.licence_out(store, queries.parse_id(licence_id, "licence_id"))

    @app.get("/v1/licences/{licence_id}/accruals", tags=["state"], responses=ERRORS)
    async def get_accruals(
        licence_id: str,
        at_ms: Annotated[
            int | None, Query(ge=0, description="estimate time (default: head block time)")
        ] = None,
    ) -> AccrualsAnswer:
        """Usage accrued per period and a live estimate of the open period's statement."""
        lid = queries.parse_id(licence_id, "licence_id")
        return queries.accruals_answer(store, node.chain_id, lid, at_ms)

    @app.get("/v1/statements", tags=["state"], responses=ERRORS)
    async def get_statements(
        licence: str | None = None,
        period: str | None = None,
        after: Annotated[str | None, Query(description="cursor: last statement id")] = None,
        limit: Limit = LIMIT_DEFAULT,
    ) -> StatementsPage:
        lid = None if licence is None else queries.parse_id(licence, "licence")
        pid = None if period is None else queries.parse_id(period, "period")
        return queries.statements_page(store, lid, pid, after, limit)

    @app.get("/v1/statements/{statement_id}", tags=["state"], responses=ERRORS)
    async def get_statement(
        statement_id: Annotated[str, Path(description="<licence_id>@<period_id>")],
    ) -> StatementOut:
        return queries.statement_by_id(store, statement_id)


def _client_routes(app: FastAPI, node: NodeControl) -> None:
    """What the `alps` CLI needs beyond the v1 contract: a member's next nonce, and a
    block's stored bytes with its certificate (for `alps audit`)."""
    store = node.store

    @app.get("/v1/members/{member}", tags=["state"], responses=ERRORS)
    async def get_member(member: KeyPath) -> MemberDetailOut:
        """A member's record and its last executed nonce (sign the next with nonce + 1)."""
        return queries.member_out(store, queries.parse_hex(member, PUBLIC_KEY_BYTES, "member"))

    @app.get(
        "/v1/blocks/{height}/raw",
        tags=["blocks"],
        response_class=Response,
        responses={
            200: {
                "content": {"application/msgpack": {}},
                "description": 'canonical msgpack {"height", "block", "certificate"}',
            },
            **ERRORS,
        },
    )
    async def get_raw_block(
        height: Annotated[int, Path(ge=0)],
        wait_s: Annotated[
            float, Query(ge=0, le=WAIT_S_MAX, description="wait this long for the block")
        ] = 0.0,
    ) -> Response:
        """The block's canonical bytes and its commit certificate's (null if unknown).
        With `wait_s`, a block not stored yet is waited for (long poll), then 404."""
        if wait_s > 0:
            await node.wait_height(height, wait_s)
        return Response(queries.raw_block(store, height), media_type="application/msgpack")


def _service_routes(app: FastAPI, node: NodeControl) -> None:
    @app.get("/v1/status", tags=["v1"])
    async def get_status() -> StatusOut:
        """Chain, height, view, validators, peers and mempool of this node."""
        return StatusOut.model_validate(node.status())

    @app.get("/health", tags=["service"])
    async def get_health() -> HealthOut:
        return HealthOut(ok=True, syncing=bool(node.status().get("syncing", False)))

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def get_metrics() -> Response:
        return Response(node.metrics_text(), media_type="text/plain; version=0.0.4")
