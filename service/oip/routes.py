"""Open Inference Protocol v2 (the KServe / Triton HTTP API) beside the native one.

The model takes the input tensor `strain` (FP64 or FP32, shape [n] or [n, 1]), and for a
model with covariates one tensor per covariate named as it (shape [n] or [1]), and returns
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
    "Input tensor `strain` (FP64 or FP32, shape [n] or [n, 1]) and, for a model with "
    "covariates, one tensor per covariate named as it (FP64 or FP32, shape [n] or [1]: one "
    "value per strain, or one for all; the model metadata lists them); outputs as "
    "requested (default: mean, aleatoric_sd, epistemic_sd, total_sd, "
    "outside_training_domain, and for covariate models condition_distance). "
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


def _inputs(request: Request, body: OipInferRequest, counts: list[int]
            ) -> list[np.ndarray]:
    """Every input tensor's values, from `data` or from the binary part of the body (the
    binary inputs' bytes follow the JSON in input order)."""
    binary = http_binary.binary_part(request)
    sizes = [t.parameters.binary_data_size if t.parameters is not None else None
             for t in body.inputs]
    if binary is not None and len(binary) and all(size is None for size in sizes):
        raise InvalidInputError(
            f"body: {len(binary)} bytes follow the JSON header, but no input has "
            f"parameters.binary_data_size",
            [{"field": "inputs[0].parameters.binary_data_size",
              "message": "missing for the binary data sent"}])
    if any(size is not None for size in sizes):
        if binary is None:
            first = next(i for i, size in enumerate(sizes) if size is not None)
            raise InvalidInputError(
                f"inputs[{first}].parameters.binary_data_size: binary input needs the "
                f"Inference-Header-Content-Length header (the JSON header's length in "
                f"bytes, the tensor bytes after it)",
                [{"field": "Inference-Header-Content-Length", "message": "missing"}])
        declared = sum(size for size in sizes if size is not None)
        if len(binary) != declared:
            field = ("inputs[0].parameters.binary_data_size" if len(body.inputs) == 1
                     else "inputs[*].parameters.binary_data_size")
            raise InvalidInputError(
                f"{field}: says {declared} bytes, but {len(binary)} follow the JSON header",
                [{"field": field, "message": "does not match the bytes sent"}])
    values, offset = [], 0
    for index, (tensor, size, count) in enumerate(zip(body.inputs, sizes, counts,
                                                      strict=True)):
        prefix = f"inputs[{index}]"
        if (size is None) == (tensor.data is None):
            problem = "missing" if size is None else "given with binary_data_size"
            raise InvalidInputError(
                f"{prefix}.data: {problem}; give the values either as data or as binary "
                f"data (parameters.binary_data_size)",
                [{"field": f"{prefix}.data", "message": f"{problem}: give data or binary data"}])
        if tensor.data is not None:
            values.append(core.strain_from_values(tensor.data, tensor.datatype, count,
                                                  f"{prefix}.data", f"{prefix}.shape"))
            continue
        assert binary is not None and size is not None
        values.append(core.strain_from_bytes(binary[offset:offset + size], tensor.datatype,
                                             count, f"{prefix}.data",
                                             f"{prefix}.parameters.binary_data_size"))
        offset += size
    return values


def _infer(request: Request, body: OipInferRequest, session, live_registry, settings,
           name: str, version: int | None) -> Response:
    at, counts = core.check_inputs(
        [core.InputSpec(t.name, t.datatype, t.shape) for t in body.inputs], settings)
    values = _inputs(request, body, counts)
    strain = values[at]
    covariates = {t.name: v for i, (t, v) in enumerate(zip(body.inputs, values, strict=True))
                  if i != at}
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
        record_model_version(request, result.ref.name, result.ref.version, counts[at])
        return http_binary.encode(
            response, body.inputs[at].shape, result.outputs,
            [binary.get(o.name, parameters.binary_data_output) for o in result.outputs])

    return core.infer(session, live_registry, settings, name, version, parameters.alias,
                      parameters.extrapolation, strain, names, work_of(request), encode,
                      f"inputs[{at}].data", covariates)


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
