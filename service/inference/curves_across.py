"""One material at several conditions (models with covariates): its random effect shared
across conditions where the data show it is.

The curve model (service.inference.curves) describes a material at one condition:
z(x) = a(x) . w + sqrt(1 - r(x)) e(x), w ~ N(0, I_k). A material tested at several
conditions has one w_c per condition c:

    w_c = sqrt(rho) w + sqrt(1 - rho) u_c,     w, u_c ~ N(0, I_k), all independent

so every w_c is N(0, I_k) - every marginal stays the BNN's and each condition alone is the
one-condition model - while Corr(w_c, w_c') = rho I_k for c != c'. rho = 1: the material's
standardised deviation from the mean curve is the same at every condition; rho = 0: its
curves at different conditions are unrelated. rho (`curve_model.condition_correlation`) is
fitted by maximum likelihood on training materials tested at several conditions
(training.curves); where no material was, it is 0 (docs/covariates.md says why).

Conditioning is exact Gaussian algebra on theta = [w; u_d for each observed condition d]
(dimension k (1 + J)). A point i at condition d_i sees
z_i = a(x_i) (sqrt(rho) w + sqrt(1 - rho) u_{d_i}) + sqrt(1 - r(x_i)) e_i, so
theta | points ~ N(m_s, P^-1) with P = I + H^T N^-1 H (the same for every posterior draw
s) and m_s = P^-1 H^T N^-1 z_s. At a target condition t, w_t = T_t theta plus, when no
point was observed at t, a fresh sqrt(1 - rho) u_t ~ N(0, (1 - rho) I) of its own (shared
by all strains at t within one sampled curve).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from service.inference import interrupt
from service.inference.conditions import distinct
from service.inference.curves import (
    ConditionalSummary,
    CurveModel,
    CurvePrediction,
    DrawNetwork,
    Observed,
    chunk_size,
    too_extreme_to_condition,
)

# Distinct conditions observed points may come from: theta has k (1 + J) entries.
MAX_OBSERVED_CONDITIONS = 16


class ConditionNetwork(Protocol):
    """What conditioning across conditions needs of a posterior with covariates
    (service.inference.posterior.Posterior): its draws and a strain-only view per
    condition."""

    draws: int
    max_width: int

    def at(self, condition: np.ndarray) -> DrawNetwork: ...


@dataclass(frozen=True)
class AcrossConditioned:
    """theta | observed points ~ N(means[:, s], R R^T) per posterior draw s."""

    rho: float
    rank: int
    observed_conditions: np.ndarray  # (J, k) distinct conditions of the observed points
    means: np.ndarray  # (k (1 + J), S)
    inverse_root: np.ndarray  # (k (1 + J), k (1 + J))

    def target(self, condition: np.ndarray) -> tuple[np.ndarray, float]:
        """(T, fresh): w_t = T theta + fresh u_t at condition t, u_t ~ N(0, I) new."""
        k, blocks = self.rank, 1 + self.observed_conditions.shape[0]
        transform = np.zeros((k, k * blocks))
        transform[:, :k] = np.sqrt(self.rho) * np.eye(k)
        match = (np.flatnonzero(np.all(self.observed_conditions == condition, axis=1))
                 if self.observed_conditions.size else np.empty(0, dtype=np.int64))
        if match.size:
            start = k * (1 + int(match[0]))
            transform[:, start:start + k] = np.sqrt(1.0 - self.rho) * np.eye(k)
            return transform, 0.0
        return transform, float(np.sqrt(1.0 - self.rho))


def prior(curve: CurveModel, rho: float, draws: int) -> AcrossConditioned:
    """No points observed: theta = w ~ N(0, I)."""
    k = curve.rank
    return AcrossConditioned(rho, k, np.empty((0, 0)), np.zeros((k, draws)), np.eye(k))


def condition_across(posterior: ConditionNetwork, curve: CurveModel, rho: float,
                     observed: Observed, observed_conditions: np.ndarray
                     ) -> AcrossConditioned:
    """The posterior of theta given one material's points, each at its own condition
    (observed_conditions: (n_o, k), physical units)."""
    unique, index = distinct(observed_conditions)
    if unique.shape[0] > MAX_OBSERVED_CONDITIONS:
        raise ValueError(f"observed points come from {unique.shape[0]} distinct conditions; "
                         f"at most {MAX_OBSERVED_CONDITIONS} are supported")
    k, blocks = curve.rank, 1 + unique.shape[0]
    n = observed.strain.size
    z = np.empty((posterior.draws, n))
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        mu, sigma, _ = posterior.at(condition).network_outputs(observed.strain[rows])
        with np.errstate(over="ignore", invalid="ignore"):
            z[:, rows] = (observed.stress[None, rows] - mu) / sigma
    if not np.all(np.isfinite(z)):
        raise too_extreme_to_condition()
    a = curve.loadings(observed.strain)  # (n, k)
    within = np.maximum(1.0 - np.sum(a * a, axis=1), 1e-12)
    design = np.zeros((n, k * blocks))
    design[:, :k] = np.sqrt(rho) * a
    for d in range(unique.shape[0]):
        rows = np.flatnonzero(index == d)
        design[rows, k * (1 + d):k * (2 + d)] = np.sqrt(1.0 - rho) * a[rows]
    scaled = design / within[:, None]
    precision = np.eye(k * blocks) + design.T @ scaled
    factor = cho_factor(precision, lower=True)
    means = cho_solve(factor, scaled.T @ z.T)
    lower = np.tril(factor[0])
    root = solve_triangular(lower, np.eye(k * blocks), lower=True, trans="T")
    return AcrossConditioned(rho, k, unique, means, root)


def conditional_draws_at(posterior: ConditionNetwork, curve: CurveModel,
                         state: AcrossConditioned, strain: np.ndarray, condition: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw s at strains of one target condition: the material's conditional mean,
    between variance and within variance of its stress, each (S, n)."""
    mu, sigma, _ = posterior.at(condition).network_outputs(strain)
    a = curve.loadings(strain)
    r = np.sum(a * a, axis=1)
    transform, fresh = state.target(condition)
    loading = a @ transform  # (n, D)
    mean = mu + sigma * (loading @ state.means).T
    remaining = np.sum((loading @ state.inverse_root) ** 2, axis=1) + fresh**2 * r
    var = sigma * sigma
    return mean, var * remaining[None, :], var * np.maximum(1.0 - r, 0.0)[None, :]


