import numpy as np
from fastapi import APIRouter, Path

from service.api.deps import CacheDep, LiveRegistryDep, SessionDep, SettingsDep
from service.api.responses import OrjsonResponse
from service.api.schemas import ErrorBody, PredictRequest, PredictResponse
from service.errors import PayloadTooLargeError

router = APIRouter(prefix="/v1/models", tags=["predict"])

ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (404, 413, 422, 503)}


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
    summary="Posterior predictive mean, aleatoric, epistemic and total SD per strain",
)
def predict(
    body: PredictRequest,
    session: SessionDep,
    cache: CacheDep,
    live: LiveRegistryDep,
    settings: SettingsDep,
    name: str = Path(..., max_length=128),
) -> OrjsonResponse:
    if len(body.strain) > settings.max_points_per_request:
        raise PayloadTooLargeError(
            f"strain has {len(body.strain)} points; the limit is "
            f"{settings.max_points_per_request} per request",
            [{"field": "strain", "limit": settings.max_points_per_request}],
        )
    # From the in-memory routing table (kept live by polling); the DB only for unseen names.
    ref = live.resolve(session, name, body.version, body.alias, settings.default_alias)
    posterior = cache.get(session, ref)
    strain = np.asarray(body.strain, dtype=np.float64)
    prediction = posterior.predict(strain)
    return OrjsonResponse({
        "model": ref.name,
        "version": ref.version,
        "strain": strain,
        "mean": prediction.mean,
        "aleatoric_sd": prediction.aleatoric_sd,
        "epistemic_sd": prediction.epistemic_sd,
        "total_sd": prediction.total_sd,
        "outside_training_domain": posterior.outside_domain(strain),
    })
