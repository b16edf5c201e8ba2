"""Typed errors of the HTTP API. One base class; each carries the HTTP status, a stable
machine-readable `code` and a human-readable `detail`, which is exactly the JSON error
answer ({"error": code, "detail": detail})."""

from __future__ import annotations


class ApiError(Exception):
    """A request the API refuses, or a configuration it cannot serve."""

    def __init__(
        self, status: int, code: str, detail: str = "", retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {detail}" if detail else f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after_s = retry_after_s  # sent as Retry-After (429, 503)


class ApiConfigError(ApiError):
    """serve_api was given an address it will not serve on (e.g. a public admin address)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(0, code, detail)


def not_found(what: str, key: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} {key} not found")


def bad_request(code: str, detail: str) -> ApiError:
    return ApiError(400, code, detail)
