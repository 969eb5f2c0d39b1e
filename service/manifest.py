"""The artifact's manifest as a typed model: what the service reads from it is checked
completely (types, ranges, consistency) before a version is stored or loaded.

The parts the service computes with - schema version, architecture, normalisation, training
domain, inference draws - are strict. The parts that only describe a fit (metrics,
diagnostics, config, report, data, library versions) are free-form JSON objects, so
training can record more without a service release; unknown top-level keys are kept as
they are. The optional whole-curve model (`curve_model`, service.inference.curves) is
computed with, so it is typed here too.

Models with covariates (inputs beside the strain, e.g. temperature) add two strict
sections, absent from strain-only models: `covariates` (name, unit, standardisation and
training range of each, in the network's input order after the strain) and
`tested_conditions` (the distinct covariate vectors of the training data, physical units).

Why one module of this size: it is the whole contract, every section with the checks
between its parts (covariates against tested conditions, a curve model's correlation law
against its basis), read by the service and written by training alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    model_validator,
)

SCHEMA_VERSION = 1
# Version 2 is version 1 plus covariates read on a log scale (`Covariate.transform`). A
# fit writes 2 only when it uses one, so a replica that knows only version 1 refuses such
# an artifact instead of reading its covariates on the wrong scale; everything else is
# written as version 1, byte for byte as before.
LOG_COVARIATES_SCHEMA_VERSION = 2
# Version 3 is version 2 plus the uncertainty of the level beyond a covariate's tested
# range (`Covariate.log_level_change`): a replica that knows only 1 or 2 would answer
# such a model without it, so it refuses the artifact instead.
EXTRAPOLATION_SCHEMA_VERSION = 3
# Version 4 is version 3 plus the strain range tested at each condition
# (`tested_strain_ranges`): a replica that knows only 1-3 would answer strains never
# tested at a condition without flagging or refusing them, so it refuses the artifact.
STRAIN_RANGES_SCHEMA_VERSION = 4
SUPPORTED_SCHEMA_VERSIONS = (SCHEMA_VERSION, LOG_COVARIATES_SCHEMA_VERSION,
                             EXTRAPOLATION_SCHEMA_VERSION, STRAIN_RANGES_SCHEMA_VERSION)
# Deeper trunks than this are not a network anyone fits here; the bound also keeps a
# hostile manifest from producing one error per list element.
MAX_HIDDEN_LAYERS = 16
# Covariates beside the strain, and distinct tested conditions a manifest may list: far
# above any test programme, low enough that a distance to every tested condition per
# requested strain stays cheap.
MAX_COVARIATES = 16
MAX_TESTED_CONDITIONS = 10_000

PositiveFloat = Annotated[FiniteFloat, Field(gt=0)]
# A JSON number, never a string or a boolean (sections that are not strict as a whole).
StrictFiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]

# The curve model's one kind, its spline degree and the largest basis it may have.
CURVE_MODEL_KIND = "spline_factor_copula"
CURVE_DEGREE = 3
MAX_CURVE_BASIS = 64


class _Section(BaseModel):
    # Numbers must be JSON numbers ("1.5" or true is a broken manifest, not a number);
    # keys the service does not read are kept.
    model_config = ConfigDict(strict=True, extra="allow")


class Architecture(_Section):
    hidden_sizes: list[Annotated[int, Field(gt=0, le=65_536)]] = Field(
        min_length=1, max_length=MAX_HIDDEN_LAYERS, fail_fast=True)
    activation: Literal["tanh"]
    noise_link: Literal["exp", "softplus"]
    noise: str = "heteroskedastic"
    input_name: str = "strain"
    input_unit: str = "1"
    output_name: str = "stress"
    output_unit: str = "MPa"


class Normalisation(_Section):
    """x_norm = (x - x_mean) / x_scale, y = y_mean + y_scale * y_norm."""

    x_mean: FiniteFloat
    x_scale: PositiveFloat
    y_mean: FiniteFloat
    y_scale: PositiveFloat


class TrainingDomain(_Section):
    min: FiniteFloat
    max: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> TrainingDomain:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class Covariate(_Section):
    """One network input beside the strain: x_norm = (value - mean) / scale, or with
    `transform` "log", (ln(value) - mean) / scale."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    unit: str = Field("1", max_length=64)
    mean: FiniteFloat
    scale: PositiveFloat
    min: FiniteFloat = Field(description="Smallest value in the training data.")
    max: FiniteFloat = Field(description="Largest value in the training data.")
    transform: Literal["log"] | None = Field(
        None, description="'log': the network reads ln(value) (mean and scale are those of "
        "ln(value); every value must be > 0). Absent: the value itself.")
    log_level_change: FiniteFloat | None = Field(
        None, ge=0, description="How much the natural log of the mean curve's level "
        "changes across the training range (total variation, at the central tested "
        "condition). Beyond the range the level's relative epistemic SD is this times the "
        "distance beyond the range in range widths (docs/covariates.md, 'Beyond the tested "
        "range'). Absent: no such term (artifacts older than it).")

    @model_validator(mode="after")
    def _ordered(self) -> Covariate:
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        if self.transform == "log" and self.min <= 0:
            raise ValueError(f"a covariate on a log scale needs values > 0; min is "
                             f"{self.min:g}")
        return self


