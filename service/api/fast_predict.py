"""A lean path for the common prediction request, in front of FastAPI.

Most traffic is `POST /v1/models/{name}/predict` with `{"strain": [...]}` and perhaps a
`version`, `alias` or the `covariates` of a condition, for a model version this replica
has loaded. FastAPI answers it
through routing, four dependencies, a JSON decode by the standard library, pydantic's
validation of the decoded objects and a thread hop for the sync route: several times
the prediction's own cost for one strain. This pure-ASGI layer answers exactly those
requests itself, with the route's own pieces (the same PredictRequest schema, limits,
in-memory resolution, response building and metrics recording: the same bytes), and
hands everything else to FastAPI untouched: other options (quantiles, tangent, draws,
extrapolation), invalid bodies (but one whose only error is a non-number in `strain`,
answered here with the route's bytes so a huge bad body is parsed once), other content
types, names or versions this replica would have to ask the database about,
SURROGATE_FAST_PREDICT=false. So every error is still FastAPI's documented one.

It sits inside ObservabilityMiddleware and BodyGuard (request id, metrics, access log, the
body's size and time limits all apply) and records the FastAPI route in the scope, so
metrics carry the same route label whichever path answered. Limits, version resolution and
the response come from service.prediction and service.api.responses, like the route's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import json_body
from service.api.deps import work_of
from service.api.errors import invalid_input_response, is_json_media_type
from service.api.responses import predict_answer
from service.errors import SurrogateError
from service.prediction import pipeline
from service.prediction.request import MAX_NAME_LENGTH, PredictRequest

# Body fields the lean path answers; any other field set (even to its default) goes to
# FastAPI.
PLAIN_FIELDS = frozenset({"strain", "version", "alias", "covariates"})
# Up to this many strains the prediction runs on the event loop: it then holds the loop for
# less than a hop to the thread pool would cost, and for less than FastAPI itself holds it
# per request. Larger batches go to the thread pool like the route (the kernel releases the
# GIL), so one big request never stalls the others. docs/architecture.md has the figures.
INLINE_MAX_POINTS = 8


class FastPredict:
    """ASGI middleware: answers plain predict requests, passes everything else on."""

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        self.app = app
        self.route = route  # FastAPI's predict route: its path matching and metrics label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        child_scope = self._match(scope)
        if child_scope is None:
            await self.app(scope, receive, send)
            return
        messages = await _read_body(receive)
        response = await self._answer(scope, child_scope, messages)
        if response is None:
            await self.app(scope, _replay(messages, receive), send)
        else:
            await response(scope, receive, send)

    def _match(self, scope: Scope) -> Scope | None:
        """The route's child scope (path parameters) when this request may be a plain
        predict, else None."""
        if scope["type"] != "http" or not scope["path"].endswith("/predict"):
            return None  # cheap test first: every other request pays only this
        settings = getattr(scope["app"].state, "settings", None)
        if settings is None or not settings.fast_predict:
            return None
        match, child_scope = self.route.matches(scope)
        if match is not Match.FULL or not is_json_media_type(_content_type(scope)):
            return None
        return child_scope

    async def _answer(self, scope: Scope, child_scope: Scope,
                      messages: list[Message]) -> Response | None:
        """The route's response, or None where FastAPI must answer."""
        if messages[-1]["type"] != "http.request":
            return None  # the client went away: FastAPI sees the same messages
        name: str = child_scope["path_params"]["name"]
        if len(name) > MAX_NAME_LENGTH:
            return None
        raw = b"".join(m.get("body", b"") for m in messages)
        if len(raw) <= json_body.INLINE_DECODE_BYTES:
            body = _plain_request(raw)
        else:  # decoded off the loop, once: the route reuses the outcome
            value, error = await json_body.decode(scope, raw)
            if error is not None:
                return None
            body = await run_in_threadpool(_plain_decoded, value)
        if body is None:
            return None
        if isinstance(body, NotANumber):
            scope.update(child_scope)
            return invalid_input_response([{"loc": ("body", "strain", body.index),
                                            "msg": body.message}])
        try:
            if len(body.strain) <= INLINE_MAX_POINTS:
                return _predict(scope, child_scope, name, body)
            return await run_in_threadpool(_predict, scope, child_scope, name, body)
        except SurrogateError:
            return None  # over a limit: FastAPI answers with the route's error


def _predict(scope: Scope, child_scope: Scope, name: str,
             body: PredictRequest) -> Response | None:
    """The route's response computed from memory (encoding included, so a large batch is
    encoded off the event loop too); None when the version is unknown here or not
    loaded, so the route asks the database."""
    state = scope["app"].state
    request = Request(scope)

    def encode(result: dict[str, Any]) -> Response:
        scope.update(child_scope)  # the route, as FastAPI records it: same metrics labels
        return predict_answer(request, result)

    return pipeline.predict_loaded(state.live_registry, name, body, state.settings,
                                   work_of(request), encode)


@dataclass(frozen=True)
class NotANumber:
    """The body's only error: strain[index] is a string, boolean, null, object or list."""

    index: int
    message: str


def _plain_request(raw: bytes) -> PredictRequest | NotANumber | None:
    return _plain(lambda: PredictRequest.model_validate_json(raw))


def _plain_decoded(value: object) -> PredictRequest | NotANumber | None:
    """`_plain_request` for a body already decoded (as FastAPI validates it: same errors)."""
    return _plain(lambda: PredictRequest.model_validate(value))


def _plain(validate: Callable[[], PredictRequest]) -> PredictRequest | NotANumber | None:
    """The body validated by the route's own schema, if it uses only PLAIN_FIELDS; or its
    one error, when that error is a value in `strain` that is not a number at all.

    That error is answered here, as the route would (same message, same bytes), so a huge
    body of strings is parsed once rather than a second time by FastAPI. Any other
    invalid body goes to FastAPI, whose decoder differs from pydantic-core's in corners
    (NaN, a byte-order mark, integers too long to convert).

    A small body is parsed by pydantic-core's JSON parser, on the loop: rather than orjson,
    the same rules with no second copy of them, and no slower. A large one is decoded off
    the loop by FastAPI's own decoder (service.api.json_body), once, and validated here
    in the thread pool; the route reuses the decoded value when it answers instead. Where
    pydantic-core disagrees with FastAPI's decoder (a UTF-8 byte-order mark, say), it
    refuses, so FastAPI answers. A list of bad values costs its
    first error only (the schema fails fast), so a huge bad body is refused cheaply."""
    try:
        body = validate()
    except ValidationError as exc:
        if exc.error_count() != 1:
            return None
        [error] = exc.errors(include_url=False, include_context=False, include_input=False)
        loc = tuple(error["loc"])
        if error["type"] == "float_type" and len(loc) == 2 and loc[0] == "strain" \
                and isinstance(loc[1], int):
            return NotANumber(loc[1], error["msg"])
        return None
    return body if body.model_fields_set <= PLAIN_FIELDS else None


def _content_type(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"content-type":  # the first one, as Starlette's Headers.get
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> list[Message]:
    """Every message up to the end of the body (or a disconnect), as received."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands FastAPI the messages already read, then the live ones."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed

