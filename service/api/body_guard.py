"""One size limit on every request body, however it arrives (Content-Length or chunked).

Bytes are counted as the server hands them over, and the request is answered 413 as soon as
the count passes the limit: a chunked body declares no length, so a check of the header
alone lets any amount through. The limit is SURROGATE_MAX_UPLOAD_BYTES on the admin API
(artifact, netCDF and figure uploads) and SURROGATE_MAX_REQUEST_BYTES everywhere else.
(The time a body may take is bounded in the HTTP protocol, service/http_protocol.py:
a timer there costs nothing per chunk, a timeout around every receive here would.)

The byte limit follows the point limits (service.settings: 26 bytes per number, a double
at full precision), but a body of short numbers (`0,0,0,...`) holds 13 times as many
values per byte, and decoding costs per value. So the JSON bodies of the predict and OIP
infer routes also have their separators counted as they arrive: a body with more commas
than `json_values_allowed` numbers is a 413 before it is decoded. Counting is a
`bytes.count` per chunk.

Pure ASGI, between the observability layer (so refusals are counted and logged) and the
lean predict path (so its reads are counted too). Inside FastAPI the refusal is raised as
an HTTPException, which FastAPI passes through its body parsing to the error handlers.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.responses import OrjsonResponse
from service.errors import error_body
from service.settings import json_values_allowed


class BodyRefused(HTTPException):
    """The body went over its byte limit (413)."""

    def __init__(self, status_code: int, code: str, message: str, limit: float) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.code = code
        self.limit = limit

    def response(self) -> OrjsonResponse:
        return OrjsonResponse(
            error_body(self.code, self.detail, [{"field": "body", "limit": self.limit}]),
            status_code=self.status_code, headers={"connection": "close"})


def too_large(limit: int) -> BodyRefused:
    return BodyRefused(413, "payload_too_large",
                       f"request body is larger than {limit} bytes", limit)


def too_many_values(limit: int) -> BodyRefused:
    return BodyRefused(413, "payload_too_large",
                       f"request body holds more than {limit} values", limit)


def _counts_values(scope: Scope) -> bool:
    """A JSON body of numbers: native predict, or OIP infer without binary tensors."""
    path = scope["path"]
    if path.endswith("/predict"):
        return True
    return path.startswith("/v2/") and path.endswith("/infer") and not any(
        key == b"inference-header-content-length" for key, _ in scope["headers"])


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or malformed) and whether the body is
    sent with a Transfer-Encoding (chunked), which declares no length."""
    length, encoded = None, False
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                pass  # the HTTP server refuses a malformed length itself
        elif key == b"transfer-encoding":
            encoded = True
    return length, encoded


class BodyGuard:
    """ASGI middleware: the byte limit on the request body; see the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(scope["app"].state, "settings", None) \
            if scope["type"] == "http" else None
        if settings is None:
            await self.app(scope, receive, send)
            return
        limit = settings.max_upload_bytes if scope["path"].startswith("/admin/") \
            else settings.max_request_bytes
        declared, encoded = _framing(scope)
        if declared is not None and declared > limit and not encoded:
            await too_large(limit).response()(scope, receive, send)
            return
        values = json_values_allowed(settings) if _counts_values(scope) else None
        if not encoded and values is None:
            # The HTTP server never hands over more than the declared length (none: no
            # body), so only a body without a declared length needs counting.
            await self.app(scope, receive, send)
            return
        received = separators = 0
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, separators
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise too_large(limit)
                if values is not None:
                    separators += chunk.count(b",")
                    if separators >= values:
                        raise too_many_values(values)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        except BodyRefused as exc:  # raised outside FastAPI (the lean predict path)
            if started:
                raise
            await exc.response()(scope, receive, send)
