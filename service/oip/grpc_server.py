"""The Open Inference Protocol v2 over gRPC (KServe `inference.GRPCInferenceService`).

A grpc.aio server started by the app's lifespan when `SURROGATE_GRPC_PORT` is set: the
same process, event loop, loaded models, live registry, settings and metrics as the HTTP
API. Requests are decoded into what service.oip.core takes (strains, routing, outputs)
and answered by it, so numbers, routing (model name, `model_version`, the `alias`
parameter) and limits are the HTTP routes'. Errors map to status codes: NOT_FOUND
(unknown model or version), INVALID_ARGUMENT (bad input), RESOURCE_EXHAUSTED (over a
limit: points, or the message size, which gRPC itself enforces from max_request_bytes),
UNAVAILABLE (registry database down for a model not loaded, or a version that cannot be
loaded). Outputs are sent as raw_output_contents (as Triton does); inputs (`strain`, and for a
model with covariates one tensor per covariate, service.oip.core) may be raw or typed
contents.

Messages are decoded here rather than by grpc: a request that is not a valid protobuf
message is an INVALID_ARGUMENT like any bad input (grpc's own decoding answers UNKNOWN and
logs a traceback at error level for each one).

Do not import this module where tritonclient.grpc is imported: both define the
`inference.*` protocol messages in protobuf's default pool, which refuses the second.

Why one module of this size: the servicer, its status mapping and the server's start
and drain share one lifespan; kept together so a reader sees the whole gRPC surface.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from fastapi import FastAPI
from google.protobuf.message import DecodeError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from service.errors import (
    ClientClosedError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RequestInterruptedError,
    ServiceBusyError,
    SurrogateError,
    UnavailableError,
)
from service.inference.interrupt import Interrupt
from service.observability import access_logger, request_id_from, request_id_var
from service.oip import core
from service.oip import grpc_predict_v2_pb2 as pb
from service.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from service.oip.outputs import WIRE_DTYPES
from service.prediction.gate import Work
from service.prediction.request import MAX_NAME_LENGTH, MAX_VERSION

logger = logging.getLogger(__name__)
SERVICE_NAME = "inference.GRPCInferenceService"
SERVICE = f"/{SERVICE_NAME}/"
_CODES: list[tuple[type[SurrogateError], grpc.StatusCode, int]] = [
    (NotFoundError, grpc.StatusCode.NOT_FOUND, 404),
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, 422),
    (PayloadTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE, 503),  # model not loadable, or busy
    (ClientClosedError, grpc.StatusCode.CANCELLED, 499),
    (RequestInterruptedError, grpc.StatusCode.DEADLINE_EXCEEDED, 504),
]
_EXTRAPOLATION = ("allow", "flag", "reject")


def status_of(exc: SurrogateError) -> tuple[grpc.StatusCode, int]:
    """The gRPC status code for a service error, and its HTTP equivalent (for metrics)."""
    for kind, code, http in _CODES:
        if isinstance(exc, kind):
            return code, http
    return grpc.StatusCode.INTERNAL, 500


def _version(text: str, field: str) -> int | None:
    """'' (the server chooses) -> None; otherwise a version number."""
    if text == "":
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 10) \
            or not 1 <= int(text) <= MAX_VERSION:
        raise InvalidInputError(f"{field}: must be a version number (1 to {MAX_VERSION}), "
                                f"not {text[:40]!r}",
                                [{"field": field, "message": "must be a version number"}])
    return int(text)


def _name(text: str, field: str) -> str:
    """A model name within the HTTP routes' bound."""
    if not 1 <= len(text) <= MAX_NAME_LENGTH:
        raise InvalidInputError(f"{field}: a model name of 1 to {MAX_NAME_LENGTH} characters",
                                [{"field": field, "message": "bad model name length"}])
    return text


