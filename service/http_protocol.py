"""uvicorn's HTTP protocol as `surrogate-serve` runs it: a deadline on the request head,
and each response written in one system call.

Head deadline: uvicorn times out idle keep-alive connections, but not a connection that
opens and then sends its request line and headers slowly (or never finishes them): each
such connection is held for good, and a few hundred exhaust the server. This protocol
closes a connection whose head is not complete SURROGATE_HEADER_TIMEOUT_S after it opened
or after its previous request began. The body has its own deadline
(service/api/body_guard.py).

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
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.settings import get_settings


class HeadTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_s = get_settings().header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the first request's clock runs from the connect
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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


class ServiceProtocol(HeadTimeoutProtocol):
    """The head deadline, and whole responses in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(
            _CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