class Inference(_Section):
    draws: int = Field(ge=2, description="Posterior draws stored in the arrays.")
    method: str | None = None
    seed: int | None = None
    wall_time_s: float | None = None


class CurveDomain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: FiniteFloat
    max: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> CurveDomain:
        if not self.max > self.min:
            raise ValueError("max must be greater than min")
        return self


# Bound on the curve model's log test-noise variances (training keeps its fit inside it).
LOG_VARIANCE_BOUND = 50.0


class CurveModelSection(BaseModel):
    """The manifest's `curve_model` section: what `training.curves` fitted."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["spline_factor_copula"]
    domain: CurveDomain = Field(description="Strains the basis spans (physical units).")
    degree: Literal[3] = CURVE_DEGREE
    between_cholesky: list[list[FiniteFloat]] = Field(
        description="L (k x k, lower triangular): Sigma = L L^T, the covariance of one "
        "material's spline coefficients of z.")
    within_log_variance: list[FiniteFloat] = Field(
        description="gamma (k): log of the test-noise variance of z, in the same basis.")
    fit: dict[str, Any] | None = Field(None, description="How the fit went (informative).")
    condition_correlation: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="rho: correlation of one material's random effects at two "
        "different conditions (models with covariates; service.inference.curves_across). "
        "With condition_length_scales it is rho0, the correlation of two conditions "
        "arbitrarily close together.")
    condition_length_scales: list[PositiveFloat] | None = Field(
        None, min_length=1, description="l_j, one per covariate in its physical unit, or "
        "in units of ln(value) for a covariate on a log scale (the covariates' order): the "
        "correlation of the random effects at conditions c != c' "
        "decays as rho0 exp(-sum_j ((c_j - c'_j) / l_j)^2 / 2). Absent: one correlation "
        "for every pair of conditions (every l_j infinite).")
    condition_slope_scales: list[PositiveFloat] | None = Field(
        None, min_length=1, description="scale_j, one per covariate in its physical unit "
        "(ln(value) for a covariate on a log scale, as for centre_j): "
        "a material's effect is linear in the covariates, w_c = w_0 + sum_j s_j(c) w_j with "
        "s_j(c) = (c_j - centre_j) / scale_j; two different conditions correlate as "
        "rho0 (1 + s(c) . s(c')) / sqrt((1 + |s(c)|^2) (1 + |s(c')|^2)). Comes with "
        "condition_slope_centre.")
    condition_slope_centre: list[FiniteFloat] | None = Field(
        None, min_length=1, description="centre_j, one per covariate in its physical unit: "
        "where the random slopes of condition_slope_scales are zero.")
    condition_correlations: list[Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]] | None = Field(
        None, description="rho_j, one per principal component of the loadings (k, by "
        "decreasing share; service.inference.curves_across.component_basis): the "
        "correlation of one material's random effects at two different conditions, "
        "component by component. Absent: condition_correlation for every component.")

    @model_validator(mode="after")
    def _shapes(self) -> CurveModelSection:
        k = len(self.within_log_variance)
        if not CURVE_DEGREE + 1 <= k <= MAX_CURVE_BASIS:
            raise ValueError(f"within_log_variance must have {CURVE_DEGREE + 1}.."
                             f"{MAX_CURVE_BASIS} entries, got {k}")
        if len(self.between_cholesky) != k or any(len(row) != k
                                                  for row in self.between_cholesky):
            raise ValueError(f"between_cholesky must be {k} x {k} (the basis size)")
        if (self.condition_correlations is not None
                and len(self.condition_correlations) != k):
            raise ValueError(f"condition_correlations must have {k} entries (the basis "
                             f"size), got {len(self.condition_correlations)}")
        if (self.condition_slope_scales is None) != (self.condition_slope_centre is None):
            raise ValueError("condition_slope_scales and condition_slope_centre come "
                             "together (both or neither)")
        laws = [name for name in ("condition_length_scales", "condition_slope_scales",
                                  "condition_correlations") if getattr(self, name) is not None]
        if len(laws) > 1:
            raise ValueError(f"{' and '.join(laws)} do not come together (one correlation "
                             "law across conditions per model)")
        if any(abs(g) > LOG_VARIANCE_BOUND for g in self.within_log_variance):
            raise ValueError(f"within_log_variance entries must lie in "
                             f"[-{LOG_VARIANCE_BOUND:g}, {LOG_VARIANCE_BOUND:g}]")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: Annotated[int, Field(strict=True)]
    architecture: Architecture
    normalisation: Normalisation
    training_domain: TrainingDomain
    inference: Inference
    arrays_sha256: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    library_versions: dict[str, Any] | None = None
    # A whole-curve model fitted beside the pointwise network (models fitted on grouped
    # data; absent otherwise and in artifacts older than it).
    curve_model: CurveModelSection | None = None
    # Inputs beside the strain, in the network's input order (None: strain only).
    covariates: list[Covariate] | None = Field(None, min_length=1,
                                               max_length=MAX_COVARIATES)
    # The distinct covariate vectors of the training data (one entry per covariate each).
    tested_conditions: list[list[StrictFiniteFloat]] | None = Field(
        None, min_length=1, max_length=MAX_TESTED_CONDITIONS)
    # [min, max] of the strains tested at each tested condition, in the same order; absent
    # where every tested condition covered the whole training domain.
    tested_strain_ranges: list[Annotated[list[StrictFiniteFloat], Field(
        min_length=2, max_length=2)]] | None = Field(
        None, min_length=1, max_length=MAX_TESTED_CONDITIONS)

    @model_validator(mode="after")
    def _supported(self) -> Manifest:
        if self.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(f"schema_version {self.schema_version} is not supported "
                             f"(expected one of {list(SUPPORTED_SCHEMA_VERSIONS)})")
        if (any(c.transform is not None for c in self.covariates or ())
                and self.schema_version < LOG_COVARIATES_SCHEMA_VERSION):
            raise ValueError(f"covariates on a log scale need schema_version "
                             f"{LOG_COVARIATES_SCHEMA_VERSION}")
        if (any(c.log_level_change is not None for c in self.covariates or ())
                and self.schema_version < EXTRAPOLATION_SCHEMA_VERSION):
            raise ValueError(f"covariates.log_level_change needs schema_version "
                             f"{EXTRAPOLATION_SCHEMA_VERSION}")
        if (self.tested_strain_ranges is not None
                and self.schema_version < STRAIN_RANGES_SCHEMA_VERSION):
            raise ValueError(f"tested_strain_ranges needs schema_version "
                             f"{STRAIN_RANGES_SCHEMA_VERSION}")
        return self

    @model_validator(mode="after")
    def _conditions(self) -> Manifest:
        if (self.covariates is None) != (self.tested_conditions is None):
            raise ValueError("covariates and tested_conditions come together (both or "
                             "neither)")
        curve = self.curve_model
        per_covariate = {name: getattr(curve, name) for name in (
            "condition_length_scales", "condition_slope_scales", "condition_slope_centre")
            if curve is not None and getattr(curve, name) is not None}
        if self.covariates is None or self.tested_conditions is None:
            if per_covariate:
                raise ValueError(f"curve_model.{next(iter(per_covariate))} needs covariates")
            if self.tested_strain_ranges is not None:
                raise ValueError("tested_strain_ranges needs covariates and "
                                 "tested_conditions")
            return self
        names = [c.name for c in self.covariates]
        if len(set(names)) != len(names) or self.architecture.input_name in names:
            raise ValueError(f"covariate names must be distinct and differ from the input "
                             f"{self.architecture.input_name!r}: {names}")
        for i, row in enumerate(self.tested_conditions):
            if len(row) != len(names):
                raise ValueError(f"tested_conditions[{i}] has {len(row)} values; the model "
                                 f"has {len(names)} covariates")
        self._check_strain_ranges()
        for name, values in per_covariate.items():
            if len(values) != len(names):
                raise ValueError(f"curve_model.{name} has {len(values)} values; the model "
                                 f"has {len(names)} covariates")
        return self

    def _check_strain_ranges(self) -> None:
        ranges, tested = self.tested_strain_ranges, self.tested_conditions
        if ranges is None or tested is None:
            return
        if len(ranges) != len(tested):
            raise ValueError(f"tested_strain_ranges has {len(ranges)} entries; "
                             f"tested_conditions has {len(tested)}")
        for i, (low, high) in enumerate(ranges):
            if low > high:
                raise ValueError(f"tested_strain_ranges[{i}]: min ({low:g}) is above max "
                                 f"({high:g})")

    @property
    def input_dim(self) -> int:
        """Network inputs: the strain, then every covariate."""
        return 1 + len(self.covariates or ())


class ManifestError(ValueError):
    """The manifest is missing a field, or a field has the wrong type or value."""


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "manifest"


def parse_manifest(document: Any) -> Manifest:
    """The typed manifest, or ManifestError naming the first field that is wrong."""
    if not isinstance(document, dict):
        raise ManifestError("manifest must be a JSON object")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        more = exc.error_count() - 1
        raise ManifestError(
            f"manifest field {_location(tuple(first['loc']))}: {first['msg']}"
            + (f" (and {more} more)" if more else "")) from None
