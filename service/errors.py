"""One exception hierarchy for the whole service; one handler maps it to HTTP.

Every error body has the same shape: {"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

from typing import Any


class SurrogateError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None  # extra response headers (e.g. WWW-Authenticate)

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFoundError(SurrogateError):
    status_code = 404
    code = "not_found"


class InvalidInputError(SurrogateError):
    status_code = 422
    code = "invalid_input"


class ConflictError(SurrogateError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(SurrogateError):
    status_code = 413
    code = "payload_too_large"


class ModelLoadError(SurrogateError):
    """A stored version could not be loaded (e.g. its blob fails the checksum)."""

    status_code = 503
    code = "model_unavailable"


class UnauthorizedError(SurrogateError):
    """No or malformed credentials for an admin call."""

    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class ForbiddenError(SurrogateError):
    """Credentials given but wrong, or admin access is disabled (no token configured)."""

    status_code = 403
    code = "forbidden"


class ServiceBusyError(SurrogateError):
    """Every slot for heavy work is taken: come back after `retry_after_s` seconds."""

    status_code = 503
    code = "busy"

    def __init__(self, message: str, retry_after_s: int,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class RequestInterruptedError(SurrogateError):
    """The request's deadline passed (504), or its client went away (499, logged only),
    while it was computing: the work stopped there."""

    status_code = 504
    code = "deadline_exceeded"

    def __init__(self, message: str, client_gone: bool = False) -> None:
        super().__init__(message)
        if client_gone:
            self.status_code = 499
            self.code = "client_closed_request"
