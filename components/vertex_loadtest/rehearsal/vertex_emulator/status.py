"""Errors in Google's shape: ``{"error": google.rpc.Status}``, with the HTTP status Google maps it to."""

from __future__ import annotations

from typing import Any

#: google.rpc.Code name -> (HTTP status, numeric code), as Google's REST front end maps them.
STATUS_CODES: dict[str, tuple[int, int]] = {
    "CANCELLED": (499, 1),
    "UNKNOWN": (500, 2),
    "INVALID_ARGUMENT": (400, 3),
    "DEADLINE_EXCEEDED": (504, 4),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "PERMISSION_DENIED": (403, 7),
    "RESOURCE_EXHAUSTED": (429, 8),
    "FAILED_PRECONDITION": (400, 9),
    "ABORTED": (409, 10),
    "UNIMPLEMENTED": (501, 12),
    "INTERNAL": (500, 13),
    "UNAVAILABLE": (503, 14),
    "UNAUTHENTICATED": (401, 16),
}
#: An HTTP status -> the google.rpc status Google answers with it (injected faults, model server errors).
HTTP_TO_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_for_http(http_status: int) -> str:
    """The google.rpc status name Google answers with ``http_status``."""
    return HTTP_TO_STATUS.get(http_status, "INTERNAL" if http_status >= 500 else "INVALID_ARGUMENT")


class ApiError(Exception):
    """An error answered as ``{"error": google.rpc.Status}`` (``code``, ``message``, ``status``)."""

    def __init__(self, status: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or STATUS_CODES[self.status][0]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}

    def rpc_status(self) -> dict[str, Any]:
        """The ``google.rpc.Status`` an operation carries in ``error`` (numeric code)."""
        return {"code": STATUS_CODES[self.status][1], "message": self.message}
