"""Serving the API: Hypercorn's trio worker on the node's own trio loop, one server for
the public app and one for the admin app.

Rules kept here: the admin app binds a loopback address only; a non-loopback admin
address is refused with ApiConfigError before anything listens. Both servers run until
the caller's nursery is cancelled; `task_status.started` reports the addresses actually
bound (so port 0 picks a free port). Every answer carries a `Date` header (Hypercorn's
`include_date_header`); the `Server` header is left out.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from fastapi import FastAPI
from hypercorn.config import Config
from hypercorn.trio import serve

from node.api.admin import make_admin_app
from node.api.app import BATCH_MAX, BODY_BYTES_MAX, make_app
from node.api.errors import ApiConfigError
from node.runtime.interface import NodeControl

if TYPE_CHECKING:  # trio-typing's stubs (a libp2p dependency) shadow trio's own types
    from trio_typing import TaskStatus

READ_TIMEOUT_S = 30
log = logging.getLogger("alps.api")


@dataclass(frozen=True, slots=True)
class ApiAddresses:
    """Where the servers listen, as host:port."""

    public: str
    admin: str


def split_listen(listen: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port); raises ApiConfigError."""
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ApiConfigError("bad_listen", f"listen address {listen!r} is not host:port")
    return host, int(port_text)


def require_loopback(listen: str) -> None:
    host, _ = split_listen(listen)
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ApiConfigError(
            "admin_not_loopback",
            f"the admin API serves loopback addresses only (127.0.0.0/8, ::1, localhost), "
            f"not {listen!r}",
        )


def hypercorn_config(listen: str) -> Config:
    host, port = split_listen(listen)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.include_server_header = False
    config.include_date_header = True
    config.accesslog = None
    config.errorlog = log
    config.read_timeout = READ_TIMEOUT_S
    return config


def _host_port(bind: str) -> str:
    return bind.split("://", 1)[-1]


async def serve_api(
    node: NodeControl,
    listen: str = "127.0.0.1:8700",
    *,
    admin_listen: str = "127.0.0.1:8701",
    body_bytes_max: int = BODY_BYTES_MAX,
    batch_max: int = BATCH_MAX,
    task_status: TaskStatus[ApiAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the public API on `listen` and the admin API on `admin_listen` until
    cancelled. Raises ApiConfigError for a bad or non-loopback admin address."""
    require_loopback(admin_listen)
    public_config, admin_config = hypercorn_config(listen), hypercorn_config(admin_listen)
    public = make_app(node, body_bytes_max=body_bytes_max, batch_max=batch_max)
    admin = make_admin_app(node)
    async with trio.open_nursery() as nursery:
        public_binds = await nursery.start(_serve, public, public_config)
        admin_binds = await nursery.start(_serve, admin, admin_config)
        addresses = ApiAddresses(_host_port(public_binds[0]), _host_port(admin_binds[0]))
        log.info("api listening public=%s admin=%s", addresses.public, addresses.admin)
        task_status.started(addresses)


async def _serve(
    app: FastAPI, config: Config, task_status: TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    # Starlette's and Hypercorn's ASGI type aliases differ; the protocol is the same.
    await serve(app, config, task_status=task_status)  # type: ignore[arg-type]


__all__ = ["ApiAddresses", "serve_api"]
