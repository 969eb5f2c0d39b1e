"""Triton's binary tensor data extension over HTTP (docs/oip.md).

A request carrying `Inference-Header-Content-Length: N` holds a JSON inference request in
its first N bytes and the raw tensor bytes after it. `BinaryTensorBody`, a pure-ASGI
layer in front of FastAPI, splits such a body: FastAPI receives the JSON header alone
(as application/json), so it is validated by the route's own schema with the usual
errors, and the tensor bytes wait in the request's scope for the route (`binary_part`).
N = 0 is the extension's "raw binary request": the whole body is one FP64 strain tensor
and every output comes back binary. A compressed body (Content-Encoding, optional in
tritonclient) is refused here with a 415 that says so.

It sits inside BodyGuard, whose byte limit counts the whole body, JSON header
and tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import InvalidInputError, SurrogateError, UnsupportedMediaTypeError
from service.oip.core import Output
from service.oip.outputs import WIRE_DTYPES

HEADER = "inference-header-content-length"
_HEADER_BYTES = HEADER.encode()
BINARY_KEY = "oip_binary_tensors"  # key in the scope's state: the bytes after the header
MEDIA_TYPE = "application/octet-stream"


class BinaryTensorBody:
    """ASGI middleware: hands FastAPI the JSON header of a binary OIP inference request
    and keeps the tensor bytes for the route; every other request passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not scope["path"].endswith("/infer")
                or not scope["path"].startswith("/v2/")):
            await self.app(scope, receive, send)
            return
        declared = encoding = None
        for key, value in scope["headers"]:
            if key == _HEADER_BYTES:
                declared = value
            elif key == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        if encoding not in (None, "", "identity"):  # tritonclient's optional compression
            await _error(UnsupportedMediaTypeError(
                f"Content-Encoding {encoding[:20]!r} is not supported: send the body "
                f"uncompressed", [{"field": "Content-Encoding", "message": "not supported"}],
            ))(scope, receive, send)
            return
        if declared is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client went away
            header, tensors = _split(body, declared)
        except SurrogateError as exc:
            await _error(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[BINARY_KEY] = tensors
        scope["headers"] = [
            (k, v) for k, v in scope["headers"]
            if k not in (b"content-type", b"content-length", _HEADER_BYTES)
        ] + [(b"content-type", b"application/json"),
             (b"content-length", str(len(header)).encode())]
        sent = False

        async def header_only() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": header, "more_body": False}

        await self.app(scope, header_only, send)


def binary_part(request: Request) -> memoryview | None:
    """The tensor bytes after the JSON header, when the request used the extension."""
    return request.scope.get("state", {}).get(BINARY_KEY)


def encode(response: dict, shape: list[int], outputs: Sequence[Output],
           binary: Sequence[bool]) -> Response:
    """The inference response (`response` plus the outputs, each of `shape`): plain JSON,
    or when any output is binary, the JSON header followed by those outputs' bytes in
    order (content type application/octet-stream, Inference-Header-Content-Length the
    header's length)."""
    tensors: list[bytes] = []
    entries = []
    for output, as_bytes in zip(outputs, binary, strict=True):
        entry: dict = {"name": output.name, "shape": shape, "datatype": output.datatype}
        if as_bytes:
            raw = output.values.astype(WIRE_DTYPES[output.datatype], copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            tensors.append(raw)
        else:
            entry["data"] = output.values
        entries.append(entry)
    header = orjson.dumps(response | {"outputs": entries}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not tensors:
        return Response(header, media_type="application/json")
    return Response(b"".join([header, *tensors]), media_type=MEDIA_TYPE,
                    headers={HEADER: str(len(header))})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (BodyGuard, outside, bounds its size; the HTTP protocol its time),
    or None when the client went away."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _split(body: bytes, declared: bytes) -> tuple[bytes, memoryview]:
    """(JSON header, tensor bytes) of a body whose header length the client declared."""
    text = declared.decode("latin-1").strip()
    # ASCII digits only ('²'.isdigit() holds), and few enough for int() to be cheap.
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) > len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length: must be the JSON header's length in bytes "
            f"(0 to {len(body)}, the body's length), not {text[:40]!r}",
            [{"field": "Inference-Header-Content-Length",
              "message": f"must be an integer from 0 to {len(body)}"}])
    length = int(text)
    if length == 0:  # raw binary request: one FP64 input, every output binary
        count = len(body) // 8
        header = orjson.dumps({
            "inputs": [{"name": "strain", "shape": [count], "datatype": "FP64",
                        "parameters": {"binary_data_size": len(body)}}],
            "parameters": {"binary_data_output": True}})
        return header, memoryview(body)
    return body[:length], memoryview(body)[length:]


def _error(exc: SurrogateError) -> Response:
    return Response(orjson.dumps(exc.body()), status_code=exc.status_code,
                    media_type="application/json")
