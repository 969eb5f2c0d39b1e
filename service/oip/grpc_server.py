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

Do not import this module where tritonclient.grpc is imported: both define the
`inference.*` protocol messages in protobuf's default pool, which refuses the second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from fastapi import FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from service.errors import (
    InvalidInputError,
    ModelLoadError,
    NotFoundError,
    PayloadTooLargeError,
    SurrogateError,
)
from service.observability import access_logger, request_id_from, request_id_var
from service.oip import core
from service.oip import grpc_predict_v2_pb2 as pb
from service.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from service.oip.outputs import WIRE_DTYPES
from service.prediction.request import MAX_NAME_LENGTH, MAX_VERSION

logger = logging.getLogger(__name__)
SERVICE = "/inference.GRPCInferenceService/"
_CODES: list[tuple[type[SurrogateError], grpc.StatusCode, int]] = [
    (NotFoundError, grpc.StatusCode.NOT_FOUND, 404),
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT, 422),
    (PayloadTooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
    (ModelLoadError, grpc.StatusCode.UNAVAILABLE, 503),
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
            return await self._in_thread(lambda session: self._infer(session, request))
        return await self._call("ModelInfer", context, handler)

    def _infer(self, session, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        settings = self.state.settings
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
        result = core.infer(session, self.state.live_registry, settings, name, version,
                            alias, extrapolation, strain, names, f"inputs[{at}].contents",
                            covariates)
        self.state.metrics.points.labels(result.ref.name, str(result.ref.version)).inc(count)
        return pb.ModelInferResponse(
            model_name=result.ref.name, model_version=str(result.ref.version), id=request.id,
            outputs=[pb.ModelInferResponse.InferOutputTensor(
                name=o.name, datatype=o.datatype, shape=shape) for o in result.outputs],
            raw_output_contents=[
                o.values.astype(WIRE_DTYPES[o.datatype], copy=False).tobytes()
                for o in result.outputs])

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


async def start_grpc_server(app: FastAPI) -> grpc.aio.Server:
    """Starts serving on settings.grpc_host:grpc_port; the caller stops it."""
    settings = app.state.settings
    limit = settings.max_request_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(app), server)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    server.add_insecure_port(address)
    await server.start()
    logger.info("serving the Open Inference Protocol over gRPC on %s", address)
    return server
