"""How far a held-out score could move with other held-out materials: its spread over units.

A held-out score is a mean over rows (NLPD, CRPS) or a fraction of rows (coverage). The
rows of one material lie on one curve, so they are not independent trials: a band that is
too narrow for a material misses most of its points at once. The unit of replication is
the material (the row when the data have no material column), and the spread is taken
over units:

- `se`: the cluster-robust standard error of the pooled mean,
  sqrt(G/(G-1) * sum_g n_g^2 (m_g - m)^2) / N for G units with n_g rows and mean m_g
  each, N rows and pooled mean m. With equal n_g it is the standard error of the mean of
  the G unit means; with one row per unit, the ordinary standard error.
- `sd_between`: the SD of the unit means (ddof 1), how much the score differs from one
  material to the next; `min`, `max`: the extreme unit means.
- `low_95`, `high_95`: a 95% interval for the score of a fit of this kind on new
  materials. For NLPD and CRPS, m -/+ t(0.975, G-1) * se. A coverage is a fraction near 1,
  where m +/- t * se can leave [0, 1] or collapse to a point (every row covered gives
  se = 0), so it gets the Wilson score interval with the effective number of independent
  rows n_eff = m (1 - m) / se^2, at most N; when m is 0 or 1 the data cannot tell how
  correlated a unit's rows are, and n_eff is G, as if each material were one trial.

This is the variability of the *score* between materials, not the posterior's
uncertainty; docs/calibration.md ("Held-out figures and their spread") says how to read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

LEVEL = 0.95
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


def unit_means(values: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, row count) of `values` per distinct unit."""
    _, inverse, counts = np.unique(units, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    return np.bincount(inverse, values) / counts, counts


def cluster_se(values: np.ndarray, units: np.ndarray) -> float | None:
    """Cluster-robust standard error of the mean of `values` (None with one unit)."""
    means, counts = unit_means(values, units)
    if means.size < 2:
        return None
    pooled = float(np.mean(values))
    spread = np.sum((counts * (means - pooled)) ** 2)
    return float(np.sqrt(means.size / (means.size - 1) * spread) / values.size)


def wilson(fraction: float, count: float, z: float = _Z) -> tuple[float, float]:
    """Wilson score interval of a fraction observed in `count` independent trials."""
    centre = (fraction + z * z / (2 * count)) / (1 + z * z / count)
    half = z / (1 + z * z / count) * np.sqrt(fraction * (1 - fraction) / count
                                             + z * z / (4 * count * count))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _summary(values: np.ndarray, units: np.ndarray) -> dict[str, Any]:
    means, _ = unit_means(values, units)
    return {"se": cluster_se(values, units),
            "sd_between": float(np.std(means, ddof=1)) if means.size > 1 else None,
            "min": float(np.min(means)), "max": float(np.max(means))}


def mean_spread(values: np.ndarray, units: np.ndarray) -> dict[str, Any]:
    """Spread of a score that is the mean of `values` (per row) over units."""
    summary = _summary(values, units)
    se = summary["se"]
    if se is None:
        return {**summary, "low_95": None, "high_95": None}
    units_count = np.unique(units).size
    half = float(stats.t.ppf(0.5 + LEVEL / 2, units_count - 1)) * se
    mean = float(np.mean(values))
    return {**summary, "low_95": mean - half, "high_95": mean + half}


def fraction_interval(inside: np.ndarray, units: np.ndarray) -> tuple[float, float]:
    """Wilson interval of the fraction of rows `inside`, counting effective trials."""
    fraction = float(np.mean(inside))
    se = cluster_se(inside.astype(float), units)
    if 0.0 < fraction < 1.0 and se:
        effective = min(float(inside.size), fraction * (1 - fraction) / se**2)
    else:
        effective = float(np.unique(units).size)
    return wilson(fraction, effective)


def fraction_spread(inside: np.ndarray, units: np.ndarray) -> dict[str, Any]:
    """Spread of a score that is the fraction of rows `inside` (a coverage)."""
    low, high = fraction_interval(inside, units)
    return {**_summary(inside.astype(float), units), "low_95": low, "high_95": high}
