"""Response bodies of the native API (its request body is the pipeline's own,
service.prediction.request; the Open Inference Protocol's bodies are in service.oip.schemas).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field


def _assume_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# The registry stores UTC; SQLite hands timestamps back without their offset, and an
# RFC 3339 date-time (what OpenAPI's format promises) must carry one.
UtcDateTime = Annotated[datetime, AfterValidator(_assume_utc)]


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
        None, description="True where the strain lies outside the fit's training domain; "
        "for a model with covariates also where a covariate leaves its training range or "
        "the strain leaves the range tested at the nearest tested condition (absent with "
        "extrapolation=allow).",
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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a route: each status code answers with the error body."""
    return {code: {"model": ErrorBody} for code in codes}
