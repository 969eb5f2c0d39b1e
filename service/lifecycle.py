"""Graceful shutdown: drain, then stop.

A load balancer only learns that a replica is going away from its health checks. So on
SIGTERM the replica first answers /readyz with 503 and keeps serving everything else for
`shutdown_drain_s` seconds: the balancer's checks take it out of rotation meanwhile, while
requests it still routes here are answered. Responses in that window carry
`Connection: close`, so keep-alive clients (a Kubernetes Service routes per connection)
reconnect to another replica. Then uvicorn's own shutdown runs: the listener closes,
requests in flight finish, the lifespan ends. A second SIGTERM, or SIGINT, skips the rest
of the drain.

The gRPC server (when on) follows the same schedule: it stops accepting calls at the
moment the HTTP listener closes (`Drain.close_listeners`), not after the HTTP requests in
flight are done, and its calls in flight get the same SURROGATE_SHUTDOWN_GRACE_S to finish
as HTTP's.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class Drain:
    """Whether this process is draining. One per application."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self._on_close: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        if self.started_at is None:
            self.started_at = time.monotonic()

    def on_listeners_closing(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the HTTP listener closes (other listeners close with it)."""
        self._on_close.append(callback)

    def close_listeners(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback()


class CloseWhileDraining:
    """Pure-ASGI middleware: while draining, every response closes its connection."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.active:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain period between SIGTERM and its graceful shutdown."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_s = drain_s
        self._drain_until: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: only flags here; the log lines come from the next tick.
        if sig == signal.SIGTERM and not self.drain.active:
            self.drain.begin()
            if self.drain_s > 0:
                self._drain_until = time.monotonic() + self.drain_s
                return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and not self._announced:
            self._announced = True
            logger.info("SIGTERM: not ready any more; draining for %.1f s before closing "
                        "the listener", self.drain_s)
        if (self._drain_until is not None and not self.should_exit
                and time.monotonic() >= self._drain_until):
            logger.info("drained; closing the listener and finishing requests in flight")
            super().handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.close_listeners()  # gRPC stops accepting now too
        await super().shutdown(sockets)
