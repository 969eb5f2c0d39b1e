"""Open Inference Protocol v2 (the KServe / Triton HTTP API) beside the native one.

The model takes one input tensor, `strain` (FP64 or FP32, shape [n] or [n, 1]), and returns
the tensors of service.oip.outputs (by default FP64 `mean`, `aleatoric_sd`, `epistemic_sd`,
`total_sd` and the BOOL `outside_training_domain`), each with the input's shape. The
numbers are the native endpoint's, from the same code; gRPC (service.oip.grpc_server)
shares everything below the transport (service.oip.core).

As Triton and KServe do, these routes take a JSON body without a content type (the
native API keeps its rule: JSON must say so). Triton's binary tensor data extension is
implemented (service.oip.http_binary; docs/oip.md); OpenAPI cannot describe its bodies,
so the infer routes say so in their description.

One deliberate difference from the protocol text: errors keep this service's single body
shape {"error": {"code", "message", "details"}} (the protocol's is {"error": "<message>"});
OIP clients read `error` and show it either way.
"""

from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from service.api.deps import LiveRegistryDep, SessionDep, SettingsDep, work_of
from service.api.json_body import JsonRoute
from service.api.responses import OrjsonResponse
from service.api.schemas import error_responses
from service.errors import InvalidInputError
from service.observability import record_model_version
from service.oip import core, http_binary
from service.oip.schemas import (
    OipInferParameters,
    OipInferRequest,
    OipInferResponse,
    OipLive,
    OipModelMetadata,
    OipModelReady,
    OipReady,
    OipServerMetadata,
)
from service.prediction.request import MAX_NAME_LENGTH, MAX_VERSION

# Without a content type the body is read as JSON, as OIP clients (tritonclient) send it.
router = APIRouter(prefix="/v2", tags=["open inference protocol v2"],
                   strict_content_type=False, route_class=JsonRoute)

ERRORS = error_responses(404, 422, 503)
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The outputs as JSON, or (binary tensor data extension) the JSON "
          "header followed by the binary outputs",
          "content": {http_binary.MEDIA_TYPE: {
              "schema": {"type": "string", "format": "binary"}}}},
    **error_responses(404, 413, 415, 422, 503, 504),
}
INFER_DESCRIPTION = (
    "One input tensor `strain` (FP64 or FP32, shape [n] or [n, 1]); outputs as requested "
    "(default: mean, aleatoric_sd, epistemic_sd, total_sd, outside_training_domain). "
    "A body without a content type is read as JSON.\n\n"
    "**Binary tensor data extension** (Triton's; what `tritonclient` sends by default), "
    "which OpenAPI cannot describe: with the header `Inference-Header-Content-Length: N`, "
    "the body is the JSON request in its first N bytes followed by the raw little-endian "
    "tensor bytes of each input that has `parameters.binary_data_size` instead of `data`. "
    "Outputs requested with `parameters.binary_data: true` (or all, with the request's "
    "`parameters.binary_data_output: true`) come back the same way: content type "
    "application/octet-stream, `Inference-Header-Content-Length` giving the JSON header's "
    "length, each binary output's `parameters.binary_data_size` its byte count. "
    "N = 0 sends raw FP64 strains alone. The body-size limit counts the whole body. "
    "Details: docs/oip.md.")

NamePath = Path(..., max_length=MAX_NAME_LENGTH,
                description="Registered model name.")
VersionPath = Path(..., ge=1, le=MAX_VERSION, description="Model version number.")


@router.get("", response_model=OipServerMetadata, summary="Server metadata")
def server_metadata() -> dict[str, Any]:
    return core.server_metadata()


@router.get("/health/live", response_model=OipLive, summary="Server liveness")
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", response_model=OipReady, summary="Server readiness",
            responses={503: {"model": OipReady}},
            description="The rule of /readyz: not ready while draining for shutdown, or "
            "when the registry database is unavailable and no model is loaded.")
def ready(request: Request, live_registry: LiveRegistryDep) -> OrjsonResponse:
    is_ready = core.server_ready(live_registry, request.app.state.drain.active)
    return OrjsonResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


@router.get("/models/{name}", response_model=OipModelMetadata, responses=ERRORS,
            summary="Model metadata (the version the default alias serves)")
def model_metadata(session: SessionDep, live_registry: LiveRegistryDep,
                   settings: SettingsDep, name: str = NamePath) -> dict:
    return core.model_metadata(session, live_registry, settings, name, None)


@router.get("/models/{name}/versions/{version}", response_model=OipModelMetadata,
            responses=ERRORS, summary="Model metadata of one version")
def model_version_metadata(session: SessionDep, live_registry: LiveRegistryDep,
                           settings: SettingsDep, name: str = NamePath,
                           version: int = VersionPath) -> dict:
    return core.model_metadata(session, live_registry, settings, name, version)


