"""Whole-curve scores of a fit on held-out materials (stored with every version).

- Energy score and variogram score (p = 0.5) of `count` sampled curves at each held-out
  material's own strains against its measured curve (training/scores.py), averaged
  over materials; next to the same scores of independent per-strain sampling from the
  same marginals (every strain its own posterior draw and noise), which knows nothing of
  curves. Lower is better; the variogram score is the one that sees the correlation
  between strains.
- Conditioning gain: for each held-out material, 3 of its points spread along its curve
  (at 1/6, 1/2 and 5/6 of its strain order) condition the prediction of its other
  points; the gain is the unconditioned NLPD minus the conditioned NLPD (nats per point),
  with the 95% central coverage of those points under the conditioned predictive.

`conditioning_example` keeps one such material, with the bands it gets, for the report's
conditioning figure: the held-out fit computes it where it runs, so the report never
rebuilds that fit's posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.inference.curves import (
    CurveModel,
    Observed,
    condition,
    conditional_draws,
    conditional_predict,
    curve_samples,
)
from service.inference.posterior import Posterior
from training import calibration, scores

CURVES_PER_MATERIAL = 200
GIVEN_POINTS = 3
EXAMPLE_STRAINS = 300


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
    return scores.energy_score(observed, samples), scores.variogram_score(observed, samples)


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
            "points": int(sum(lp.size for lp in conditioned_lp)),
            "nlpd_conditioned": conditioned, "nlpd_unconditioned": unconditioned,
            "gain_nats_per_point": unconditioned - conditioned,
            "coverage_95_conditioned": float(coverage)}


def evaluate(posterior: Posterior, curve: CurveModel, x: np.ndarray, y: np.ndarray,
             groups: np.ndarray, seed: int = 0,
             covariates: np.ndarray | None = None) -> dict[str, Any]:
    """All whole-curve scores on held-out materials (x, y, groups), JSON-ready. With
    covariates a curve is a material at one condition, scored by the view there."""
    materials, views = curves_and_views(posterior, x, y, groups, covariates)
    return {**sample_scores(posterior, curve, materials, seed=seed, views=views),
            "conditioning": conditioning_scores(posterior, curve, materials, views=views)}


def curves_and_views(posterior: Posterior, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                     covariates: np.ndarray | None = None
                     ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Posterior] | None]:
    """`material_curves`; with covariates, a curve per material and condition, each with
    the view of the posterior at its condition."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if covariates is None:
        return material_curves(x, y, groups), None
    from training.curves import curve_rows

    materials, views = [], []
    for rows in curve_rows(groups, covariates):
        rows = rows[np.argsort(x[rows], kind="stable")]
        materials.append((x[rows], y[rows]))
        views.append(posterior.at(covariates[rows[0]]))
    return materials, views


_PER_MATERIAL = ("energy_score", "variogram_score", "independent_energy_score",
                 "independent_variogram_score")
_PER_POINT = ("nlpd_conditioned", "nlpd_unconditioned", "coverage_95_conditioned")


def pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The scores of several held-out fits' materials (`evaluate` answers) as one answer
    over all of them: means over materials weighted by materials, conditioned scores by
    the points they average."""
    materials = np.array([part["materials"] for part in parts], dtype=float)
    pooled: dict[str, Any] = {"materials": int(materials.sum()),
                              "curves_per_material": parts[0]["curves_per_material"]}
    for key in _PER_MATERIAL:
        pooled[key] = float(np.average([part[key] for part in parts], weights=materials))
    conditioned = [part["conditioning"] for part in parts if part.get("conditioning")]
    pooled["conditioning"] = {}
    if conditioned:
        points = np.array([c["points"] for c in conditioned], dtype=float)
        joined: dict[str, Any] = {"given_points": conditioned[0]["given_points"],
                                  "materials": int(sum(c["materials"] for c in conditioned)),
                                  "points": int(points.sum())}
        for key in _PER_POINT:
            joined[key] = float(np.average([c[key] for c in conditioned], weights=points))
        joined["gain_nats_per_point"] = joined["nlpd_unconditioned"] - joined["nlpd_conditioned"]
        pooled["conditioning"] = joined
    return pooled


@dataclass(frozen=True)
class ConditioningExample:
    """One held-out material given `GIVEN_POINTS` of its points: the population's band and
    the band for that material over `strain`, and its given and other points."""

    strain: np.ndarray
    given: tuple[np.ndarray, np.ndarray]  # (strains, stresses)
    other: tuple[np.ndarray, np.ndarray]
    population_mean: np.ndarray
    population_total_sd: np.ndarray
    given_mean: np.ndarray
    given_total_sd: np.ndarray


def conditioning_example(posterior: Posterior, curve: CurveModel, x: np.ndarray,
                         y: np.ndarray, groups: np.ndarray,
                         covariates: np.ndarray | None = None) -> ConditioningExample:
    """The held-out material with the most points, conditioned on 3 of them (with
    covariates: the material's curve with the most points, at its condition)."""
    materials, views = curves_and_views(posterior, x, y, groups, covariates)
    best = max(range(len(materials)), key=lambda i: materials[i][0].size)
    strains, stresses = materials[best]
    posterior = posterior if views is None else views[best]
    pick = given_positions(strains.size)
    rest = np.setdiff1d(np.arange(strains.size), pick)
    low, high = posterior.domain
    grid = np.linspace(low, high, EXAMPLE_STRAINS)
    given = conditional_predict(posterior, curve, grid, Observed(strains[pick], stresses[pick]))
    population = posterior.predict(grid)
    return ConditioningExample(grid, (strains[pick], stresses[pick]),
                               (strains[rest], stresses[rest]), population.mean,
                               population.total_sd, given.mean, given.total_sd)
