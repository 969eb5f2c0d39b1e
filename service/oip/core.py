"""The Open Inference Protocol v2 model, whatever the transport.

The HTTP routes (JSON and Triton's binary tensor extension) and the gRPC service both
decode their request into strains (and covariates) and routing, call `infer`, and encode
the outputs it returns: one set of checks, one resolution, one prediction, so every
transport answers the native endpoint's numbers and errors (SurrogateError; each
transport maps them to its status codes).

Inputs are named tensors: `strain`, and for a model with covariates one tensor per
covariate, named as the covariate (`temperature`, `rate`, ...), FP64 or FP32, holding one
value for every strain (shape [1]) or one per strain ([n]; [1, 1] and [n, 1] alike), in
any order. The covariates' names, order and ranges are the version's (its manifest), so
they are checked once the version is known; the native pipeline's `covariate_matrix`
places them (service.prediction.conditions).

Why one module of this size: the tensor checks, routing and output encoding are the
protocol's one contract; every transport calls them in this order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from service import __version__
from service.errors import InvalidInputError
from service.inference.posterior import Posterior
from service.oip.outputs import MAX_INPUTS, OUTPUTS, WIRE_DTYPES, Computed, default_outputs
from service.oip.schemas import MAX_REQUEST_ID_LENGTH
from service.prediction import admission
from service.prediction.conditions import (
    covariate_matrix,
    reference_share,
    reject_outside,
    reject_untested_strains,
)
from service.prediction.gate import Work
from service.prediction.pipeline import check_point_count, reject_extrapolation, resolve
from service.registry.reads import VersionRef, model_detail
from service.registry.routing import LiveRegistry
from service.settings import Settings

T = TypeVar("T")
SERVER_NAME = "material-surrogate"
SERVER_VERSION = __version__
# Triton's name for the binary tensor data extension, reported in the server metadata.
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "numpy_heteroskedastic_bnn"
INPUT_NAME = "strain"
# How many offending elements an error names.
_MAX_NAMED = 20


def check_request_id(request_id: str) -> str:
    """The request `id` to echo back; 422 when longer than HTTP's schema allows."""
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidInputError(
            f"id: at most {MAX_REQUEST_ID_LENGTH} characters, not {len(request_id)}",
            [{"field": "id", "limit": MAX_REQUEST_ID_LENGTH, "message": "too long"}])
    return request_id


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str
    values: np.ndarray


@dataclass(frozen=True)
class Inference:
    ref: VersionRef
    outputs: list[Output]


def strain_count(shape: Sequence[int], field: str) -> int:
    """How many strains a [n] or [n, 1] shape holds (422 for any other shape)."""
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or shape[0] < 0:
        raise InvalidInputError(
            f"{field}: must be [n] or [n, 1], not {list(shape)}",
            [{"field": field, "message": "must be [n] or [n, 1]"}])
    return int(shape[0])


def check_input(name: str, datatype: str, shape: Sequence[int], settings: Settings,
                prefix: str = "inputs[0]") -> int:
    """The strain count of the strain tensor, after its name, type, shape and the point
    limit (413) are checked: before any data is decoded."""
    if name != INPUT_NAME:
        raise InvalidInputError(
            f"{prefix}.name: the model's input tensor is {INPUT_NAME!r}, not {name!r}",
            [{"field": f"{prefix}.name", "message": f"must be {INPUT_NAME!r}"}])
    _check_datatype(datatype, prefix)
    count = strain_count(shape, f"{prefix}.shape")
    check_point_count(count, settings, field=f"{prefix}.shape")
    if count == 0:
        raise InvalidInputError(f"{prefix}.shape: at least one strain is needed",
                                [{"field": f"{prefix}.shape", "message": "must not be empty"}])
    return count


def _check_datatype(datatype: str, prefix: str) -> None:
    if datatype not in ("FP64", "FP32"):
        raise InvalidInputError(
            f"{prefix}.datatype: must be FP64 or FP32, not {datatype!r}",
            [{"field": f"{prefix}.datatype", "message": "must be FP64 or FP32"}])


@dataclass(frozen=True)
class InputSpec:
    """One input tensor as the request declares it (before its data is read)."""

    name: str
    datatype: str
    shape: Sequence[int]


