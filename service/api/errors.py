"""Map every error to the one body shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.body_guard import BodyRefused
from service.api.responses import OrjsonResponse
from service.errors import SurrogateError, UnsupportedMediaTypeError, error_body

logger = logging.getLogger(__name__)


_UNPARSABLE = {
    UnicodeDecodeError: "not UTF-8 text",
    RecursionError: "nested too deeply",
    ValueError: "a number too long to convert",
}


def _error(status: int, code: str, message: str, details: list | None = None,
           headers: dict[str, str] | None = None) -> OrjsonResponse:
    return OrjsonResponse(error_body(code, message, details), status_code=status,
                          headers=headers)


def error_response(exc: SurrogateError) -> OrjsonResponse:
    return OrjsonResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def _field_path(location: tuple) -> str:
    """('body', 'strain', 3) -> 'strain[3]': the field, and for arrays the index."""
    path = ""
    for part in location:
        if part == "body" and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def invalid_input_response(errors: Sequence[dict]) -> OrjsonResponse:
    """The 422 for request validation errors (FastAPI's, locations starting at "body"):
    the first error in the message, up to 20 in the details."""
    details = [{"field": _field_path(tuple(e["loc"])), "message": e["msg"]}
               for e in errors[:20]]
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _error(422, "invalid_input", f"{first['field']}: {first['message']}{more}",
                  details)


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or application/*+json: the bodies FastAPI parses as JSON."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SurrogateError)
    async def surrogate_error(_: Request, exc: SurrogateError) -> OrjsonResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> OrjsonResponse:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            position = errors[0]["loc"][-1]
            reason = (errors[0].get("ctx") or {}).get("error", "JSON decode error")
            return _error(422, "invalid_input",
                          f"body: malformed JSON at character {position}: {reason}",
                          [{"field": "body", "message": f"malformed JSON: {reason}",
                            "position": position}])
        content_type = request.headers.get("content-type")
        if any(tuple(e["loc"]) == ("body",) and e["type"] != "missing" for e in errors) \
                and not is_json_media_type(content_type):
            # FastAPI hands a non-JSON body to the model as raw bytes: say what is wrong.
            return error_response(UnsupportedMediaTypeError(
                f"request body must be JSON (content-type: application/json), "
                f"not {content_type or 'unlabelled'}",
                [{"field": "content-type", "message": "must be application/json"}]))
        return invalid_input_response(errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        if isinstance(exc, BodyRefused):
            return exc.response()
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "error parsing the body": bytes that are not UTF-8 text, JSON nested
            # deeper than the decoder recurses, an integer longer than Python converts.
            reason = _UNPARSABLE.get(type(exc.__cause__), "cannot be decoded")
            return _error(422, "invalid_input", f"body: malformed JSON ({reason})",
                          [{"field": "body", "message": f"malformed JSON: {reason}"}])
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_error(_: Request, exc: Exception) -> OrjsonResponse:
        # Connection-level failures: the registry is down. The driver's text may hold the
        # host/user, so it is logged, not returned.
        logger.warning("registry database unavailable: %s", exc.__class__.__name__)
        return _error(503, "database_unavailable",
                      "the registry database is unavailable; only models already loaded "
                      "in this replica can answer")

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> OrjsonResponse:
        logger.exception("unhandled error", exc_info=exc)
        return _error(500, "internal_error", "internal server error")
