"""Open Inference Protocol v2 (the KServe / Triton HTTP API) beside the native one.

The model takes one input tensor, `strain` (FP64 or FP32, shape [n] or [n, 1]), and returns
FP64 tensors `mean`, `aleatoric_sd`, `epistemic_sd`, `total_sd` and the BOOL tensor
`outside_training_domain` (and, when asked by name, `tangent`, `tangent_epistemic_sd`),
each with the input's shape. The numbers are the native endpoint's, from the same code.

One deliberate difference from the protocol text: errors keep this service's single body
shape {"error": {"code", "message", "details"}} (the protocol's is {"error": "<message>"});
OIP clients read `error` and show it either way.
"""

from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Request

from service import __version__, prediction
from service.api.deps import CacheDep, LiveRegistryDep, SessionDep, SettingsDep
from service.api.responses import OrjsonResponse
from service.api.schemas import (
    MAX_VERSION,
    ErrorBody,
    OipInferParameters,
    OipInferRequest,
    OipInferResponse,
    OipLive,
    OipModelMetadata,
    OipModelReady,
    OipReady,
    OipServerMetadata,
)
from service.errors import InvalidInputError
from service.observability import record_model_version
from service.registry.repository import model_detail

router = APIRouter(prefix="/v2", tags=["open inference protocol v2"])

ERRORS = {code: {"model": ErrorBody} for code in (404, 422, 503)}
INFER_ERRORS = {code: {"model": ErrorBody} for code in (404, 413, 415, 422, 503)}
DEFAULT_OUTPUTS = ("mean", "aleatoric_sd", "epistemic_sd", "total_sd",
                   "outside_training_domain")
SERVER_NAME = "material-surrogate"

NamePath = Path(..., max_length=prediction.MAX_NAME_LENGTH,
                description="Registered model name.")
VersionPath = Path(..., ge=1, le=MAX_VERSION, description="Model version number.")


@router.get("", response_model=OipServerMetadata, summary="Server metadata")
def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": []}


@router.get("/health/live", response_model=OipLive, summary="Server liveness")
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", response_model=OipReady, summary="Server readiness",
            responses={503: {"model": OipReady}},
            description="Ready unless the registry database is unavailable and no model is "
            "loaded (the same rule as /readyz).")
def ready(live_registry: LiveRegistryDep) -> OrjsonResponse:
    is_ready = live_registry.status()["status"] != "unavailable"
    return OrjsonResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


def _metadata(session, live_registry, settings, name: str, version: int | None) -> dict:
    ref = live_registry.resolve(session, name, version, None, settings.default_alias)
    versions = [str(v["version"]) for v in model_detail(session, name)["versions"]
                if v["status"] == "ready"]
    return {
        "name": name,
        "versions": versions,
        "platform": "numpy_heteroskedastic_bnn",
        "inputs": [{"name": "strain", "datatype": "FP64", "shape": [-1]}],
        "outputs": [{"name": n, "datatype": "BOOL" if n == "outside_training_domain"
                     else "FP64", "shape": [-1]}
                    for n in (*DEFAULT_OUTPUTS, "tangent", "tangent_epistemic_sd")],
        "parameters": {"version_served": str(ref.version)},
    }


@router.get("/models/{name}", response_model=OipModelMetadata, responses=ERRORS,
            summary="Model metadata (the version the default alias serves)")
def model_metadata(session: SessionDep, live_registry: LiveRegistryDep,
                   settings: SettingsDep, name: str = NamePath) -> dict:
    return _metadata(session, live_registry, settings, name, None)


@router.get("/models/{name}/versions/{version}", response_model=OipModelMetadata,
            responses=ERRORS, summary="Model metadata of one version")
def model_version_metadata(session: SessionDep, live_registry: LiveRegistryDep,
                           settings: SettingsDep, name: str = NamePath,
                           version: int = VersionPath) -> dict:
    return _metadata(session, live_registry, settings, name, version)


def _model_ready(session, cache, live_registry, settings, name: str,
                 version: int | None) -> dict:
    ref = live_registry.resolve(session, name, version, None, settings.default_alias)
    cache.get(session, ref)  # loads (and verifies) it now if it was not loaded yet
    return {"name": name, "version": str(ref.version), "ready": True}


@router.get("/models/{name}/ready", response_model=OipModelReady, responses=ERRORS,
            summary="Model readiness (loads the version if needed)")
def model_ready(session: SessionDep, cache: CacheDep, live_registry: LiveRegistryDep,
                settings: SettingsDep, name: str = NamePath) -> dict:
    return _model_ready(session, cache, live_registry, settings, name, None)


