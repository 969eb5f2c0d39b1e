"""One guard on every request body, however it arrives (Content-Length or chunked).

Bytes are counted as the server hands them over, and the request is answered 413 as soon as
the count passes the limit: a chunked body declares no length, so a check of the header
alone lets any amount through. The limit is SURROGATE_MAX_UPLOAD_BYTES on the admin API
(artifact, netCDF and figure uploads) and SURROGATE_MAX_REQUEST_BYTES everywhere else.
The whole body must also arrive within SURROGATE_BODY_TIMEOUT_S, else a 408: a client that
stops sending half-way would otherwise hold its connection and worker task forever.

Pure ASGI, between the observability layer (so refusals are counted and logged) and the
lean predict path (so its reads are counted too). Inside FastAPI the refusal is raised as
an HTTPException, which FastAPI passes through its body parsing to the error handlers.
"""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.responses import OrjsonResponse


class BodyRefused(HTTPException):
    """The body went over its byte limit (413) or its time limit (408)."""

    def __init__(self, status_code: int, code: str, message: str, limit: float) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.code = code
        self.limit = limit

    def response(self) -> OrjsonResponse:
        return OrjsonResponse(
            {"error": {"code": self.code, "message": self.detail,
                       "details": [{"field": "body", "limit": self.limit}]}},
            status_code=self.status_code, headers={"connection": "close"})


def too_large(limit: int) -> BodyRefused:
    return BodyRefused(413, "payload_too_large",
                       f"request body is larger than {limit} bytes", limit)


def too_slow(seconds: float) -> BodyRefused:
    return BodyRefused(408, "request_timeout",
                       f"request body did not arrive within {seconds:g} s", seconds)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length itself
    return None


class BodyGuard:
    """ASGI middleware: byte and time limits on the request body; see the module doc."""

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
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await too_large(limit).response()(scope, receive, send)
            return
        deadline = time.monotonic() + settings.body_timeout_s
        received = 0
        complete = declared == 0
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is not slow sending
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise too_slow(settings.body_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                complete = not message.get("more_body", False)
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
