"""The model's Open Inference Protocol output tensors, in one table.

Every transport (HTTP JSON, HTTP binary, gRPC), the request schema's list of valid names
and the model metadata read this table, so exposing another per-strain field of the
prediction is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.inference.at_conditions import Placement
from service.inference.curves import scatter_split
from service.manifest import MAX_COVARIATES
from service.prediction.conditions import condition_fields

if TYPE_CHECKING:
    from service.inference.posterior import Posterior, Prediction


@dataclass(frozen=True)
class Computed:
    """What an output is read from: the version that answered, the strains, its
    prediction, and for a model with covariates each strain's condition ((n, k))."""

    posterior: Posterior
    strain: np.ndarray
    prediction: Prediction
    covariates: np.ndarray | None = None


@dataclass(frozen=True)
class OutputSpec:
    datatype: str  # the protocol's name: FP64, BOOL
    value: Callable[[Computed], np.ndarray]
    default: bool = True  # returned when the request names no outputs
    needs_tangent: bool = False  # asks the kernel for the derivative too
    # Only versions fitted on grouped data have a curve model, hence the scatter split.
    needs_curve_model: bool = False
    # Only versions fitted with covariates have tested conditions to be far from.
    needs_covariates: bool = False


OUTPUTS: dict[str, OutputSpec] = {
    "mean": OutputSpec("FP64", lambda c: c.prediction.mean),
    "aleatoric_sd": OutputSpec("FP64", lambda c: c.prediction.aleatoric_sd),
    "epistemic_sd": OutputSpec("FP64", lambda c: c.prediction.epistemic_sd),
    "total_sd": OutputSpec("FP64", lambda c: c.prediction.total_sd),
    "outside_training_domain": OutputSpec(
        "BOOL", lambda c: c.posterior.outside_domain(c.strain, c.covariates)),
    "tangent": OutputSpec("FP64", lambda c: c.prediction.tangent, default=False,
                          needs_tangent=True),
    "tangent_epistemic_sd": OutputSpec(
        "FP64", lambda c: c.prediction.tangent_epistemic_sd, default=False,
        needs_tangent=True),
    "between_material_sd": OutputSpec(
        "FP64", lambda c: _scatter_split(c)[0], needs_curve_model=True),
    "within_material_sd": OutputSpec(
        "FP64", lambda c: _scatter_split(c)[1], needs_curve_model=True),
    "condition_distance": OutputSpec(
        "FP64", lambda c: _condition_distance(c), needs_covariates=True),
}


def _scatter_split(c: Computed) -> tuple[np.ndarray, np.ndarray]:
    return scatter_split(c.posterior.curve, c.strain, c.prediction.aleatoric_sd)


def _condition_distance(c: Computed) -> np.ndarray:
    """Each strain's condition's distance to the nearest tested one: the native answer's
    `condition_distance`, by the same function."""
    assert c.covariates is not None
    return condition_fields(c.posterior, c.strain, None, Placement(c.covariates),
                            "allow")["condition_distance"]

DEFAULT_OUTPUTS = tuple(name for name, spec in OUTPUTS.items() if spec.default)


def default_outputs(posterior: Posterior) -> list[str]:
    """What a request that names no outputs gets from this version."""
    return [name for name in DEFAULT_OUTPUTS
            if not (OUTPUTS[name].needs_curve_model and posterior.curve is None)
            and not (OUTPUTS[name].needs_covariates and posterior.conditions is None)]

# Input tensors one request may hold: the strain and one per covariate at most.
MAX_INPUTS = 1 + MAX_COVARIATES

# Element types on the wire (little-endian, as the binary extension and raw contents say).
WIRE_DTYPES = {"FP64": np.dtype("<f8"), "FP32": np.dtype("<f4"), "BOOL": np.dtype("?")}
INPUT_DATATYPES = ("FP64", "FP32")
