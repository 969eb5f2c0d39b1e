"""The native predict request: its body model and the bounds every protocol shares.

The body model is the pipeline's input (service.prediction.pipeline), so it lives below
the protocols that parse it: the FastAPI route, the lean path and the OIP schemas all
import it from here.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PlainValidator, model_validator

# Longest model name in a predict URL (longer is a 422 naming `name`).
MAX_NAME_LENGTH = 128
# Versions are 32-bit database integers and seeds 63-bit: bounding them here turns an absurd
# value into a 422 instead of an overflow deeper down.
MAX_VERSION = 2**31 - 1
MAX_SEED = 2**63 - 1
MAX_SAMPLE_DRAWS = 10_000
ProbabilityLevel = Annotated[float, Field(gt=0.0, lt=1.0)]


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _covariate_value(value: Any) -> float | list[float]:
    """One number for every point, or a list with one number per point; the error names
    the first element that is not a finite number."""
    if _is_number(value):
        return float(value)
    if isinstance(value, list) and value:
        for index, element in enumerate(value):
            if not _is_number(element):
                raise ValueError(f"element {index} ({str(element)[:40]!r}) is not a finite "
                                 "number")
        return [float(element) for element in value]
    raise ValueError("must be a finite number or a non-empty list of finite numbers")


# A covariate's value: one number for every point, or one per point (docs/covariates.md).
CovariateValue = Annotated[float | list[float], PlainValidator(
    _covariate_value, json_schema_input_type=float | list[float])]
Covariates = Annotated[dict[str, CovariateValue], Field(min_length=1, max_length=16)]


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
    covariates: Covariates | None = Field(
        None, description="Models with covariates: the condition of these points, as in "
        "the request's `covariates` (a number for all points, or a list with one value per "
        "point). Default: the request's covariates, when they are numbers.")

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
            {"strain": [-0.2, 0.2], "covariates": {"temperature": 353.0, "rate": 0.01}},
            {"strain": [0.1, 0.1], "covariates": {"temperature": [296.15, 353.15]},
             "observed": {"strain": [0.2, 0.4], "stress": [0.3, 0.5],
                          "covariates": {"temperature": 296.15}}},
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

    covariates: Covariates | None = Field(
        None, description="Models fitted with covariates (temperature, rate, ...): the "
        "condition to answer at, by covariate name in the model's units. A number applies "
        "to every strain; a list gives one value per strain (same length as `strain`). "
        "Every covariate of the model is required; models without covariates refuse them "
        "(docs/covariates.md).",
        examples=[{"temperature": 353.0, "rate": 0.01}],
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