def _string_parameter(parameters: Any, key: str, max_length: int = 64) -> str | None:
    """A string request parameter (bounded as the HTTP schema bounds `alias`), if given."""
    if key not in parameters:
        return None
    value = parameters[key]
    if value.WhichOneof("parameter_choice") != "string_param" \
            or not 1 <= len(value.string_param) <= max_length:
        raise InvalidInputError(
            f"parameters.{key}: must be a string of 1 to {max_length} characters",
            [{"field": f"parameters.{key}", "message": "must be a short string"}])
    return value.string_param


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, app: FastAPI) -> None:
        self.state = app.state

    async def _call(self, method: str, context: grpc.aio.ServicerContext,
                    handler: Callable[[], Awaitable[Any]]) -> Any:
        """Runs `handler`, mapping errors to status codes, and records the call (metrics,
        access log, the caller's `x-request-id` metadata or a new one, sent back as
        trailing metadata and on every log line written meanwhile)."""
        started, status, model = time.perf_counter(), 200, ("", "")
        metadata = dict(context.invocation_metadata() or ())
        request_id = request_id_from(metadata.get("x-request-id"))
        token = request_id_var.set(request_id)
        context.set_trailing_metadata((("x-request-id", request_id),))
        try:
            result = await handler()
            if isinstance(result, pb.ModelInferResponse):
                model = (result.model_name, result.model_version)
            return result
        except SurrogateError as exc:
            code, status = status_of(exc)
            if isinstance(exc, ServiceBusyError):  # gRPC's own Retry-After
                context.set_trailing_metadata((
                    ("x-request-id", request_id),
                    ("grpc-retry-pushback-ms", str(exc.retry_after_s * 1000))))
            await context.abort(code, exc.message)
        except (OperationalError, InterfaceError) as exc:
            status = 503
            logger.warning("registry database unavailable: %s", exc.__class__.__name__)
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "the registry database is unavailable; only models already "
                                "loaded in this replica can answer")
        except Exception:
            status = 500
            logger.exception("unhandled error in gRPC %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
        finally:
            seconds = time.perf_counter() - started
            self.state.metrics.observe_request("GRPC", SERVICE + method, status, *model,
                                               seconds)
            if self.state.metrics.access_log:
                access_logger.info("GRPC %s %d", SERVICE + method, status, extra={"fields": {
                    "method": "GRPC", "path": SERVICE + method, "route": SERVICE + method,
                    "status": status, "duration_ms": round(seconds * 1000.0, 3),
                    "request_id": request_id, "model": model[0] or None,
                    "version": int(model[1]) if model[1] else None}})
            request_id_var.reset(token)

    def _in_thread(self, work: Callable[..., Any]) -> Awaitable[Any]:
        """`work(session)` in the thread pool (it may query the registry database)."""
        def run() -> Any:
            with self.state.session_factory() as session:
                return work(session)
        return run_in_threadpool(run)

    async def ServerLive(self, request, context):  # noqa: N802 (the protocol's names)
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):  # noqa: N802
        return pb.ServerReadyResponse(ready=core.server_ready(self.state.live_registry,
                                                              self.state.drain.active))

    async def ServerMetadata(self, request, context):  # noqa: N802
        return pb.ServerMetadataResponse(**core.server_metadata())

    async def ModelReady(self, request, context):  # noqa: N802
        async def handler():
            name, version = _name(request.name, "name"), _version(request.version, "version")
            await self._in_thread(lambda session: core.model_ready(
                session, self.state.live_registry, self.state.settings, name, version))
            return pb.ModelReadyResponse(ready=True)
        return await self._call("ModelReady", context, handler)

    async def ModelMetadata(self, request, context):  # noqa: N802
        async def handler():
            name, version = _name(request.name, "name"), _version(request.version, "version")
            metadata = await self._in_thread(lambda session: core.model_metadata(
                session, self.state.live_registry, self.state.settings, name, version))
            metadata.pop("parameters")  # the gRPC message has no parameters field
            return pb.ModelMetadataResponse(**metadata)
        return await self._call("ModelMetadata", context, handler)

    async def ModelInfer(self, request, context):  # noqa: N802
        async def handler():
            work = self._work(context)
            return await self._in_thread(lambda session: self._infer(session, request, work))
        return await self._call("ModelInfer", context, handler)

    def _work(self, context: grpc.aio.ServicerContext) -> Work:
        """The call's budgets, the replica's heavy-work gate, and an interrupt at the
        sooner of the service's deadline and the client's, marked when the call ends
        early (the client cancelled, or its deadline passed)."""
        settings = self.state.settings
        remaining = context.time_remaining()
        seconds = settings.request_deadline_s if remaining is None \
            else min(settings.request_deadline_s, remaining)
        call_interrupt = Interrupt(time.monotonic() + seconds)
        context.add_done_callback(lambda _: setattr(call_interrupt, "client_gone", True))
        return Work(settings, self.state.work_gate, call_interrupt)

    def _infer(self, session, request: pb.ModelInferRequest,
               work: Work) -> pb.ModelInferResponse:
        settings = self.state.settings
        request_id = core.check_request_id(request.id)
        name = _name(request.model_name, "model_name")
        version = _version(request.model_version, "model_version")
        at, counts = core.check_inputs([core.InputSpec(t.name, t.datatype, list(t.shape))
                                        for t in request.inputs], settings)
        values = self._inputs(request, counts)
        strain, count, shape = values[at], counts[at], list(request.inputs[at].shape)
        covariates = {t.name: v for i, (t, v) in enumerate(zip(request.inputs, values,
                                                               strict=True)) if i != at}
        alias = _string_parameter(request.parameters, "alias")
        extrapolation = _string_parameter(request.parameters, "extrapolation") or "flag"
        if extrapolation not in _EXTRAPOLATION:
            raise InvalidInputError(
                f"parameters.extrapolation: must be one of {', '.join(_EXTRAPOLATION)}",
                [{"field": "parameters.extrapolation", "message": "unknown policy"}])
        names = core.check_outputs([o.name for o in request.outputs])

        def encode(result: core.Inference) -> pb.ModelInferResponse:
            self.state.metrics.points.labels(result.ref.name,
                                             str(result.ref.version)).inc(count)
            return pb.ModelInferResponse(
                model_name=result.ref.name, model_version=str(result.ref.version),
                id=request_id,
                outputs=[pb.ModelInferResponse.InferOutputTensor(
                    name=o.name, datatype=o.datatype, shape=shape) for o in result.outputs],
                raw_output_contents=[
                    o.values.astype(WIRE_DTYPES[o.datatype], copy=False).tobytes()
                    for o in result.outputs])

        return core.infer(session, self.state.live_registry, settings, name, version,
                          alias, extrapolation, strain, names, work, encode,
                          f"inputs[{at}].contents", covariates)

    @staticmethod
    def _inputs(request: pb.ModelInferRequest, counts: list[int]) -> list[np.ndarray]:
        """Every input's values: all from raw_input_contents (one entry per input, in
        order, as tritonclient sends them) or all from typed contents."""
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise InvalidInputError(
                f"raw_input_contents: must hold one entry per input ({len(request.inputs)})",
                [{"field": "raw_input_contents", "message": "one entry per input"}])
        values = []
        for index, (tensor, count) in enumerate(zip(request.inputs, counts, strict=True)):
            prefix = f"inputs[{index}]"
            if raw:
                if tensor.HasField("contents"):
                    raise InvalidInputError(
                        f"{prefix}.contents: give the data as contents or as "
                        "raw_input_contents, not both",
                        [{"field": f"{prefix}.contents", "message": "not both"}])
                values.append(core.strain_from_bytes(raw[index], tensor.datatype, count,
                                                     f"{prefix}.contents",
                                                     f"raw_input_contents[{index}]"))
                continue
            field = "fp64_contents" if tensor.datatype == "FP64" else "fp32_contents"
            given = getattr(tensor.contents, field)
            values.append(core.strain_from_values(np.asarray(given, dtype=np.float64),
                                                  tensor.datatype, count,
                                                  f"{prefix}.contents.{field}",
                                                  f"{prefix}.shape"))
        return values