@router.get("/models/{name}/versions/{version}/ready", response_model=OipModelReady,
            responses=ERRORS, summary="Readiness of one model version")
def model_version_ready(session: SessionDep, cache: CacheDep, live_registry: LiveRegistryDep,
                        settings: SettingsDep, name: str = NamePath,
                        version: int = VersionPath) -> dict:
    return _model_ready(session, cache, live_registry, settings, name, version)


def _infer(request: Request, body: OipInferRequest, session, cache, live_registry,
           settings, name: str, version: int | None) -> OrjsonResponse:
    tensor = body.inputs[0]
    if tensor.name != "strain":
        raise InvalidInputError(
            f"inputs[0].name: the model's input tensor is 'strain', not {tensor.name!r}",
            [{"field": "inputs[0].name", "message": "must be 'strain'"}])
    if len(tensor.shape) == 2 and tensor.shape[1] != 1:
        raise InvalidInputError(
            f"inputs[0].shape: must be [n] or [n, 1], not {tensor.shape}",
            [{"field": "inputs[0].shape", "message": "must be [n] or [n, 1]"}])
    count = len(tensor.data)
    prediction.check_point_count(count, settings, field="inputs[0].data")
    if tensor.shape[0] != count:
        raise InvalidInputError(
            f"inputs[0].shape {tensor.shape} holds {tensor.shape[0]} values but data has "
            f"{count}",
            [{"field": "inputs[0].shape", "message": "does not match the data's length"}])
    strain = np.asarray(tensor.data, dtype=np.float64)
    if tensor.datatype == "FP32":
        with np.errstate(over="ignore"):
            strain = strain.astype(np.float32).astype(np.float64)
        overflow = np.flatnonzero(~np.isfinite(strain))
        if overflow.size:
            first = int(overflow[0])
            raise InvalidInputError(
                f"inputs[0].data[{first}]: does not fit in FP32",
                [{"field": f"inputs[0].data[{i}]", "message": "does not fit in FP32"}
                 for i in overflow[:20]])
    parameters = body.parameters or OipInferParameters()
    alias = parameters.alias if version is None else None
    ref, posterior = prediction.resolve(live_registry, session, name, version, alias,
                                        settings)
    if parameters.extrapolation == "reject":
        prediction.reject_extrapolation(posterior, strain, ref, field="inputs[0].data")
    wanted = list(dict.fromkeys(o.name for o in body.outputs)) if body.outputs \
        else list(DEFAULT_OUTPUTS)
    tangent = "tangent" in wanted or "tangent_epistemic_sd" in wanted
    predicted = posterior.predict(strain, tangent=tangent)
    values = {
        "mean": lambda: predicted.mean,
        "aleatoric_sd": lambda: predicted.aleatoric_sd,
        "epistemic_sd": lambda: predicted.epistemic_sd,
        "total_sd": lambda: predicted.total_sd,
        "tangent": lambda: predicted.tangent,
        "tangent_epistemic_sd": lambda: predicted.tangent_epistemic_sd,
        "outside_training_domain": lambda: posterior.outside_domain(strain),
    }
    outputs = [{
        "name": output,
        "shape": tensor.shape,
        "datatype": "BOOL" if output == "outside_training_domain" else "FP64",
        "data": values[output](),
    } for output in wanted]
    response: dict[str, Any] = {"model_name": ref.name, "model_version": str(ref.version),
                                "outputs": outputs}
    if body.id is not None:
        response["id"] = body.id
    record_model_version(request, ref.name, ref.version, count)
    return OrjsonResponse(response)


@router.post("/models/{name}/infer", response_model=OipInferResponse,
             responses=INFER_ERRORS,
             summary="Inference (the version the default alias serves, or parameters.alias)")
def infer(body: OipInferRequest, request: Request, session: SessionDep, cache: CacheDep,
          live_registry: LiveRegistryDep, settings: SettingsDep,
          name: str = NamePath) -> OrjsonResponse:
    return _infer(request, body, session, cache, live_registry, settings, name, None)


@router.post("/models/{name}/versions/{version}/infer", response_model=OipInferResponse,
             responses=INFER_ERRORS, summary="Inference with one model version")
def infer_version(body: OipInferRequest, request: Request, session: SessionDep,
                  cache: CacheDep, live_registry: LiveRegistryDep, settings: SettingsDep,
                  name: str = NamePath, version: int = VersionPath) -> OrjsonResponse:
    return _infer(request, body, session, cache, live_registry, settings, name, version)
