"""Request and response bodies of the public API.

Why one module of this size: these are the public API's bodies, and the OpenAPI
document is generated from them; one file is the one place a client-facing change shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    model_validator,
)

from service.oip.outputs import DEFAULT_OUTPUTS, OUTPUTS


def _assume_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# The registry stores UTC; SQLite hands timestamps back without their offset, and an
# RFC 3339 date-time (what OpenAPI's format promises) must carry one.
UtcDateTime = Annotated[datetime, AfterValidator(_assume_utc)]

# Versions are 32-bit database integers and seeds 63-bit: bounding them here turns an absurd
# value into a 422 instead of an overflow deeper down.
MAX_VERSION = 2**31 - 1
MAX_SEED = 2**63 - 1
MAX_SAMPLE_DRAWS = 10_000
ProbabilityLevel = Annotated[float, Field(gt=0.0, lt=1.0)]


# Validation stops at the first bad element of a list (fail_fast) and at the first few
# unknown keys: a body of 10^6 bad values then costs one error, not 10^6 of them.
MAX_UNKNOWN_FIELDS = 20


@cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields)


def refuse_many_unknown_fields(data: Any, model: type[BaseModel]) -> Any:
    """Refuse an object with more than MAX_UNKNOWN_FIELDS keys the model does not have,
    in one error; fewer are left to the model, which names each."""
    known = _field_names(model)
    if isinstance(data, dict) and len(data) > len(known) + MAX_UNKNOWN_FIELDS:
        unknown = [key for key in data if key not in known]
        named = ", ".join(repr(key)[:40] for key in unknown[:5])
        raise ValueError(f"{len(unknown)} unknown fields ({named}, ...); "
                         f"known: {', '.join(sorted(known))}")
    return data


class ObservedCurve(BaseModel):
    """One material's own measurements, in the training data's units."""

    model_config = ConfigDict(extra="forbid", strict=True)

    strain: list[FiniteFloat] = Field(
        ..., min_length=1, fail_fast=True, description="Strains the material was tested at "
        "(up to the service's max_observed_points, 1,000 by default).")
    stress: list[FiniteFloat] = Field(
        ..., min_length=1, fail_fast=True,
        description="The stress measured at each of those strains.")

    @model_validator(mode="after")
    def _paired(self) -> ObservedCurve:
        if len(self.strain) != len(self.stress):
            raise ValueError(f"strain has {len(self.strain)} values and stress "
                             f"{len(self.stress)}: give one stress per strain")
        return self


class PredictRequest(BaseModel):
    # strict: a string "0.1" or a boolean is not a number; simulation codes that send them
    # have a bug worth hearing about.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [
            {"strain": [-0.4, 0.0, 0.4]},
            {"strain": [0.1], "alias": "production"},
            {"strain": [-0.2, 0.2], "version": 1, "quantiles": [0.025, 0.5, 0.975]},
            {"strain": [0.05], "tangent": True},
            {"strain": [-0.1, 0.3], "draws": 100, "seed": 42},
            {"strain": [0.9], "extrapolation": "reject"},
            {"strain": [-0.4, -0.2, 0.0, 0.2, 0.4],
             "observed": {"strain": [-0.3, 0.1, 0.35], "stress": [-1.1, 0.12, 0.5]}},
        ]},
    )

    strain: list[FiniteFloat] = Field(
        ..., min_length=1, fail_fast=True,
        description="Strains to predict at, in the training data's units (up to the "
        "service's max_points_per_request, 1,000,000 by default; more is a 413).",
    )
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Serve this exact version.")
    alias: str | None = Field(
        None, min_length=1, max_length=64,
        description="Serve the version this alias points to (default: production, else the "
        "latest version). Give version or alias, not both.",
    )
    quantiles: list[ProbabilityLevel] | None = Field(
        None, min_length=1, max_length=99, fail_fast=True,
        description="Probability levels, each strictly between 0 and 1: returns the "
        "quantiles of the full posterior predictive (the mixture over draws s of "
        "Normal(mu_s, sigma_s)), not a Gaussian approximation.",
        examples=[[0.025, 0.5, 0.975]],
    )
    tangent: bool = Field(
        False, description="Also return d(mean)/d(strain) and its epistemic SD (analytic "
        "derivative of the network), e.g. for a Newton solver's consistent tangent.",
    )
    draws: int | None = Field(
        None, ge=1, le=MAX_SAMPLE_DRAWS,
        description="Return this many posterior-predictive samples per strain (points x "
        "draws is limited by the service's max_samples_per_request). For a model fitted on "
        "grouped data, column j is one whole curve: one posterior draw, one material and "
        "its test noise (docs/curves.md); otherwise one posterior draw for every strain "
        "plus independent scatter.",
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED,
        description="Seed for `draws`: the same seed and strains give the same samples. "
        "Without it the service picks one and returns it.",
    )
    extrapolation: Literal["allow", "flag", "reject"] = Field(
        "flag",
        description="Strains outside the training domain: `flag` (default) answers and marks "
        "them in `outside_training_domain`; `allow` answers without the marks; `reject` "
        "refuses the request (422) naming the offending strains.",
    )

    observed: ObservedCurve | None = Field(
        None, description="One material's own measurements: `mean`, the SDs and "
        "`samples` then describe that material's curve at `strain`, not the population's "
        "(models fitted on grouped data only; docs/curves.md).",
    )

    _few_unknown_fields = model_validator(mode="before")(
        lambda data: refuse_many_unknown_fields(data, PredictRequest))

    @model_validator(mode="after")
    def _version_or_alias(self) -> PredictRequest:
        if self.version is not None and self.alias is not None:
            raise ValueError("give either version or alias, not both")
        if self.seed is not None and self.draws is None:
            raise ValueError("seed applies to draws; give draws too")
        if self.observed is not None and self.tangent:
            raise ValueError("tangent cannot be combined with observed")
        return self


class UnstableStrainRange(BaseModel):
    curve: str = Field(description="Which curve: `mean`, a quantile column `q0.05` or "
                       "`curve_3` (export only).")
    strain_min: float
    strain_max: float


class PredictResponse(BaseModel):
    model: str
    version: int
    strain: list[float]
    mean: list[float] = Field(description="Posterior predictive mean, in stress units.")
    aleatoric_sd: list[float] = Field(description="Scatter of the data: sqrt(E_s sigma_s^2).")
    epistemic_sd: list[float] = Field(description="Uncertainty of the mean: SD_s mu_s.")
    total_sd: list[float] = Field(description="sqrt(aleatoric_sd^2 + epistemic_sd^2).")
    outside_training_domain: list[bool] | None = Field(
        None, description="True where the strain lies outside the fit's training domain "
        "(absent with extrapolation=allow).",
    )
    quantile_levels: list[float] | None = Field(
        None, description="The requested quantile levels (with `quantiles`).")
    quantiles: list[list[float]] | None = Field(
        None, description="quantiles[k][i]: the quantile_levels[k] quantile of the posterior "
        "predictive at strain[i].",
    )
    tangent: list[float] | None = Field(
        None, description="d(mean)/d(strain) (with tangent=true).")
    tangent_epistemic_sd: list[float] | None = Field(
        None, description="SD over posterior draws of d mu_s/d(strain) (with tangent=true).")
    unstable_strain_ranges: list[UnstableStrainRange] | None = Field(
        None, description="With tangent=true: the ranges of the requested strains (taken in "
        "ascending order) over which the mean's tangent is <= 0, from the first to the last "
        "such strain of each run; empty when the mean rises at every requested strain.")
    samples: list[list[float]] | None = Field(
        None, description="samples[i][j]: posterior-predictive sample j at strain[i] (with "
        "draws).",
    )
    seed: int | None = Field(None, description="The seed that produced `samples`.")
    between_material_sd: list[float] | None = Field(
        None, description="Material-to-material part of aleatoric_sd (models fitted on "
        "grouped data): aleatoric_sd^2 = between_material_sd^2 + within_material_sd^2.")
    within_material_sd: list[float] | None = Field(
        None, description="Test-noise part of aleatoric_sd: the scatter of repeated tests "
        "of one material (models fitted on grouped data).")
    observed_outside_training_domain: list[bool] | None = Field(
        None, description="With observed and extrapolation=flag: True where an observed "
        "strain lies outside the training domain.")


class VersionSummary(BaseModel):
    version: int
    status: str
    created_at: UtcDateTime


class ModelSummary(BaseModel):
    name: str
    versions: list[VersionSummary]
    aliases: dict[str, int]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- Open Inference Protocol v2 (KServe / Triton) -----------------------------------------

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

    name: str = Field(..., max_length=64, description='Must be "strain".')
    shape: list[Annotated[int, Field(ge=0, le=2**40)]] = Field(
        ..., min_length=1, max_length=2, description="[n] or [n, 1].")
    datatype: Literal["FP64", "FP32"]
    parameters: OipTensorParameters | None = None
    data: TensorData | None = Field(
        None, min_length=1, description="The strains, flat (row-major) or nested as the "
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
        }]},
    )

    id: str | None = Field(None, max_length=256)
    parameters: OipInferParameters | None = None
    inputs: list[OipInputTensor] = Field(..., min_length=1, max_length=1)
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
