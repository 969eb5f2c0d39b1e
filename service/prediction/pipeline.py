"""The prediction pipeline every protocol shares: request limits, which version answers,
the extrapolation policy, and the native response body.

The FastAPI route (service/api/routes/predict.py), the lean path in front of it
(service/api/fast_predict.py) and the Open Inference Protocol (service/oip/core.py) all
call these functions, so a request gets the same limits, the same version and the same
numbers whichever way it came in. The pipeline knows no transport: it takes a validated
request and returns numpy arrays; turning them into bytes is the protocols' job.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, PayloadTooLargeError
from service.export.table import unstable_ranges
from service.inference import at_conditions, predictive
from service.inference.at_conditions import Placement
from service.inference.posterior import Posterior
from service.prediction import conditions, curve_options
from service.prediction.request import PredictRequest
from service.registry.reads import VersionRef
from service.registry.routing import LiveRegistry
from service.settings import Settings

# How many offending points an error names: the message stays readable for 10^6 points.
MAX_NAMED_POINTS = 20


# --- limits ------------------------------------------------------------------------------

def check_point_count(count: int, settings: Settings, field: str = "strain") -> None:
    """413 when a request holds more points than one request may."""
    if count > settings.max_points_per_request:
        raise PayloadTooLargeError(
            f"{field} has {count} points; the limit is "
            f"{settings.max_points_per_request} per request",
            [{"field": field, "limit": settings.max_points_per_request}],
        )


def check_limits(body: PredictRequest, settings: Settings) -> None:
    """413 when a native predict request asks for more work than one request may."""
    points = len(body.strain)
    check_point_count(points, settings)
    curve_options.check_observed_count(body, settings)
    if body.draws is not None and points * body.draws > settings.max_samples_per_request:
        raise PayloadTooLargeError(
            f"{points} strains x {body.draws} draws = {points * body.draws} samples; the "
            f"limit is {settings.max_samples_per_request} per request",
            [{"field": "draws", "limit": settings.max_samples_per_request}],
        )
    if body.quantiles is not None and points > settings.max_quantile_points_per_request:
        raise PayloadTooLargeError(
            f"quantiles were asked for {points} strains; the limit is "
            f"{settings.max_quantile_points_per_request} strains per request with quantiles",
            [{"field": "quantiles", "limit": settings.max_quantile_points_per_request}],
        )


# --- which version answers ---------------------------------------------------------------

def resolve(live: LiveRegistry, session: Session, name: str, version: int | None,
            alias: str | None, settings: Settings) -> tuple[VersionRef, Posterior]:
    """The version that answers and its posterior: from the in-memory routing table when
    possible, else from the database (which raises the usual 404); loads it if needed."""
    ref = live.resolve(session, name, version, alias, settings.default_alias)
    return ref, live.posterior(session, ref)


def resolve_loaded(live: LiveRegistry, name: str, version: int | None, alias: str | None,
                   settings: Settings) -> tuple[VersionRef, Posterior] | None:
    """`resolve` from memory alone: None when it would need the database or a load."""
    ref = live.resolve_in_memory(name, version, alias, settings.default_alias)
    posterior = None if ref is None else live.cache.get_loaded(ref)
    return None if posterior is None else (ref, posterior)


# --- extrapolation policy ----------------------------------------------------------------

def reject_extrapolation(posterior: Posterior, strain: np.ndarray, ref: VersionRef,
                         field: str = "strain") -> None:
    """422 naming the strains outside the training domain, if any."""
    outside = np.flatnonzero(posterior.outside_domain(strain))
    if outside.size == 0:
        return
    low, high = posterior.domain
    named = outside[:MAX_NAMED_POINTS]
    listed = ", ".join(f"{field}[{i}]={strain[i]:g}" for i in named)
    more = f" and {outside.size - named.size} more" if outside.size > named.size else ""
    raise InvalidInputError(
        f"{outside.size} strain(s) lie outside the training domain [{low:g}, {high:g}] of "
        f"model {ref.name!r} version {ref.version} (extrapolation=reject): {listed}{more}",
        [{"field": f"{field}[{i}]", "value": float(strain[i]),
          "message": f"outside the training domain [{low:g}, {high:g}]"} for i in named],
    )


# --- the native response -----------------------------------------------------------------

def predict_result(body: PredictRequest, ref: VersionRef,
                   posterior: Posterior) -> dict[str, Any]:
    """The native response body (numpy arrays inside) of a checked request."""
    strain = np.asarray(body.strain, dtype=np.float64)
    observed = curve_options.observed_input(body, posterior, ref.name, ref.version)
    where = conditions.placement(body, posterior, ref)
    if body.extrapolation == "reject":
        reject_extrapolation(posterior, strain, ref)
        if observed is not None:
            reject_extrapolation(posterior, observed.strain, ref, field="observed.strain")
        if where is not None:
            conditions.reject_outside(posterior, where.target, ref, "covariates")
            if where.observed is not None:
                conditions.reject_outside(posterior, where.observed, ref,
                                          "observed.covariates")
    if where is not None and where.single() is not None:
        # One condition throughout: its strain-only view answers like any such model.
        result = predict_result(body.model_copy(update={"covariates": None,
                                                        "observed": _without_covariates(body)}),
                                ref, posterior.at(where.single()))
        result.update(conditions.condition_fields(
            posterior, strain, None if observed is None else observed.strain, where,
            body.extrapolation))
        return result
    if where is not None:
        return _predict_across(body, ref, posterior, strain, observed, where)
    prediction = (posterior.predict(strain, tangent=body.tangent) if observed is None
                  else curve_options.conditional(posterior, strain, observed))
    result: dict[str, Any] = {
        "model": ref.name,
        "version": ref.version,
        "strain": strain,
        "mean": prediction.mean,
        "aleatoric_sd": prediction.aleatoric_sd,
        "epistemic_sd": prediction.epistemic_sd,
        "total_sd": prediction.total_sd,
    }
    if body.extrapolation == "flag":
        result["outside_training_domain"] = posterior.outside_domain(strain)
    result.update(curve_options.scatter_fields(posterior, strain, prediction, observed,
                                               body.extrapolation))
    if body.tangent:
        result["tangent"] = prediction.tangent
        result["tangent_epistemic_sd"] = prediction.tangent_epistemic_sd
        # Where the mean does not rise among the requested strains (in ascending order):
        # a hyperelastic solver needs a rising stress there (docs/export.md).
        order = np.argsort(strain, kind="stable")
        result["unstable_strain_ranges"] = [
            r.as_dict() for r in unstable_ranges(strain[order], None,
                                                 prediction.tangent[order], "mean")]
    if body.quantiles is not None:
        result["quantile_levels"] = body.quantiles
        result["quantiles"] = predictive.quantiles(posterior, strain, body.quantiles,
                                                   observed)
    if body.draws is not None:
        seed = body.seed if body.seed is not None else secrets.randbits(32)
        result["samples"] = predictive.samples(posterior, strain, body.draws, seed, observed)
        result["seed"] = seed
    return result



def _without_covariates(body: PredictRequest) -> Any:
    return (None if body.observed is None
            else body.observed.model_copy(update={"covariates": None}))


def _predict_across(body: PredictRequest, ref: VersionRef, posterior: Posterior,
                    strain: np.ndarray, observed: Any, where: Placement) -> dict[str, Any]:
    """The answer of a covariate model whose strains (or observed points) are at several
    conditions (service.inference.at_conditions)."""
    if observed is None:
        prediction: Any = posterior.predict(strain, tangent=body.tangent,
                                            covariates=where.target)
    else:
        prediction = curve_options.checked(
            lambda: at_conditions.conditional(posterior, strain, observed, where))
    result: dict[str, Any] = {
        "model": ref.name, "version": ref.version, "strain": strain,
        "mean": prediction.mean, "aleatoric_sd": prediction.aleatoric_sd,
        "epistemic_sd": prediction.epistemic_sd, "total_sd": prediction.total_sd,
    }
    result.update(conditions.condition_fields(
        posterior, strain, None if observed is None else observed.strain, where,
        body.extrapolation))
    fields = curve_options.scatter_fields(posterior, strain, prediction, None, "allow")
    result.update(fields)
    if body.tangent:
        result["tangent"] = prediction.tangent
        result["tangent_epistemic_sd"] = prediction.tangent_epistemic_sd
    if body.quantiles is not None:
        result["quantile_levels"] = body.quantiles
        result["quantiles"] = at_conditions.quantiles(posterior, strain, body.quantiles,
                                                      observed, where)
    if body.draws is not None:
        seed = body.seed if body.seed is not None else secrets.randbits(32)
        result["samples"] = at_conditions.samples(posterior, strain, body.draws, seed,
                                                  observed, where)
        result["seed"] = seed
    return result
