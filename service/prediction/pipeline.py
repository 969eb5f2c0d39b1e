"""The prediction pipeline every protocol shares: request limits, which version answers,
the extrapolation policy, and the native response body.

The FastAPI route (service/api/routes/predict.py), the lean path in front of it
(service/api/fast_predict.py) and the Open Inference Protocol (service/oip/core.py) all
call these functions, so a request gets the same limits, the same version and the same
numbers whichever way it came in. The pipeline knows no transport: it takes a validated
request and returns numpy arrays; turning them into bytes is the protocols' job.

Why one module of this size: limits, routing, the extrapolation policy and the body are
the steps of one request; each step is short and they read in order.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, PayloadTooLargeError
from service.inference import at_conditions, curves, predictive
from service.inference.at_conditions import Placement
from service.inference.posterior import Posterior, Prediction
from service.inference.stability import unstable_ranges
from service.prediction import admission, conditions
from service.prediction.gate import Work
from service.prediction.request import PredictRequest
from service.registry.reads import VersionRef
from service.registry.routing import LiveRegistry
from service.settings import Settings

T = TypeVar("T")

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
    if body.observed is not None and len(body.observed.strain) > settings.max_observed_points:
        raise InvalidInputError(
            f"observed.strain has {len(body.observed.strain)} points; the limit is "
            f"{settings.max_observed_points} per request",
            [{"field": "observed.strain", "limit": settings.max_observed_points,
              "message": "too many observed points"}],
        )
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

def predict(live: LiveRegistry, session: Session, name: str, body: PredictRequest,
            settings: Settings, work: Work, encode: Callable[[dict[str, Any]], T]) -> T:
    """The native response to a request, encoded by the protocol's `encode`: its limits
    checked, its version resolved (from the database if needed), its cost admitted, its
    numbers computed."""
    check_limits(body, settings)
    ref, posterior = resolve(live, session, name, body.version, body.alias, settings)
    return answer(body, ref, posterior, work, encode)


def predict_loaded(live: LiveRegistry, name: str, body: PredictRequest, settings: Settings,
                   work: Work, encode: Callable[[dict[str, Any]], T]) -> T | None:
    """`predict` from memory alone: None when the version would need the database or a
    load."""
    check_limits(body, settings)
    found = resolve_loaded(live, name, body.version, body.alias, settings)
    return None if found is None else answer(body, *found, work, encode)


def predict_estimate(body: PredictRequest, posterior: Posterior, strains: int,
                     reference_share: float = 0.0) -> admission.Estimate:
    """What this request would cost with `strains` strains (admission by cost);
    `reference_share` as `conditions.request_reference_share` says."""
    return admission.predict_estimate(
        posterior, strains, levels=len(body.quantiles or ()), draws=body.draws or 0,
        observed=len(body.observed.strain) if body.observed is not None else 0,
        tangent=body.tangent, reference_share=reference_share)


def answer(body: PredictRequest, ref: VersionRef, posterior: Posterior, work: Work,
           encode: Callable[[dict[str, Any]], T]) -> T:
    """The result computed and encoded within the request's admission: over the budget
    a 413, out of heavy-work slots a 503, past its deadline a 504 (service.prediction.
    admission); the encoding is part of the cost, so it is inside too."""
    share = conditions.request_reference_share(body, posterior)
    with work.admitted(lambda n: predict_estimate(body, posterior, n, share),
                       len(body.strain),
                       "strain"):
        return encode(predict_result(body, ref, posterior))


def predict_result(body: PredictRequest, ref: VersionRef,
                   posterior: Posterior) -> dict[str, Any]:
    """The native response body (numpy arrays inside) of a checked request."""
    strain = np.asarray(body.strain, dtype=np.float64)
    observed = _observed(body, posterior, ref)
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
            conditions.reject_untested_strains(posterior, strain, where.target, ref,
                                               "strain")
            if observed is not None and where.observed is not None:
                conditions.reject_untested_strains(posterior, observed.strain,
                                                   where.observed, ref, "observed.strain")
    if where is not None:
        return _predict_at_conditions(body, ref, posterior, strain, observed, where)
    prediction = (posterior.predict(strain, tangent=body.tangent) if observed is None
                  else _conditional(posterior, strain, observed))
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
    result.update(_scatter_fields(posterior, strain, prediction, observed,
                                  body.extrapolation))
    if body.tangent:
        assert isinstance(prediction, Prediction)  # tangent excludes observed (the schema)
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


# --- whole curves: `observed` and the scatter split -------------------------------------
# A plain request pays one attribute test here when the model has no curve model, and one
# table lookup per strain when it has (service.inference.curves).

def _observed(body: PredictRequest, posterior: Posterior,
              ref: VersionRef) -> curves.Observed | None:
    """The request's observed curve as arrays; 422 when the model cannot condition."""
    if body.observed is None:
        return None
    if posterior.curve is None:
        raise InvalidInputError(
            f"model {ref.name!r} version {ref.version} has no curve model (it was fitted "
            "without a group column, or before curve models existed), so it cannot "
            "condition on observed points",
            [{"field": "observed", "message": "not supported by this version"}],
        )
    return curves.Observed(np.asarray(body.observed.strain, dtype=np.float64),
                           np.asarray(body.observed.stress, dtype=np.float64))