def check_inputs(inputs: Sequence[InputSpec], settings: Settings) -> tuple[int, list[int]]:
    """(index of the strain tensor, value count of every input) after the names, types,
    shapes and the point limit are checked, before any data is decoded. Tensors other
    than `strain` are covariates: one value for every strain, or one per strain."""
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise InvalidInputError(
            f"inputs: {len(inputs)} tensors; give strain and at most one per covariate",
            [{"field": "inputs", "message": f"1 to {MAX_INPUTS} tensors"}])
    names = [tensor.name for tensor in inputs]
    if len(inputs) == 1:  # the common case: the error names that one tensor's name
        return 0, [check_input(inputs[0].name, inputs[0].datatype, inputs[0].shape,
                               settings)]
    if INPUT_NAME not in names:
        raise InvalidInputError(
            f"inputs: no tensor named {INPUT_NAME!r} (got {', '.join(map(repr, names))[:200]})",
            [{"field": "inputs", "message": f"needs a tensor named {INPUT_NAME!r}"}])
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InvalidInputError(f"inputs[{index}].name: {name!r} is given twice",
                                    [{"field": f"inputs[{index}].name",
                                      "message": "given twice"}])
    at = names.index(INPUT_NAME)
    strain = inputs[at]
    count = check_input(strain.name, strain.datatype, strain.shape, settings, f"inputs[{at}]")
    counts = []
    for index, tensor in enumerate(inputs):
        if index == at:
            counts.append(count)
            continue
        prefix = f"inputs[{index}]"
        _check_datatype(tensor.datatype, prefix)
        held = strain_count(tensor.shape, f"{prefix}.shape")
        if held not in (1, count):
            raise InvalidInputError(
                f"{prefix}.shape: {tensor.name!r} holds {held} values; give 1 (for every "
                f"strain) or {count} (one per strain)",
                [{"field": f"{prefix}.shape", "message": f"must hold 1 or {count} values"}])
        counts.append(held)
    return at, counts


def strain_from_values(values: Sequence[float] | np.ndarray, datatype: str, count: int,
                       field: str, shape_field: str) -> np.ndarray:
    """Strains from a list of numbers (JSON data, gRPC typed contents), as float64; FP32
    values are rounded to FP32 first, as the client's FP32 tensor holds them."""
    if len(values) != count:
        raise InvalidInputError(
            f"{shape_field} holds {count} values but {field} has {len(values)}",
            [{"field": shape_field, "message": "does not match the data's length"}])
    strain = np.asarray(values, dtype=np.float64)
    if datatype == "FP32":
        with np.errstate(over="ignore"):
            strain = strain.astype(np.float32).astype(np.float64)
    _check_finite(strain, field, "does not fit in FP32" if datatype == "FP32"
                  else "is not a finite number")
    return strain


def strain_from_bytes(raw: bytes | memoryview, datatype: str, count: int, field: str,
                      size_field: str) -> np.ndarray:
    """Strains from raw little-endian bytes (binary extension, gRPC raw contents)."""
    dtype = WIRE_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"{size_field}: {len(raw)} bytes, but {count} {datatype} values take "
            f"{count * dtype.itemsize}",
            [{"field": size_field, "message": f"must be {count * dtype.itemsize} bytes"}])
    strain = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    _check_finite(strain, field, "is not a finite number")
    return strain


def _check_finite(strain: np.ndarray, field: str, message: str) -> None:
    bad = np.flatnonzero(~np.isfinite(strain))
    if bad.size:
        raise InvalidInputError(f"{field}[{int(bad[0])}]: {message}",
                                [{"field": f"{field}[{i}]", "message": message}
                                 for i in bad[:_MAX_NAMED]])


def check_outputs(names: Sequence[str], field: str = "outputs") -> list[str]:
    """The requested output names, de-duplicated in order (empty: the version's defaults,
    which `infer` picks)."""
    for index, name in enumerate(names):
        if name not in OUTPUTS:
            raise InvalidInputError(
                f"{field}[{index}].name: unknown output {name!r}; the outputs are "
                f"{', '.join(OUTPUTS)}",
                [{"field": f"{field}[{index}].name", "message": "unknown output"}])
    return list(dict.fromkeys(names))


