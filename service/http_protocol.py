"""uvicorn's HTTP protocol, writing each response in one system call.

uvicorn writes a response's status line and headers, then its body, as two writes. A
replica killed between them (SIGKILL, OOM killer, a crashed node) leaves the balancer
holding headers without a body: it has already forwarded them, so it can neither retry the
request nor answer for it, and the client sees a broken response. Writes made in one turn
of the event loop (a whole small response: start and body are sent without waiting) are
joined here and handed to the socket at the end of that turn. A replica that dies then has
sent either the whole response or nothing, and "nothing" is what HAProxy's `retry-on
empty-response` retries on another replica (deploy/haproxy/haproxy.cfg).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
