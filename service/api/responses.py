"""JSON responses encoded by orjson, which serialises numpy arrays natively (fast for
large batches: no conversion to Python lists), and the native predict answer built
with it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from starlette.requests import Request

from service.observability import record_model_version


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def predict_answer(request: Request, result: dict[str, Any]) -> OrjsonResponse:
    """The HTTP response to a native predict result (service.prediction.pipeline), with
    the version and the number of points recorded for the metrics: the route and the lean
    path both answer with it, so their bytes are the same."""
    record_model_version(request, result["model"], result["version"], len(result["strain"]))
    return OrjsonResponse(result)
