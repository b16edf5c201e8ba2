"""The node's HTTP API: a public ASGI app (the v1 contract in docs/api.md plus the
read-only query and proof endpoints) and a loopback-only admin app, both served by
Hypercorn on the node's trio loop.

Rule kept here: the API only reads the chain store and calls the `NodeControl` seam
(node/runtime/interface.py); it never writes state. Bad input gets a typed JSON answer
({"error": code, "detail": ...}) and reaches nothing behind the seam."""

from node.api.errors import ApiConfigError, ApiError

__all__ = ["ApiConfigError", "ApiError"]
