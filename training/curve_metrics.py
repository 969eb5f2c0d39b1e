"""Whole-curve scores of a fit on held-out materials (stored with every version).

- Energy score and variogram score (p = 0.5) of `count` sampled curves at each held-out
  material's own strains against its measured curve (scoringrules `es_ensemble`,
  `vs_ensemble`), averaged over materials; next to the same scores of independent
  per-strain sampling from the same marginals (every strain its own posterior draw and
  noise), which knows nothing of curves. Lower is better; the variogram score is the one
  that sees the correlation between strains.
- Conditioning gain: for each held-out material, 3 of its points spread along its curve
  (at 1/6, 1/2 and 5/6 of its strain order) condition the prediction of its other
  points; the gain is the unconditioned NLPD minus the conditioned NLPD (nats per point),
  with the 95% central coverage of those points under the conditioned predictive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scoringrules

from service.inference.curves import (
    CurveModel,
    Observed,
    condition,
    conditional_draws,
    curve_samples,
)
from service.inference.posterior import Posterior
from training import calibration

CURVES_PER_MATERIAL = 200
GIVEN_POINTS = 3


def material_curves(x: np.ndarray, y: np.ndarray, groups: np.ndarray
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(strains, stresses) per material, sorted by strain."""
    out = []
    for label in np.unique(groups):
        rows = np.flatnonzero(groups == label)
        rows = rows[np.argsort(x[rows], kind="stable")]
        out.append((x[rows], y[rows]))
    return out


def independent_samples(posterior: Posterior, strain: np.ndarray, count: int, seed: int
                        ) -> np.ndarray:
    """Per-strain samples of the marginal mixture with no link between strains,
    shape (len(strain), count)."""
    rng = np.random.default_rng(seed)
    mu, sigma, _ = posterior.network_outputs(strain)
    chosen = rng.integers(0, posterior.draws, size=(strain.size, count))
    columns = np.arange(strain.size)[:, None]
    return mu[chosen, columns] + sigma[chosen, columns] * rng.standard_normal(chosen.shape)


def ensemble_scores(observed: np.ndarray, samples: np.ndarray) -> tuple[float, float]:
    """(energy score, variogram score p=0.5) of samples (count, d) for one curve (d,)."""
    energy = float(scoringrules.es_ensemble(observed, samples))
    variogram = float(scoringrules.vs_ensemble(observed, samples, p=0.5))
    return energy, variogram


def sample_scores(posterior: Posterior, curve: CurveModel,
                  materials: list[tuple[np.ndarray, np.ndarray]],
                  count: int = CURVES_PER_MATERIAL, seed: int = 0,
                  views: list[Posterior] | None = None) -> dict[str, Any]:
    """`views`: per material, the posterior that answers for it (a covariate model's view
    at the material's condition); default `posterior` for all."""
    energy, variogram, energy_ind, variogram_ind = [], [], [], []
    for i, (x, y) in enumerate(materials):
        answering = posterior if views is None else views[i]
        model = curve_samples(answering, curve, x, count, seed + i).T
        independent = independent_samples(answering, x, count, seed + i).T
        es, vs = ensemble_scores(y, model)
        energy.append(es)
        variogram.append(vs)
        es, vs = ensemble_scores(y, independent)
        energy_ind.append(es)
        variogram_ind.append(vs)
    return {"materials": len(materials), "curves_per_material": count,
            "energy_score": float(np.mean(energy)),
            "variogram_score": float(np.mean(variogram)),
            "independent_energy_score": float(np.mean(energy_ind)),
            "independent_variogram_score": float(np.mean(variogram_ind))}


def given_positions(points: int, given: int = GIVEN_POINTS) -> np.ndarray:
    """Indices of `given` points spread along a curve of `points` sorted strains."""
    return np.unique(np.round((np.arange(given) + 0.5) / given * (points - 1)).astype(int))


def conditioning_scores(posterior: Posterior, curve: CurveModel,
                        materials: list[tuple[np.ndarray, np.ndarray]],
                        given: int = GIVEN_POINTS,
                        views: list[Posterior] | None = None) -> dict[str, Any]:
    conditioned_lp, unconditioned_lp, pits = [], [], []
    for i, (x, y) in enumerate(materials):
        if x.size < given + 2:
            continue
        answering = posterior if views is None else views[i]
        pick = given_positions(x.size, given)
        rest = np.setdiff1d(np.arange(x.size), pick)
        state = condition(answering, curve, Observed(x[pick], y[pick]))
        mean, between, within = conditional_draws(answering, curve, state, x[rest])
        draws = calibration.PredictiveDraws(mean, np.sqrt(between + within))
        conditioned_lp.append(calibration.pointwise_log_predictive(y[rest], draws))
        pits.append(calibration.pit(y[rest], draws))
        mu, sigma, _ = answering.network_outputs(x[rest])
        unconditioned_lp.append(calibration.pointwise_log_predictive(
            y[rest], calibration.PredictiveDraws(mu, sigma)))
    if not conditioned_lp:
        return {}
    conditioned = -float(np.mean(np.concatenate(conditioned_lp)))
    unconditioned = -float(np.mean(np.concatenate(unconditioned_lp)))
    coverage = calibration.central_coverage(np.concatenate(pits), np.array([0.95]))[0]
    return {"given_points": given, "materials": len(conditioned_lp),
            "nlpd_conditioned": conditioned, "nlpd_unconditioned": unconditioned,
            "gain_nats_per_point": unconditioned - conditioned,
            "coverage_95_conditioned": float(coverage)}


def evaluate(posterior: Posterior, curve: CurveModel, x: np.ndarray, y: np.ndarray,
             groups: np.ndarray, seed: int = 0,
             covariates: np.ndarray | None = None) -> dict[str, Any]:
    """All whole-curve scores on held-out materials (x, y, groups), JSON-ready. With
    covariates a curve is a material at one condition, scored by the view there."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if covariates is None:
        materials = material_curves(x, y, groups)
        views = None
    else:
        from training.curves import curve_rows

        materials, views = [], []
        for rows in curve_rows(groups, covariates):
            rows = rows[np.argsort(x[rows], kind="stable")]
            materials.append((x[rows], y[rows]))
            views.append(posterior.at(covariates[rows[0]]))
    return {**sample_scores(posterior, curve, materials, seed=seed, views=views),
            "conditioning": conditioning_scores(posterior, curve, materials, views=views)}
