"""Request and response bodies of the Open Inference Protocol v2 (KServe / Triton) over
HTTP; gRPC has its own generated messages (service.oip.grpc_predict_v2_pb2).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FiniteFloat, model_validator

from service.oip.outputs import DEFAULT_OUTPUTS, MAX_INPUTS, OUTPUTS
from service.prediction.request import refuse_many_unknown_fields

# Longest request `id` echoed back (a longer one is a 422 naming `id`), on every transport.
MAX_REQUEST_ID_LENGTH = 256


class OipServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class OipLive(BaseModel):
    live: bool


class OipReady(BaseModel):
    ready: bool


class OipModelReady(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class OipTensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a variable dimension.")


class OipModelMetadata(BaseModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[OipTensorMetadata]
    outputs: list[OipTensorMetadata]
    parameters: dict[str, Any] | None = None


class OipInferParameters(BaseModel):
    """Request-level parameters this service understands (others are ignored)."""

    model_config = ConfigDict(extra="allow")

    alias: str | None = Field(
        None, min_length=1, max_length=64,
        description="On the unversioned route: serve the version this alias points to.")
    extrapolation: Literal["allow", "flag", "reject"] = Field(
        "flag", description="As on the native API: `reject` refuses strains outside the "
        "training domain (422).")
    binary_data_output: bool = Field(
        False, description="Binary tensor data extension: return every output as raw "
        "little-endian bytes after the JSON header (an output's own `binary_data` "
        "overrides). See docs/oip.md.")


def _flatten_rows(value: Any) -> Any:
    """Nested [[x0], [x1], ...] -> flat [x0, x1, ...] (row-major), so errors name one flat
    index; anything else is left for the list-of-numbers validation to judge."""
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        return [x for row in value for x in row]
    return value


_FlatData = Annotated[list[FiniteFloat], Field(min_length=1)]
TensorData = Annotated[
    list[FiniteFloat],
    Field(fail_fast=True),
    BeforeValidator(_flatten_rows, json_schema_input_type=_FlatData
                    | Annotated[list[_FlatData], Field(min_length=1)]),
]


class OipTensorParameters(BaseModel):
    """Input tensor parameters this service understands (others are ignored)."""

    model_config = ConfigDict(extra="allow", strict=True)

    binary_data_size: int | None = Field(
        None, ge=0, le=2**62, description="Binary tensor data extension: the tensor's data "
        "is this many raw little-endian bytes after the JSON header, instead of `data`. "
        "See docs/oip.md.")


class OipInputTensor(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    _few_unknown_fields = model_validator(mode="before")(
        lambda data: refuse_many_unknown_fields(data, OipInputTensor))

    name: str = Field(..., max_length=64, description='"strain", or for a model with '
                      'covariates the name of one of them (e.g. "temperature").')
    shape: list[Annotated[int, Field(ge=0, le=2**40)]] = Field(
        ..., min_length=1, max_length=2, description="[n] or [n, 1]; a covariate also [1] "
        "(one value for every strain).")
    datatype: Literal["FP64", "FP32"]
    parameters: OipTensorParameters | None = None
    data: TensorData | None = Field(
        None, min_length=1, description="The values, flat (row-major) or nested as the "
        "shape says. Required, unless parameters.binary_data_size is given instead.")


class OipOutputParameters(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    binary_data: bool | None = Field(
        None, description="Binary tensor data extension: return this output as raw "
        "little-endian bytes (true) or as JSON `data` (false), whatever "
        "binary_data_output says. See docs/oip.md.")


class OipRequestedOutput(BaseModel):
    name: Literal[*OUTPUTS]  # type: ignore[valid-type]
    parameters: OipOutputParameters | None = None


class OipInferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{
            "id": "42",
            "inputs": [{"name": "strain", "shape": [3], "datatype": "FP64",
                        "data": [-0.4, 0.0, 0.4]}],
        }, {
            "inputs": [{"name": "strain", "shape": [2, 1], "datatype": "FP32",
                        "data": [[0.1], [0.2]]}],
            "outputs": [{"name": "mean"}, {"name": "tangent"}],
        }, {
            "inputs": [{"name": "strain", "shape": [2], "datatype": "FP64",
                        "data": [-0.2, 0.2]},
                       {"name": "temperature", "shape": [1], "datatype": "FP64",
                        "data": [353.15]},
                       {"name": "rate", "shape": [2], "datatype": "FP64",
                        "data": [0.01, 0.1]}],
        }]},
    )

    id: str | None = Field(None, max_length=MAX_REQUEST_ID_LENGTH)
    parameters: OipInferParameters | None = None
    inputs: list[OipInputTensor] = Field(
        ..., min_length=1, max_length=MAX_INPUTS, description="`strain`, and for a model "
        "with covariates one tensor per covariate, named as it (docs/oip.md).")
    outputs: list[OipRequestedOutput] | None = Field(
        None, min_length=1, max_length=len(OUTPUTS),
        description=f"Which outputs to return (default: {', '.join(DEFAULT_OUTPUTS)}).")


class OipOutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = Field(
        None, description="binary_data_size when the output follows the JSON as bytes.")
    data: list[float] | list[bool] | None = Field(
        None, description="The values (absent when the output is binary).")


class OipInferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[OipOutputTensor]