def _model_ready(session, live_registry, settings, name: str, version: int | None) -> dict:
    ref = core.model_ready(session, live_registry, settings, name, version)
    return {"name": name, "version": str(ref.version), "ready": True}


@router.get("/models/{name}/ready", response_model=OipModelReady, responses=ERRORS,
            summary="Model readiness (loads the version if needed)")
def model_ready(session: SessionDep, live_registry: LiveRegistryDep, settings: SettingsDep,
                name: str = NamePath) -> dict:
    return _model_ready(session, live_registry, settings, name, None)


@router.get("/models/{name}/versions/{version}/ready", response_model=OipModelReady,
            responses=ERRORS, summary="Readiness of one model version")
def model_version_ready(session: SessionDep, live_registry: LiveRegistryDep,
                        settings: SettingsDep, name: str = NamePath,
                        version: int = VersionPath) -> dict:
    return _model_ready(session, live_registry, settings, name, version)


def _strain(request: Request, body: OipInferRequest, count: int) -> np.ndarray:
    """The input tensor's strains, from `data` or from the binary part of the body."""
    tensor = body.inputs[0]
    binary = http_binary.binary_part(request)
    size = tensor.parameters.binary_data_size if tensor.parameters is not None else None
    if (size is None) == (tensor.data is None):
        problem = "missing" if size is None else "given with binary_data_size"
        raise InvalidInputError(
            f"inputs[0].data: {problem}; give the strains either as data or as binary data "
            f"(parameters.binary_data_size)",
            [{"field": "inputs[0].data", "message": f"{problem}: give data or binary data"}])
    if tensor.data is not None:
        if binary is not None and len(binary):
            raise InvalidInputError(
                f"body: {len(binary)} bytes follow the JSON header, but no input has "
                f"parameters.binary_data_size",
                [{"field": "inputs[0].parameters.binary_data_size",
                  "message": "missing for the binary data sent"}])
        return core.strain_from_values(tensor.data, tensor.datatype, count,
                                       "inputs[0].data", "inputs[0].shape")
    size_field = "inputs[0].parameters.binary_data_size"
    if binary is None:
        raise InvalidInputError(
            f"{size_field}: binary input needs the Inference-Header-Content-Length header "
            f"(the JSON header's length in bytes, the tensor bytes after it)",
            [{"field": "Inference-Header-Content-Length", "message": "missing"}])
    if len(binary) != size:
        raise InvalidInputError(
            f"{size_field}: says {size} bytes, but {len(binary)} follow the JSON header",
            [{"field": size_field, "message": "does not match the bytes sent"}])
    return core.strain_from_bytes(binary, tensor.datatype, count, "inputs[0].data",
                                  size_field)


def _infer(request: Request, body: OipInferRequest, session, live_registry, settings,
           name: str, version: int | None) -> Response:
    tensor = body.inputs[0]
    count = core.check_input(tensor.name, tensor.datatype, tensor.shape, settings)
    strain = _strain(request, body, count)
    parameters = body.parameters or OipInferParameters()
    requested = body.outputs or []
    names = core.check_outputs([o.name for o in requested])
    binary: dict[str, bool] = {}
    for output in requested:  # an output's own binary_data overrides binary_data_output
        own = output.parameters.binary_data if output.parameters is not None else None
        binary.setdefault(output.name, parameters.binary_data_output if own is None else own)

    def encode(result: core.Inference) -> Response:
        response: dict[str, Any] = {"model_name": result.ref.name,
                                    "model_version": str(result.ref.version)}
        if body.id is not None:
            response["id"] = body.id
        record_model_version(request, result.ref.name, result.ref.version, count)
        return http_binary.encode(
            response, tensor.shape, result.outputs,
            [binary.get(o.name, parameters.binary_data_output) for o in result.outputs])

    return core.infer(session, live_registry, settings, name, version, parameters.alias,
                      parameters.extrapolation, strain, names, work_of(request), encode)


@router.post("/models/{name}/infer", response_model=OipInferResponse,
             responses=INFER_RESPONSES, description=INFER_DESCRIPTION,
             summary="Inference (the version the default alias serves, or parameters.alias)")
def infer(body: OipInferRequest, request: Request, session: SessionDep,
          live_registry: LiveRegistryDep, settings: SettingsDep,
          name: str = NamePath) -> Response:
    return _infer(request, body, session, live_registry, settings, name, None)


@router.post("/models/{name}/versions/{version}/infer", response_model=OipInferResponse,
             responses=INFER_RESPONSES, description=INFER_DESCRIPTION,
             summary="Inference with one model version")
def infer_version(body: OipInferRequest, request: Request, session: SessionDep,
                  live_registry: LiveRegistryDep, settings: SettingsDep,
                  name: str = NamePath, version: int = VersionPath) -> Response:
    return _infer(request, body, session, live_registry, settings, name, version)
