"""The native prediction route, POST /v1/models/{name}/predict (FastAPI's way in; the lean
path in service/api/fast_predict.py answers plain requests before they reach it)."""

from fastapi import APIRouter, Path, Request
from fastapi.routing import APIRoute

from service.api.deps import LiveRegistryDep, SessionDep, SettingsDep, work_of
from service.api.json_body import JsonRoute
from service.api.responses import OrjsonResponse, predict_answer
from service.api.schemas import PredictResponse, error_responses
from service.prediction import pipeline
from service.prediction.request import MAX_NAME_LENGTH, PredictRequest

router = APIRouter(prefix="/v1/models", tags=["predict"], route_class=JsonRoute)


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=error_responses(404, 413, 415, 422, 503, 504),
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
    return pipeline.predict(live, session, name, body, settings, work_of(request),
                            lambda result: predict_answer(request, result))


def route() -> APIRoute:
    """This route as FastAPI matches it (its router carries the whole path, and the app
    includes it without a prefix): the lean path matches and labels requests with it."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is predict)