def infer(session: Session, live_registry: LiveRegistry, settings: Settings, name: str,
          version: int | None, alias: str | None, extrapolation: str, strain: np.ndarray,
          outputs: Sequence[str], work: Work, encode: Callable[[Inference], T],
          data_field: str = "inputs[0].data",
          covariates: dict[str, np.ndarray] | None = None) -> T:
    """The outputs for checked strains (and covariate tensors by name, each 1 or n
    values), encoded by the transport's `encode`: resolves the version (alias only without
    one), places the covariates, applies the extrapolation policy, admits the work by its
    cost (prediction and encoding: 413 over budget, 503 when busy), predicts."""
    ref, posterior = resolve(live_registry, session, name, version,
                             alias if version is None else None, settings)
    target = _covariate_rows(posterior, ref, strain.size, covariates or {})
    if extrapolation == "reject":
        reject_extrapolation(posterior, strain, ref, field=data_field)
        if target is not None:
            reject_outside(posterior, target, ref, "inputs")
            reject_untested_strains(posterior, strain, target, ref, data_field)
    outputs = list(outputs) or default_outputs(posterior)
    for index, name in enumerate(outputs):
        needs = ("a version fitted on grouped data" if OUTPUTS[name].needs_curve_model
                 and posterior.curve is None else "a version fitted with covariates"
                 if OUTPUTS[name].needs_covariates and target is None else None)
        if needs:
            raise InvalidInputError(
                f"outputs[{index}].name: {name!r} needs {needs} (version {ref.version} of "
                f"{ref.name!r} is not)",
                [{"field": f"outputs[{index}].name", "message": f"needs {needs}"}])
    tangent = any(OUTPUTS[n].needs_tangent for n in outputs)
    shape_field = data_field.rsplit(".", 1)[0] + ".shape"  # the strain tensor's shape
    share = reference_share(posterior, target)
    with work.admitted(lambda count: admission.oip_estimate(posterior, count, len(outputs),
                                                            tangent, share),
                       strain.size, shape_field):
        computed = Computed(posterior, strain,
                            posterior.predict(strain, tangent=tangent, covariates=target),
                            target)
        return encode(Inference(ref, [
            Output(n, OUTPUTS[n].datatype, np.asarray(OUTPUTS[n].value(computed)))
            for n in outputs]))


def _covariate_rows(posterior: Posterior, ref: VersionRef, count: int,
                    covariates: dict[str, np.ndarray]) -> np.ndarray | None:
    """(count, k) covariate values of a model with covariates (None for one without);
    422 naming the tensor that is unknown, missing or sent to a model without them."""
    if posterior.conditions is None:
        if covariates:
            extra = next(iter(covariates))
            raise InvalidInputError(
                f"inputs: model {ref.name!r} version {ref.version} takes one input, "
                f"{INPUT_NAME!r} (it was fitted without covariates), not {extra!r}",
                [{"field": f"inputs.{extra}", "message": "not an input of this version"}])
        return None
    given = {name: float(values[0]) if values.size == 1 else values
             for name, values in covariates.items()}
    return covariate_matrix(given, posterior.conditions, count, "inputs", INPUT_NAME)


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS}


def server_ready(live_registry: LiveRegistry, draining: bool) -> bool:
    """/readyz's rule: not while draining for shutdown, nor when no default request could
    be answered (database unavailable and nothing loaded, or no alias target loads)."""
    return not draining and live_registry.status()["status"] != "unavailable"


def model_metadata(session: Session, live_registry: LiveRegistry, settings: Settings,
                   name: str, version: int | None) -> dict[str, Any]:
    """The version's tensors: `strain`, then one input per covariate (shape [-1]: one
    value per strain, or one for all), and the outputs it can return."""
    ref, posterior = resolve(live_registry, session, name, version, None, settings)
    versions = [str(v["version"]) for v in model_detail(session, name)["versions"]
                if v["status"] == "ready"]
    conditions = posterior.conditions
    covariates = [] if conditions is None else list(zip(conditions.names, conditions.units,
                                                        strict=True))
    parameters = {"version_served": str(ref.version)}
    if covariates:
        # Units are not part of a tensor's metadata: a parameter names them.
        parameters["covariate_units"] = ",".join(f"{n}={u}" for n, u in covariates)
    return {
        "name": name,
        "versions": versions,
        "platform": PLATFORM,
        "inputs": [{"name": n, "datatype": "FP64", "shape": [-1]}
                   for n in (INPUT_NAME, *(n for n, _ in covariates))],
        "outputs": [{"name": n, "datatype": spec.datatype, "shape": [-1]}
                    for n, spec in OUTPUTS.items()
                    if not (spec.needs_covariates and not covariates)],
        "parameters": parameters,
    }


def model_ready(session: Session, live_registry: LiveRegistry, settings: Settings,
                name: str, version: int | None) -> VersionRef:
    """The version that would answer, loaded (and verified) now if it was not yet."""
    return resolve(live_registry, session, name, version, None, settings)[0]
