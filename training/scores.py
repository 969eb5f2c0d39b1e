"""Proper scores of an ensemble of predictive samples, in numpy: the CRPS (probability
weighted moment estimator), the energy score and the variogram score (p = 0.5).

They are the formulas of scoringrules' `crps_ensemble(estimator="pwm")`, `es_ensemble`
and `vs_ensemble` (its default "nrg" estimators), which `tests/test_scores.py` checks them
against. scoringrules is not imported here: it compiles about a hundred Numba gufuncs at
import, 3.5-4 s in every process that scores a fit (each fit-many group, each held-out
fit's worker), for three formulas of a few lines each.
"""

from __future__ import annotations

import numpy as np


def crps_ensemble(observed: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """CRPS per observation: `observed` (n,), `samples` (n, M). The PWM form
    E|X - y| + b0 - 2 b1 (b1 from the sorted samples) is the fair, unbiased estimator of
    E|X - y| - E|X - X'| / 2 in O(M log M)."""
    ordered = np.sort(np.asarray(samples, dtype=float), axis=-1)
    y = np.asarray(observed, dtype=float)[..., None]
    m = ordered.shape[-1]
    expected_error = np.mean(np.abs(y - ordered), axis=-1)
    b0 = np.mean(ordered, axis=-1)
    b1 = ordered @ np.arange(m, dtype=float) / (m * (m - 1.0))
    return expected_error + b0 - 2.0 * b1


def energy_score(observed: np.ndarray, samples: np.ndarray) -> float:
    """Energy score of `samples` (M, d) for one vector `observed` (d,):
    E||X - y|| - E||X - X'|| / 2, both expectations over the ensemble."""
    x = np.asarray(samples, dtype=float)
    m = x.shape[0]
    error = np.linalg.norm(x - np.asarray(observed, dtype=float), axis=-1).sum() / m
    # ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b: one (M, M) product instead of an (M, M, d) array
    squared = np.einsum("ij,ij->i", x, x)
    gram = squared[:, None] + squared[None, :] - 2.0 * (x @ x.T)
    spread = np.sqrt(np.maximum(gram, 0.0)).sum() / m**2
    return float(error - 0.5 * spread)


def variogram_score(observed: np.ndarray, samples: np.ndarray, p: float = 0.5) -> float:
    """Variogram score of order p of `samples` (M, d) for `observed` (d,): the squared
    differences between the observed and the ensemble's mean |x_i - x_j|^p over all
    pairs of components."""
    x = np.asarray(samples, dtype=float)
    y = np.asarray(observed, dtype=float)
    observed_pairs = np.abs(y[:, None] - y[None, :]) ** p
    ensemble_pairs = np.mean(np.abs(x[:, :, None] - x[:, None, :]) ** p, axis=0)
    return float(np.sum((observed_pairs - ensemble_pairs) ** 2))