def conditional_predict_across(posterior: ConditionNetwork, curve: CurveModel,
                               state: AcrossConditioned, strain: np.ndarray,
                               conditions: np.ndarray) -> CurvePrediction:
    """`curves.conditional_predict` with the strains at their own conditions ((n, k))."""
    strain = np.asarray(strain, dtype=float).ravel()
    summary = ConditionalSummary(strain.size)
    unique, index = distinct(conditions)
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        step = chunk_size(posterior, 0)
        for start in range(0, rows.size, step):
            interrupt.checkpoint()
            part = rows[start:start + step]
            summary.store(part, *conditional_draws_at(posterior, curve, state, strain[part],
                                                      condition))
    return summary.prediction()


def curve_samples_across(posterior: ConditionNetwork, curve: CurveModel,
                         state: AcrossConditioned, strain: np.ndarray,
                         conditions: np.ndarray, count: int, seed: int,
                         test_noise: bool = True) -> np.ndarray:
    """`count` whole materials, shape (len(strain), count): column j is one posterior
    draw s_j and one material - its theta_j (given the observed points, or new) and, at
    each target condition without observed points, its own u - measured at every
    requested (strain, condition) with its test noise. Same seed, strains, conditions and
    observations -> same curves."""
    strain = np.asarray(strain, dtype=float).ravel()
    unique, index = distinct(conditions)
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, posterior.draws, size=count)
    theta = state.means[:, chosen] + state.inverse_root @ rng.standard_normal(
        (state.means.shape[0], count))
    noise = rng.standard_normal((strain.size, count))
    fresh_effects = rng.standard_normal((unique.shape[0], state.rank, count))
    out = np.empty((strain.size, count))
    for d, condition in enumerate(unique):
        transform, fresh = state.target(condition)
        w = transform @ theta + fresh * fresh_effects[d]
        view = posterior.at(condition)
        rows = np.flatnonzero(index == d)
        step = chunk_size(posterior, count)
        for start in range(0, rows.size, step):
            part = rows[start:start + step]
            mu, sigma, _ = view.network_outputs(strain[part])
            a = curve.loadings(strain[part])
            z = a @ w
            if test_noise:
                within = np.sqrt(np.maximum(1.0 - np.sum(a * a, axis=1), 0.0))
                z = z + within[:, None] * noise[part]
            out[part] = mu[chosen].T + sigma[chosen].T * z
    return out
