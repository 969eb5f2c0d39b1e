"""The whole-curve parts of a predict answer: `observed` and the scatter split.

Kept apart from the pipeline so the plain request pays one attribute test when the model
has no curve model, and one table lookup per strain when it has (service.inference.curves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.errors import InvalidInputError
from service.inference import curves
from service.inference.posterior import Posterior
from service.prediction.request import PredictRequest
from service.settings import Settings


def check_observed_count(body: PredictRequest, settings: Settings) -> None:
    """422 naming observed.strain when a request conditions on too many points."""
    if body.observed is not None and len(body.observed.strain) > settings.max_observed_points:
        raise InvalidInputError(
            f"observed.strain has {len(body.observed.strain)} points; the limit is "
            f"{settings.max_observed_points} per request",
            [{"field": "observed.strain", "limit": settings.max_observed_points,
              "message": "too many observed points"}],
        )


def observed_input(body: PredictRequest, posterior: Posterior, name: str,
                   version: int) -> curves.Observed | None:
    """The request's observed curve as arrays; 422 when the model cannot condition."""
    if body.observed is None:
        return None
    if posterior.curve is None:
        raise InvalidInputError(
            f"model {name!r} version {version} has no curve model (it was fitted without a "
            "group column, or before curve models existed), so it cannot condition on "
            "observed points",
            [{"field": "observed", "message": "not supported by this version"}],
        )
    return curves.Observed(np.asarray(body.observed.strain, dtype=np.float64),
                           np.asarray(body.observed.stress, dtype=np.float64))


def conditional(posterior: Posterior, strain: np.ndarray, observed: curves.Observed
                ) -> curves.CurvePrediction:
    assert posterior.curve is not None  # observed_input checked it
    curve = posterior.curve
    return checked(lambda: curves.conditional_predict(posterior, curve, strain, observed))


def checked(compute: Callable[[], curves.CurvePrediction]) -> curves.CurvePrediction:
    """A conditioned prediction, or a 422 when the observed stresses overflow it."""
    with np.errstate(over="ignore", invalid="ignore"):
        prediction = compute()
    if not (np.all(np.isfinite(prediction.mean))
            and np.all(np.isfinite(prediction.epistemic_sd))):
        # Finite inputs can still overflow: a stress of 1e300 is 1e300 SDs from the curve.
        raise InvalidInputError(
            "observed.stress is too far from the model's curves to condition on (the "
            "update overflows)",
            [{"field": "observed.stress", "message": "too extreme to condition on"}])
    return prediction


def scatter_fields(posterior: Posterior, strain: np.ndarray, prediction: Any,
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