class _Undecodable:
    """A request that is not a valid message of its method's type."""

    def __init__(self, message_type: str, error: DecodeError) -> None:
        self.message_type, self.error = message_type, error

    async def refuse(self) -> None:
        raise InvalidInputError(
            f"the request is not a valid {self.message_type} protobuf message",
            [{"field": "request", "message": str(self.error)[:200]}])


def _decoder(message_class: Any) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except DecodeError as exc:
            return _Undecodable(message_class.DESCRIPTOR.full_name, exc)
    return decode


def _refusing_undecodable(servicer: InferenceServicer, name: str,
                          method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            return await servicer._call(name, context, request.refuse)
        return await method(request, context)
    return handle


def _method_handlers(servicer: InferenceServicer) -> dict[str, grpc.RpcMethodHandler]:
    """The service's methods (all unary), as the generated registration has them, with
    this module's decoding."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    return {method.name: grpc.unary_unary_rpc_method_handler(
        _refusing_undecodable(servicer, method.name, getattr(servicer, method.name)),
        request_deserializer=_decoder(getattr(pb, method.input_type.name)),
        response_serializer=getattr(pb, method.output_type.name).SerializeToString)
        for method in service.methods}


class GrpcListener:
    """The gRPC server, closed together with the HTTP listener (service.lifecycle)."""

    def __init__(self, server: grpc.aio.Server, grace_s: float) -> None:
        self._server = server
        self._grace_s = grace_s
        self._stopping: asyncio.Future[None] | None = None

    @classmethod
    async def start(cls, app: FastAPI) -> GrpcListener:
        """Serves on settings.grpc_host:grpc_port until closed."""
        settings = app.state.settings
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes)])
        handlers = _method_handlers(InferenceServicer(app))
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        server.add_registered_method_handlers(SERVICE_NAME, handlers)
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        server.add_insecure_port(address)
        await server.start()
        logger.info("serving the Open Inference Protocol over gRPC on %s", address)
        return cls(server, settings.shutdown_grace_s)

    def close(self) -> None:
        """Stop accepting calls now; calls in flight get the shutdown grace to finish."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._server.stop(self._grace_s))

    async def closed(self) -> None:
        """Close (if not yet), and wait until the calls in flight are done."""
        self.close()
        assert self._stopping is not None
        await self._stopping
