"""One exception hierarchy for the whole service, and the one error body.

Every error body has the same shape, built by `error_body` whichever layer answers (the
FastAPI handlers, the body guard, the OIP binary layer, the HTTP protocol's deadlines):
{"error": {"code", "message", "details"}}.
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The error body every transport sends."""
    return {"error": {"code": code, "message": message, "details": details or []}}


class SurrogateError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 500
    code = "internal_error"
    headers: dict[str, str] | None = None  # extra response headers (e.g. WWW-Authenticate)

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class NotFoundError(SurrogateError):
    status_code = 404
    code = "not_found"


class InvalidInputError(SurrogateError):
    status_code = 422
    code = "invalid_input"


class UnsupportedMediaTypeError(SurrogateError):
    """A body in a content type or encoding the route does not read."""

    status_code = 415
    code = "unsupported_media_type"


class ConflictError(SurrogateError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(SurrogateError):
    status_code = 413
    code = "payload_too_large"


class UnavailableError(SurrogateError):
    """The service cannot answer this now; another replica, or a later try, may."""

    status_code = 503
    code = "unavailable"


class ModelLoadError(UnavailableError):
    """A stored version could not be loaded (e.g. its blob fails the checksum)."""

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


class ServiceBusyError(UnavailableError):
    """Every slot for heavy work is taken: come back after `retry_after_s` seconds."""

    code = "busy"

    def __init__(self, message: str, retry_after_s: int,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class RequestInterruptedError(SurrogateError):
    """The request's deadline passed while it was computing: the work stopped there."""

    status_code = 504
    code = "deadline_exceeded"


class ClientClosedError(RequestInterruptedError):
    """The client went away while its request was computing: the work stopped there (the
    status is for the logs and metrics only; nobody reads the answer)."""

    status_code = 499
    code = "client_closed_request"
