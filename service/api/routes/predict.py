"""The native prediction route, POST /v1/models/{name}/predict (FastAPI's way in; the lean
path in service/api/fast_predict.py answers plain requests before they reach it)."""

from fastapi import APIRouter, Path, Request
from fastapi.routing import APIRoute

from service.api.deps import LiveRegistryDep, SessionDep, SettingsDep
from service.api.responses import OrjsonResponse, predict_answer
from service.api.schemas import ErrorBody, PredictResponse
from service.prediction import pipeline
from service.prediction.request import MAX_NAME_LENGTH, PredictRequest

router = APIRouter(prefix="/v1/models", tags=["predict"])

ERROR_RESPONSES = {code: {"model": ErrorBody} for code in (404, 413, 415, 422, 503)}


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
    live: LiveRegistryDep,
    settings: SettingsDep,
    name: str = Path(..., max_length=MAX_NAME_LENGTH),
) -> OrjsonResponse:
    pipeline.check_limits(body, settings)
    ref, posterior = pipeline.resolve(live, session, name, body.version, body.alias, settings)
    return predict_answer(request, body, ref, posterior)


def route() -> APIRoute:
    """This route as FastAPI matches it (its router carries the whole path, and the app
    includes it without a prefix): the lean path matches and labels requests with it."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is predict)
