"""JSON responses encoded by orjson, which serialises numpy arrays natively (fast for
large batches: no conversion to Python lists), and the native predict answer built
with it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from starlette.requests import Request

from service.inference.posterior import Posterior
from service.observability import record_model_version
from service.prediction.pipeline import predict_result
from service.prediction.request import PredictRequest
from service.registry.reads import VersionRef


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def predict_answer(request: Request, body: PredictRequest, ref: VersionRef,
                   posterior: Posterior) -> OrjsonResponse:
    """The HTTP response to a checked native request, with the version and the number of
    points recorded for the metrics: the route and the lean path both answer with it, so
    their bytes are the same."""
    response = OrjsonResponse(predict_result(body, ref, posterior))
    record_model_version(request, ref.name, ref.version, len(body.strain))
    return response
