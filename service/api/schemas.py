"""Request and response bodies of the public API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"strain": [-0.4, 0.0, 0.4]},
                                        {"strain": [0.1], "alias": "production"}]},
    )

    strain: list[FiniteFloat] = Field(
        ..., min_length=1, description="Strains to predict at, in the training data's units."
    )
    version: int | None = Field(None, ge=1, description="Serve this exact version.")
    alias: str | None = Field(
        None, min_length=1, max_length=64,
        description="Serve the version this alias points to (default: production).",
    )

    @model_validator(mode="after")
    def _version_or_alias(self) -> PredictRequest:
        if self.version is not None and self.alias is not None:
            raise ValueError("give either version or alias, not both")
        return self


class PredictResponse(BaseModel):
    model: str
    version: int
    strain: list[float]
    mean: list[float] = Field(description="Posterior predictive mean, in stress units.")
    aleatoric_sd: list[float] = Field(description="Scatter of the data: sqrt(E_s sigma_s^2).")
    epistemic_sd: list[float] = Field(description="Uncertainty of the mean: SD_s mu_s.")
    total_sd: list[float] = Field(description="sqrt(aleatoric_sd^2 + epistemic_sd^2).")
    outside_training_domain: list[bool] = Field(
        description="True where the strain lies outside the fit's training domain."
    )


class VersionSummary(BaseModel):
    version: int
    status: str
    created_at: datetime


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
