"""Dense curves thinned for the network's fit.

Testing machines record hundreds to thousands of points per curve. Along one curve those
points say little more about the mean and the scatter across materials than a few
hundred of them do (the materials, not the readings, are the unit of uncertainty: the
bootstrap reweights whole materials), while every row costs the same in each of the tens
of thousands of log-density gradients an ensemble fit evaluates. So the network is fitted
on at most `MAX_NETWORK_POINTS_PER_CURVE` points of each curve (a material at one
condition), evenly spread over its strains, its first and last kept; everything else
(the normalisation, the training domain, the tested conditions and their strain ranges,
the curve model, every held-out score) still sees every row. Curves at or under the
limit are untouched, so such data fit exactly as before. docs/training.md has the
measurement that chose the limit.
"""

from __future__ import annotations

import numpy as np

from training.groupings import curve_labels

MAX_NETWORK_POINTS_PER_CURVE = 200


def network_rows(x: np.ndarray, groups: np.ndarray | None, covariates: np.ndarray | None,
                 max_points: int | None = MAX_NETWORK_POINTS_PER_CURVE) -> np.ndarray | None:
    """The rows the network is fitted on, ascending: every row of a curve with at most
    `max_points` of them, `max_points` evenly spread over its strains otherwise. None
    where nothing is thinned (no curve over the limit, no limit, or data that name
    neither materials nor conditions: then the rows are not known to form curves)."""
    if max_points is None or (groups is None and covariates is None):
        return None
    labels = curve_labels(groups, covariates)
    counts = np.bincount(labels)
    if counts.max() <= max_points:
        return None
    order = np.lexsort((x, labels))  # by curve, then by strain within it
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kept = []
    for start, count in zip(starts, counts, strict=True):
        positions = (np.arange(count) if count <= max_points else
                     np.unique(np.round(np.linspace(0, count - 1, max_points)).astype(int)))
        kept.append(order[start + positions])
    return np.sort(np.concatenate(kept))
