"""The admin API: operator controls, served on a loopback address only (serve.py refuses
anything else), never on the public port.

Rule kept here: admin routes change only the node's own process (log level) or read
peer detail; they never touch the chain. Bodies are read with the same hard bound.
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from fastapi import FastAPI, Request
from pydantic import ValidationError

from node.api.app import install_error_handlers
from node.api.body import read_bounded
from node.api.errors import bad_request
from node.api.models import ErrorAnswer, LogLevelIn, LogLevelOut, PeersOut
from node.runtime.interface import NodeControl

ADMIN_BODY_BYTES_MAX = 4096
LOG_LEVEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LogLevelIn.model_json_schema()}},
    }
}


def make_admin_app(node: NodeControl, *, body_bytes_max: int = ADMIN_BODY_BYTES_MAX) -> FastAPI:
    app = FastAPI(
        title="ALPS node admin API",
        version="1",
        docs_url="/admin/docs",
        redoc_url=None,
        openapi_url="/admin/openapi.json",
    )
    install_error_handlers(app)

    @app.get("/admin/peers")
    async def get_peers() -> PeersOut:
        """Validators and peers as the node sees them (every peer-related status field)."""
        status = node.status()
        detail = {k: v for k, v in status.items() if "peer" in k}
        return PeersOut.model_validate({"validators": status.get("validators", []), **detail})

    @app.post(
        "/admin/log-level",
        openapi_extra=LOG_LEVEL_BODY,
        responses={400: {"model": ErrorAnswer}, 413: {"model": ErrorAnswer}},
    )
    async def set_log_level(request: Request) -> LogLevelOut:
        """Set the root logger's level: {"level": "debug" | "info" | ...}."""
        async with aclosing(request.stream()) as chunks:
            data = await read_bounded(request.headers.get("content-length"), chunks, body_bytes_max)
        try:
            wanted = LogLevelIn.model_validate_json(data)
        except ValidationError as exc:
            raise bad_request("bad_schema", str(exc.errors(include_url=False))) from exc
        logging.getLogger().setLevel(wanted.level.upper())
        return LogLevelOut(level=wanted.level)

    return app
