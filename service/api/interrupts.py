"""Each computing request's interrupt: its deadline, and whether its client went away.

Pure ASGI, for the routes that compute (predict, OIP infer, export). It puts an
`Interrupt` with the deadline SURROGATE_REQUEST_DEADLINE_S from now into the request's
scope (the pipeline watches it: service.prediction.admission.Work), and once the body has
arrived it waits for the server's next message in a task of its own: uvicorn sends
`http.disconnect` when the client closes the connection, which marks the interrupt, so
the computation stops at its next checkpoint instead of finishing for nobody (a balancer
that timed out closes its connection too).
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import INTERRUPT_KEY
from service.inference.interrupt import Interrupt


def computes(scope: Scope) -> bool:
    path = scope["path"]
    return path.endswith(("/predict", "/export")) or (
        path.startswith("/v2/") and path.endswith("/infer"))


class RequestInterrupts:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(scope["app"].state, "settings", None) \
            if scope["type"] == "http" else None
        if settings is None or not computes(scope):
            await self.app(scope, receive, send)
            return
        interrupt = Interrupt(time.monotonic() + settings.request_deadline_s)
        scope.setdefault("state", {})[INTERRUPT_KEY] = interrupt
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass  # a GET's empty body
            interrupt.client_gone = True

        async def receiving() -> Message:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.disconnect":
                interrupt.client_gone = True
            elif not message.get("more_body", False) and watcher is None:
                watcher = asyncio.create_task(watch())
            return message

        if scope["method"] == "GET":  # no body: watch from the start
            watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, receiving, send)
        finally:
            if watcher is not None:
                watcher.cancel()
