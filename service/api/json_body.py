"""JSON request bodies decoded once, and off the event loop when large.

FastAPI decodes a JSON body on the event loop (json.loads, ~0.4 s for a 20 MB body of
10^6 strains on the reference machine), and the lean predict path, which reads the body
first, used to parse it a second time whenever it handed the request on. Here:

- `decode` runs json.loads in the thread pool for bodies over INLINE_DECODE_BYTES (a small
  body costs less than the hop), and keeps the outcome, value or error, in the request's
  scope;
- routes built with `JsonRoute` read that outcome instead of decoding again (and decode
  off the loop themselves when nothing was kept).

The decoder is the standard library's, as FastAPI's: the same bodies are accepted, and the
same errors (malformed JSON, nesting too deep, an integer too long) become the same 422s.
What stays on the loop is FastAPI's validation of the decoded values (~20 ms for 10^6).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

INLINE_DECODE_BYTES = 64 * 1024
_DECODED = "decoded_json_body"  # key in the scope's state: (value, error)


async def decode(scope: Scope, body: bytes) -> tuple[Any, BaseException | None]:
    """The body decoded (value, None) or its decoding error (None, error), kept in the
    scope for the route that may answer the request next."""
    try:
        value = (json.loads(body) if len(body) <= INLINE_DECODE_BYTES
                 else await run_in_threadpool(json.loads, body))
        outcome: tuple[Any, BaseException | None] = (value, None)
    except Exception as exc:  # noqa: BLE001 - the route raises it again, as FastAPI would
        outcome = (None, exc)
    scope.setdefault("state", {})[_DECODED] = outcome
    return outcome


class JsonRequest(Request):
    """A request whose json() is the kept outcome, or decoded off the loop when large."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            outcome = self.scope.get("state", {}).get(_DECODED)
            if outcome is None:
                outcome = await decode(self.scope, await self.body())
            value, error = outcome
            if error is not None:
                raise error
            self._json = value
        return self._json


class JsonRoute(APIRoute):
    """An APIRoute whose handler gets a JsonRequest (FastAPI's documented way to give a
    route its own Request class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_request(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return with_json_request
