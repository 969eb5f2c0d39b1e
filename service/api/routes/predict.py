import secrets
from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Request

from service import predictive
from service.api import curve_options
from service.api.deps import CacheDep, LiveRegistryDep, SessionDep, SettingsDep
from service.api.responses import OrjsonResponse
from service.api.schemas import ErrorBody, PredictRequest, PredictResponse
from service.errors import InvalidInputError, PayloadTooLargeError
from service.observability import record_model_version
from service.predictor import Posterior
from service.registry.repository import VersionRef
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["predict"])

ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (404, 413, 415, 422, 503)}
# Longest model name in a predict URL (longer is a 422 naming `name`).
MAX_NAME_LENGTH = 128
# How many offending strains a reject names (the message stays readable for 10^6 points).
_MAX_NAMED_POINTS = 20


def check_point_count(count: int, settings: Settings, field: str = "strain") -> None:
    if count > settings.max_points_per_request:
        raise PayloadTooLargeError(
            f"{field} has {count} points; the limit is "
            f"{settings.max_points_per_request} per request",
            [{"field": field, "limit": settings.max_points_per_request}],
        )


def reject_extrapolation(posterior: Posterior, strain: np.ndarray, ref: VersionRef,
                         field: str = "strain") -> None:
    """422 naming the strains outside the training domain, if any."""
    outside = np.flatnonzero(posterior.outside_domain(strain))
    if outside.size == 0:
        return
    low, high = posterior.domain
    named = outside[:_MAX_NAMED_POINTS]
    listed = ", ".join(f"{field}[{i}]={strain[i]:g}" for i in named)
    more = f" and {outside.size - named.size} more" if outside.size > named.size else ""
    raise InvalidInputError(
        f"{outside.size} strain(s) lie outside the training domain [{low:g}, {high:g}] of "
        f"model {ref.name!r} version {ref.version} (extrapolation=reject): {listed}{more}",
        [{"field": f"{field}[{i}]", "value": float(strain[i]),
          "message": f"outside the training domain [{low:g}, {high:g}]"} for i in named],
    )


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
    summary="Posterior predictive mean, aleatoric, epistemic and total SD per strain",
    description="Always returns `mean`, `aleatoric_sd`, `epistemic_sd`, `total_sd` (physical "
    "units) and names the version that answered. Optional: `quantiles` of the full "
    "posterior predictive, `tangent` d(mean)/d(strain), `draws` posterior-predictive samples "
    "(reproducible with `seed`), and the `extrapolation` policy. The optional outputs cost "
    "nothing unless asked for.",
)
def predict(
    body: PredictRequest,
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    live: LiveRegistryDep,
    settings: SettingsDep,
    name: str = Path(..., max_length=MAX_NAME_LENGTH),
) -> OrjsonResponse:
    check_limits(body, settings)
    # From the in-memory routing table (kept live by polling); the DB only for unseen names.
    ref = live.resolve(session, name, body.version, body.alias, settings.default_alias)
    posterior = cache.get(session, ref)
    return answer(request, body, ref, posterior)


def check_limits(body: PredictRequest, settings: Settings) -> None:
    """413 when the request asks for more work than one request may."""
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


def answer(request: Request, body: PredictRequest, ref: VersionRef,
           posterior: Posterior) -> OrjsonResponse:
    """The response to a checked request once its version is known; records the version
    and points for the metrics. Shared with the lean path (service.api.fast_predict), so
    both answer the same bytes."""
    strain = np.asarray(body.strain, dtype=np.float64)
    observed = curve_options.observed_input(body, posterior, ref.name, ref.version)
    if body.extrapolation == "reject":
        reject_extrapolation(posterior, strain, ref)
        if observed is not None:
            reject_extrapolation(posterior, observed.strain, ref, field="observed.strain")
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
    if body.quantiles is not None:
        result["quantile_levels"] = body.quantiles
        result["quantiles"] = predictive.quantiles(posterior, strain, body.quantiles,
                                                   observed)
    if body.draws is not None:
        seed = body.seed if body.seed is not None else secrets.randbits(32)
        result["samples"] = predictive.samples(posterior, strain, body.draws, seed, observed)
        result["seed"] = seed
    response = OrjsonResponse(result)
    record_model_version(request, ref.name, ref.version, strain.size)
    return response
