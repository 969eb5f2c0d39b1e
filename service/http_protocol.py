"""uvicorn's HTTP protocol as `surrogate-serve` runs it: deadlines on the request head and
body, a size limit on the head, and each response written in one system call.

Deadlines: uvicorn times out idle keep-alive connections, but not a connection that opens
and then sends its request line and headers slowly (or never finishes them), nor one that
stops half-way through its body: each is held for good, and a few hundred exhaust the
server. This protocol closes a connection whose head is not complete
SURROGATE_HEADER_TIMEOUT_S after it opened (or after its next request began), and answers
408 and closes one whose body is not complete SURROGATE_BODY_TIMEOUT_S after its head.
Both are timers on the event loop, armed and cancelled by the parser's callbacks: a
request that arrives whole costs two timer handles, nothing per body chunk.

Head size: uvicorn (httptools) takes a request head of any size, and joins a header that
arrives in pieces by concatenation, so parsing grows faster than linearly (a 64 MiB head
held the event loop for seconds) and 20,000 headers become 20,000 tuples in the ASGI scope.
A deployment may reach the replicas without the balancer's 16 kB cap (a Kubernetes Service
does). This protocol counts the head's bytes before the parser sees them, and its header
lines as the parser reports them: past SURROGATE_MAX_HEAD_BYTES or
SURROGATE_MAX_HEADER_COUNT the answer is 431 and the connection is closed.

Whole responses: uvicorn writes a response's status line and headers, then its body, as
two writes. A replica killed between them (SIGKILL, OOM killer, a crashed node) leaves the
balancer holding headers without a body: it has already forwarded them, so it can neither
retry the request nor answer for it, and the client sees a broken response. Writes made in
one turn of the event loop (a whole small response: start and body are sent without
waiting) are joined here and handed to the socket at the end of that turn. A replica that
dies then has sent either the whole response or nothing, and "nothing" is what HAProxy's
`retry-on empty-response` retries on another replica (deploy/haproxy/haproxy.cfg).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import error_body
from service.settings import get_settings


def _closing_response(status: bytes, code: str, message: str, field: str,
                      limit: float) -> bytes:
    """A whole JSON error response (the service's error body) that closes the connection."""
    body = json.dumps(error_body(code, message, [{"field": field, "limit": limit}])).encode()
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def _timeout_response(seconds: float) -> bytes:
    return _closing_response(b"408 Request Timeout", "request_timeout",
                             f"request body did not arrive within {seconds:g} s",
                             "body", seconds)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.head_timeout_s = settings.header_timeout_s
        self.body_timeout_s = settings.body_timeout_s
        self.max_head_bytes = settings.max_head_bytes
        self.max_header_count = settings.max_header_count
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # bytes received now belong to a request head
        self._head_bytes = 0
        self._header_count = 0
        self._head_refusal: bytes | None = None  # the 431 to send instead of uvicorn's 400

    # --- the head ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._head_timer is None:  # the first request's clock runs from the connect
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Parse up to the limit: if the head ends within it, the rest is body (or the next
        # pipelined request); if not, the head is too large and the rest is never parsed.
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse_head("max_head_bytes", self.max_head_bytes,
                              f"request head larger than {self.max_head_bytes} bytes")
            self._send_head_refusal()
        else:
            self.data_received(data[room:])

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_header_count:
            self._refuse_head("max_header_count", self.max_header_count,
                              f"more than {self.max_header_count} header lines")
            raise _HeadTooLarge  # the parser stops; uvicorn then calls send_400_response
        super().on_header(name, value)

    def _refuse_head(self, field: str, limit: int, message: str) -> None:
        self._head_refusal = _closing_response(
            b"431 Request Header Fields Too Large", "request_header_fields_too_large",
            message, field, limit)

    def send_400_response(self, msg: str) -> None:
        if self._head_refusal is None:
            super().send_400_response(msg)
        else:
            self._send_head_refusal()

    def _send_head_refusal(self) -> None:
        self._cancel()
        self.transport.write(self._head_refusal or b"")
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel()
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        if not self.parser.should_upgrade():  # a websocket is not a body
            self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_too_slow)

    # --- the body ----------------------------------------------------------------------

    def on_message_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True  # what follows is the next request's head
        super().on_message_complete()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.cycle.response_started = True  # the application's answer is dropped
            self.transport.write(_timeout_response(self.body_timeout_s))
        self.transport.close()

    # --- both --------------------------------------------------------------------------

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _cancel(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)


class _CoalescingTransport:
    """A transport whose writes in one event-loop turn reach the socket as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else: the real transport
        return getattr(self._transport, name)


class ServiceProtocol(DeadlineProtocol):
    """The head and body deadlines, and whole responses in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(
            _CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
