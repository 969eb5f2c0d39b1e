"""A covariate model's answers when strains (and observed points) carry their conditions.

Each answer goes one of two ways:
- one condition for every requested strain, and observed points (if any) at that same
  condition: the strain-only view `posterior.at(condition)` answers with the code every
  strain-only model uses (kernels, quantiles, samples, conditioning): nothing new runs;
- several conditions, or observed points at another condition: summaries and quantiles
  per distinct condition by its view, and whatever links strains of one material across
  conditions - samples that are whole materials, conditioning on points at one condition
  to answer at another - by the random effect shared across conditions
  (service.inference.curves_across).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.inference import curves, curves_across, predictive
from service.inference.conditions import distinct
from service.inference.posterior import Posterior


@dataclass(frozen=True)
class Placement:
    """Where a request's strains and observed points are: (n, k) and (n_o, k) physical
    covariate values (observed None when there are no observed points)."""

    target: np.ndarray
    observed: np.ndarray | None = None

    def single(self) -> np.ndarray | None:
        """The one condition of every strain and observed point, or None."""
        first = self.target[0]
        if not np.all(self.target == first):
            return None
        if self.observed is not None and not np.all(self.observed == first):
            return None
        return first


def _curve(posterior: Posterior) -> curves.CurveModel:
    if posterior.curve is None:
        raise ValueError("this model has no curve model (fitted without groups)")
    return posterior.curve


def state(posterior: Posterior, observed: curves.Observed | None,
          placement: Placement) -> curves_across.AcrossConditioned:
    """The material's random effect across conditions: given its observed points, or new."""
    curve = _curve(posterior)
    rho = curve.condition_correlation
    if observed is None or placement.observed is None:
        return curves_across.prior(curve, rho, posterior.draws)
    return curves_across.condition_across(posterior, curve, rho, observed,
                                          placement.observed)


def conditional(posterior: Posterior, strain: np.ndarray, observed: curves.Observed,
                placement: Placement) -> curves.CurvePrediction:
    """The observed material's curve at each strain's condition."""
    single = placement.single()
    if single is not None:
        view = posterior.at(single)
        return curves.conditional_predict(view, _curve(view), strain, observed)
    return curves_across.conditional_predict_across(
        posterior, _curve(posterior), state(posterior, observed, placement), strain,
        placement.target)


def quantiles(posterior: Posterior, strain: np.ndarray, levels: list[float],
              observed: curves.Observed | None, placement: Placement) -> np.ndarray:
    """`predictive.quantiles` at each strain's condition."""
    single = placement.single()
    if single is not None:
        return predictive.quantiles(posterior.at(single), strain, levels, observed)
    out = np.empty((len(levels), strain.size))
    unique, index = distinct(placement.target)
    across = None if observed is None else state(posterior, observed, placement)
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        if across is None:
            out[:, rows] = predictive.quantiles(posterior.at(condition), strain[rows], levels)
            continue
        mean, between, within = curves_across.conditional_draws_at(
            posterior, _curve(posterior), across, strain[rows], condition)
        sigma = np.sqrt(between + within)
        for row, level in enumerate(levels):
            out[row, rows] = predictive.mixture_quantile(mean, sigma, level)
    return out


def samples(posterior: Posterior, strain: np.ndarray, count: int, seed: int,
            observed: curves.Observed | None, placement: Placement,
            test_noise: bool = True) -> np.ndarray:
    """`predictive.samples` at each strain's condition: with a curve model column j is one
    material across every requested condition; without one, column j is one posterior
    draw for every strain plus independent scatter, as for strain-only models."""
    single = placement.single()
    if single is not None:
        return predictive.samples(posterior.at(single), strain, count, seed, observed,
                                  test_noise)
    if posterior.curve is not None:
        return curves_across.curve_samples_across(
            posterior, posterior.curve, state(posterior, observed, placement), strain,
            placement.target, count, seed, test_noise)
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, posterior.draws, size=count)
    noise = rng.standard_normal((strain.size, count))
    out = np.empty((strain.size, count))
    unique, index = distinct(placement.target)
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        mu, sigma, _ = posterior.at(condition).network_outputs(strain[rows])
        out[rows] = mu[chosen].T + (sigma[chosen].T * noise[rows] if test_noise else 0.0)
    return out
