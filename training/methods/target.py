"""What an inference method needs of the model it fits.

`training.model.HeteroskedasticBNN` picks a method (`FITTERS`) and hands itself to it; the
methods see it only as this `FitTarget` protocol, so the model and the methods never
import each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
import pymc as pm

from training.config import BNNConfig


class MapFit(NamedTuple):
    point: dict[str, np.ndarray]
    log_posterior: float
    evaluations: int
    converged: bool  # L-BFGS met its tolerance (False: it hit map_max_iterations)


class FitTarget(Protocol):
    config: BNNConfig
    # Row -> group number when the bootstrap weights groups (None: rows are the units).
    group_index: np.ndarray | None
    # pymc name -> (prior mean, SD of each entry's anchor draw) of the weights whose prior
    # a MAP ensemble member centres on its own draw from it (empty: none).
    prior_anchors: dict[str, tuple[float, np.ndarray]]

    def map_fit(self, model: pm.Model, start: dict[str, np.ndarray]) -> MapFit:
        """L-BFGS maximum a posteriori point from `start`."""
        ...

    def random_start(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A fresh random initialisation of every weight."""
        ...

    def logp_dlogp(self, model: pm.Model) -> Any:
        """The model's compiled value-and-gradient function (compiled once per model)."""
        ...


# A method: (target, PyMC model) -> (InferenceData, diagnostics, ADVI loss trace or None,
# chains).
Fitter = Callable[[FitTarget, pm.Model], tuple[Any, dict[str, Any], Any, int]]
