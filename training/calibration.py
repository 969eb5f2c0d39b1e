"""Held-out calibration of a posterior predictive: the numbers stored with every version.

The predictive distribution at a strain x is the mixture over posterior draws s of
Normal(mu_s(x), sigma_s(x)) (equal weights). Per-draw outputs come from the service's own
forward pass (`service.inference.posterior.Posterior.network_outputs`): one implementation of the
network, so the figures describe exactly what the service answers.

- NLPD: -mean_i log( mean_s N(y_i | mu_s, sigma_s) )  (log-mean-exp, scipy.logsumexp).
- CRPS: the ensemble (PWM) estimator on predictive samples (training/scores.py; the
  closed form for a Gaussian mixture is quadratic in the number of draws: 20 s for 2000
  points x 200 draws).
- PIT_i = mean_s Phi((y_i - mu_s)/sigma_s), the mixture CDF at the observation, exact.
  The central p-interval of the mixture holds y_i exactly when |PIT_i - 1/2| <= p/2, so
  coverage needs no quantile root-finding.
- Miscalibration area: mean |observed - nominal| central coverage over nominal levels
  0.01..0.99 (the area between the calibration curve and the diagonal).
- Aleatoric-SD error: RMS of (predicted aleatoric SD / empirical per-strain SD - 1) over
  the strains that carry at least `min_repeats` observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp, ndtr

from service.inference.posterior import Posterior
from training import scores

NOMINAL_LEVELS = np.round(np.linspace(0.01, 0.99, 99), 2)
REPORTED_LEVELS = (0.5, 0.9, 0.95)
_POINTS_PER_CHUNK = 256


@dataclass(frozen=True)
class PredictiveDraws:
    """mu_s(x_i) and sigma_s(x_i), shape (draws, n), physical units."""

    mu: np.ndarray
    sigma: np.ndarray


def predictive_draws(posterior: Posterior, x: np.ndarray,
                     covariates: np.ndarray | None = None) -> PredictiveDraws:
    """Per-draw outputs at x (and, for a covariate model, at the rows' covariates)."""
    x = np.asarray(x, dtype=float)
    parts = [posterior.network_outputs(
        x[i:i + _POINTS_PER_CHUNK],
        covariates=None if covariates is None else covariates[i:i + _POINTS_PER_CHUNK])[:2]
        for i in range(0, x.size, _POINTS_PER_CHUNK)]
    return PredictiveDraws(np.concatenate([p[0] for p in parts], axis=1),
                           np.concatenate([p[1] for p in parts], axis=1))


def pointwise_log_predictive(y: np.ndarray, draws: PredictiveDraws) -> np.ndarray:
    """log mean_s N(y_i | mu_s, sigma_s) per observation."""
    z = (y[None, :] - draws.mu) / draws.sigma
    log_density = -0.5 * z * z - np.log(draws.sigma) - 0.5 * np.log(2 * np.pi)
    return logsumexp(log_density, axis=0) - np.log(draws.mu.shape[0])


def nlpd(y: np.ndarray, draws: PredictiveDraws) -> float:
    return float(-np.mean(pointwise_log_predictive(y, draws)))


def pit(y: np.ndarray, draws: PredictiveDraws) -> np.ndarray:
    """Mixture CDF at each observation (probability integral transform)."""
    return np.mean(ndtr((y[None, :] - draws.mu) / draws.sigma), axis=0)


def central_coverage(pit_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Fraction of observations inside each central interval of nominal probability."""
    distance = np.abs(np.asarray(pit_values) - 0.5)
    return np.array([np.mean(distance <= level / 2) for level in np.atleast_1d(levels)])


def miscalibration_area(pit_values: np.ndarray) -> float:
    observed = central_coverage(pit_values, NOMINAL_LEVELS)
    return float(np.mean(np.abs(observed - NOMINAL_LEVELS)))


def crps(y: np.ndarray, draws: PredictiveDraws, samples_per_draw: int = 4,
         seed: int = 0) -> float:
    """Mean CRPS of the mixture (`pointwise_crps` averaged)."""
    return float(np.mean(pointwise_crps(y, draws, samples_per_draw, seed)))


def pointwise_crps(y: np.ndarray, draws: PredictiveDraws, samples_per_draw: int = 4,
                   seed: int = 0) -> np.ndarray:
    """CRPS of the mixture per observation, estimated from `samples_per_draw` predictive
    samples per draw (training/scores.py; its PWM estimator equals the fair, unbiased one
    in O(M log M))."""
    rng = np.random.default_rng(seed)
    per_draw = max(1, samples_per_draw)
    # At least ~1000 samples per observation, whatever the number of draws.
    per_draw = max(per_draw, -(-1000 // draws.mu.shape[0]))
    noise = rng.standard_normal((per_draw, *draws.mu.shape))
    samples = (draws.mu[None] + draws.sigma[None] * noise).reshape(-1, y.size)
    return scores.crps_ensemble(y, samples.T)


def empirical_sd_by_strain(x: np.ndarray, y: np.ndarray, min_repeats: int = 3
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Unique strains with at least `min_repeats` observations and the SD (ddof=1) there."""
    strains, sd, _ = empirical_sd_by_condition(x, y, None, min_repeats)
    return strains, sd


def empirical_sd_by_condition(x: np.ndarray, y: np.ndarray, covariates: np.ndarray | None,
                              min_repeats: int = 3
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """`empirical_sd_by_strain` per (strain, condition) when there are covariates: the
    strains, the SDs and the conditions (None without covariates)."""
    if covariates is None:
        strains, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        unique = strains[:, None]
    else:
        unique, inverse, counts = np.unique(np.column_stack([x, covariates]), axis=0,
                                            return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
    keep = counts >= min_repeats
    sums = np.bincount(inverse, y)
    squares = np.bincount(inverse, y * y)
    means = sums / counts
    variance = (squares - counts * means**2) / np.maximum(counts - 1, 1)
    conditions = None if covariates is None else unique[keep, 1:]
    return unique[keep, 0], np.sqrt(np.maximum(variance[keep], 0.0)), conditions


def aleatoric_sd_error(posterior: Posterior, strains: np.ndarray, reference_sd: np.ndarray,
                       covariates: np.ndarray | None = None) -> float | None:
    """RMS relative error of the predicted aleatoric SD against a reference SD."""
    if strains.size == 0:
        return None
    predicted = posterior.predict(strains, covariates=covariates).aleatoric_sd
    return float(np.sqrt(np.mean((predicted / reference_sd - 1.0) ** 2)))


def evaluate(posterior: Posterior, x: np.ndarray, y: np.ndarray,
             y_scale: float | None = None,
             covariates: np.ndarray | None = None) -> dict[str, Any]:
    """All held-out scores of `posterior` on (x, y), JSON-ready. NLPD is in the units of
    y; `nlpd_standardised` (given `y_scale`) is in units of the training data's SD."""
    return summarise(pointwise_scores(posterior, x, y, covariates), y_scale)


def pointwise_scores(posterior: Posterior, x: np.ndarray, y: np.ndarray,
                     covariates: np.ndarray | None = None) -> Pointwise:
    """Each observation's scores under `posterior` (`evaluate` before averaging)."""
    x = np.asarray(x, dtype=float)
    return pointwise(np.asarray(y, dtype=float), predictive_draws(posterior, x, covariates))


def representative(posterior: Posterior, condition: Any = None) -> Posterior:
    """The posterior, or for a covariate model its view at `condition` (default: the
    central tested condition): what strain-only summaries (extrapolation, function-space
    diagnostics, the report's figures) describe."""
    if posterior.conditions is None:
        return posterior
    return posterior.at(posterior.conditions.central() if condition is None else condition)


def score(y: np.ndarray, draws: PredictiveDraws, y_scale: float | None = None
          ) -> dict[str, Any]:
    """Scores of any predictive given as Gaussian components (a single-Normal model such
    as NGBoost is one draw), so every method in a comparison is scored by the same code."""
    return summarise(pointwise(y, draws), y_scale)


@dataclass(frozen=True)
class Pointwise:
    """Each observation's log predictive density, PIT and CRPS: what every score is a mean
    or a fraction of, so the scores of several held-out fits pool row by row and split
    by material (`training.folds`)."""

    log_predictive: np.ndarray
    pit: np.ndarray
    crps: np.ndarray

    def take(self, rows: np.ndarray) -> Pointwise:
        return Pointwise(self.log_predictive[rows], self.pit[rows], self.crps[rows])

    @staticmethod
    def concatenate(parts: list[Pointwise]) -> Pointwise:
        return Pointwise(*(np.concatenate([getattr(p, name) for p in parts])
                           for name in ("log_predictive", "pit", "crps")))


def pointwise(y: np.ndarray, draws: PredictiveDraws) -> Pointwise:
    return Pointwise(pointwise_log_predictive(y, draws), pit(y, draws),
                     pointwise_crps(y, draws))


def summarise(points: Pointwise, y_scale: float | None = None) -> dict[str, Any]:
    """The stored held-out scores of these observations, JSON-ready."""
    coverage = central_coverage(points.pit, np.array(REPORTED_LEVELS))
    scores: dict[str, Any] = {
        "rows": int(points.pit.size),
        "nlpd": float(-np.mean(points.log_predictive)),
        "crps": float(np.mean(points.crps)),
        "coverage": {f"{level:.2f}": float(c) for level, c in zip(REPORTED_LEVELS, coverage,
                                                                  strict=True)},
        "miscalibration_area": miscalibration_area(points.pit),
        "calibration_curve": {
            "nominal": NOMINAL_LEVELS[::2].tolist(),
            "observed": central_coverage(points.pit, NOMINAL_LEVELS[::2]).round(4).tolist(),
        },
    }
    if y_scale:
        scores["nlpd_standardised"] = standardised_nlpd(scores["nlpd"], y_scale)
    return scores


def standardised_nlpd(nlpd_physical: float, y_scale: float) -> float:
    """The NLPD in units of the training data's SD: a density per standardised unit is
    y_scale times one per physical unit."""
    return nlpd_physical - float(np.log(y_scale))


def function_space_diagnostics(posterior: Posterior, chains: int, x_min: float, x_max: float,
                               points: int = 9) -> dict[str, Any]:
    """R-hat and ESS of mu(x) and log sigma(x) on a grid of strains.

    Hidden units can be permuted (and tanh units sign-flipped) without changing the
    function, so chains that agree on the function can disagree on every weight; the
    predictions are what must converge. Needs >= 2 chains of >= 4 draws (chain-major)."""
    import arviz as az

    total = posterior.draws
    if chains < 2 or total // chains < 4:
        return {}
    grid = np.linspace(x_min, x_max, points)
    mu, sigma, _ = posterior.network_outputs(grid)
    per_chain = total // chains
    shaped = {
        "mu": mu[: chains * per_chain].reshape(chains, per_chain, points),
        "log_sigma": np.log(sigma[: chains * per_chain]).reshape(chains, per_chain, points),
    }
    idata = az.from_dict(posterior=shaped)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant output has no R-hat
        r_hat = az.rhat(idata)
    ess_bulk = az.ess(idata, method="bulk")
    ess_tail = az.ess(idata, method="tail")
    return {
        "grid": grid.round(6).tolist(),
        "r_hat_max": float(np.nanmax([np.nanmax(r_hat[v].values) for v in shaped])),
        "ess_bulk_min": float(np.nanmin([np.nanmin(ess_bulk[v].values) for v in shaped])),
        "ess_tail_min": float(np.nanmin([np.nanmin(ess_tail[v].values) for v in shaped])),
        "mu_r_hat": r_hat["mu"].values.round(4).tolist(),
        "log_sigma_r_hat": r_hat["log_sigma"].values.round(4).tolist(),
    }


def epistemic_extrapolation(posterior: Posterior, beyond: float = 0.25) -> dict[str, Any]:
    """Epistemic SD `beyond` x (training range) past each end of the training domain,
    relative to its average inside the domain: a fit that knows where it has seen no
    data reports ratios well above 1."""
    low, high = posterior.domain
    span = high - low
    inside = posterior.predict(np.linspace(low, high, 101)).epistemic_sd.mean()
    ends = posterior.predict(np.array([low - beyond * span, high + beyond * span]))
    out = {"beyond_fraction": beyond, "inside_mean": float(inside),
           "low_ratio": float(ends.epistemic_sd[0] / inside),
           "high_ratio": float(ends.epistemic_sd[1] / inside)}
    if posterior.condition is not None:  # a covariate model's view (`representative`)
        out["condition"] = list(posterior.condition)
    return out