def _conditional(posterior: Posterior, strain: np.ndarray,
                 observed: curves.Observed) -> curves.CurvePrediction:
    curve = posterior.curve
    assert curve is not None  # _observed checked it
    return _checked(lambda: curves.conditional_predict(posterior, curve, strain, observed))


def _checked(compute: Callable[[], curves.CurvePrediction]) -> curves.CurvePrediction:
    """A conditioned prediction, or a 422 when the observed stresses overflow it."""
    with np.errstate(over="ignore", invalid="ignore"):
        prediction = compute()
    if not (np.all(np.isfinite(prediction.mean))
            and np.all(np.isfinite(prediction.epistemic_sd))):
        # Finite inputs can still overflow: a stress of 1e300 is 1e300 SDs from the curve.
        raise curves.too_extreme_to_condition()
    return prediction


def _scatter_fields(posterior: Posterior, strain: np.ndarray,
                    prediction: Prediction | curves.CurvePrediction,
                    observed: curves.Observed | None, extrapolation: str) -> dict[str, Any]:
    """between_material_sd / within_material_sd (models with a curve model) and the
    observed strains' extrapolation flags."""
    if posterior.curve is None:
        return {}
    if isinstance(prediction, curves.CurvePrediction):
        fields: dict[str, Any] = {"between_material_sd": prediction.between_material_sd,
                                  "within_material_sd": prediction.within_material_sd}
    else:
        between, within = curves.scatter_split(posterior.curve, strain,
                                               prediction.aleatoric_sd)
        fields = {"between_material_sd": between, "within_material_sd": within}
    if observed is not None and extrapolation == "flag":
        fields["observed_outside_training_domain"] = posterior.outside_domain(observed.strain)
    return fields


# --- covariates: answers at conditions (service.prediction.conditions) ------------------

def _predict_at_conditions(body: PredictRequest, ref: VersionRef, posterior: Posterior,
                           strain: np.ndarray, observed: curves.Observed | None,
                           where: Placement) -> dict[str, Any]:
    """A covariate model's answer. One condition throughout: its strain-only view answers
    like any strain-only model. Several (or observed points elsewhere): per condition,
    with the random effect shared across conditions (service.inference.at_conditions)."""
    single = where.single()
    if single is not None:
        plain = body.model_copy(update={
            "covariates": None,
            "observed": (None if body.observed is None
                         else body.observed.model_copy(update={"covariates": None}))})
        result = predict_result(plain, ref, posterior.at(single))
    else:
        result = _answer_across(body, ref, posterior, strain, observed, where)
    result.update(conditions.condition_fields(
        posterior, strain, None if observed is None else observed.strain, where,
        body.extrapolation))
    return result


def _answer_across(body: PredictRequest, ref: VersionRef, posterior: Posterior,
                   strain: np.ndarray, observed: curves.Observed | None,
                   where: Placement) -> dict[str, Any]:
    """Strains at several conditions. `unstable_strain_ranges` is left out: a range of
    strains means nothing across conditions."""
    prediction: Prediction | curves.CurvePrediction
    if observed is None:
        prediction = posterior.predict(strain, tangent=body.tangent, covariates=where.target)
    else:
        prediction = _checked(
            lambda: at_conditions.conditional(posterior, strain, observed, where))
    result: dict[str, Any] = {
        "model": ref.name, "version": ref.version, "strain": strain,
        "mean": prediction.mean, "aleatoric_sd": prediction.aleatoric_sd,
        "epistemic_sd": prediction.epistemic_sd, "total_sd": prediction.total_sd,
    }
    result.update(_scatter_fields(posterior, strain, prediction, None, "allow"))
    if body.tangent:
        assert isinstance(prediction, Prediction)  # tangent excludes observed (the schema)
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
