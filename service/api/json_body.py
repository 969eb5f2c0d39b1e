"""JSON request bodies decoded off the event loop when large.

FastAPI decodes a JSON body on the event loop (json.loads, ~0.4 s for a 20 MB body of
10^6 strains on the reference machine), holding every other request meanwhile, /healthz
included. Routes built with `JsonRoute` get a `JsonRequest`, whose json() runs json.loads
in the thread pool for bodies over INLINE_DECODE_BYTES (a small body costs less than the
hop). The decoder is still the standard library's, as FastAPI's: the same bodies are
accepted, and the same errors (malformed JSON, nesting too deep, an integer too long)
become the same 422s. What stays on the loop is FastAPI's validation of the decoded values
(~20 ms for 10^6). The native predict route rarely needs it: the lean path in front of it
parses (in the thread pool when large) and answers every valid request for a loaded
version (service/api/fast_predict.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

INLINE_DECODE_BYTES = 64 * 1024


class JsonRequest(Request):
    """A request whose json() decodes a large body off the event loop."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = (json.loads(body) if len(body) <= INLINE_DECODE_BYTES
                          else await run_in_threadpool(json.loads, body))
        return self._json


class JsonRoute(APIRoute):
    """An APIRoute whose handler gets a JsonRequest (FastAPI's documented way to give a
    route its own Request class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_request(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return with_json_request
