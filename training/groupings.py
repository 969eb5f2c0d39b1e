"""How rows group into curves: what the unloaded-state check and the curve model share."""

from __future__ import annotations

import numpy as np


def curve_labels(groups: np.ndarray | None, covariates: np.ndarray | None) -> np.ndarray:
    """One label per row: its curve, a material at one condition (the condition alone
    when the data name no materials, the material alone when they have no covariates).
    Needs one of the two."""
    if covariates is None:
        assert groups is not None, "rows form curves by material or by condition"
        return np.unique(groups, return_inverse=True)[1].ravel()
    keys = covariates if groups is None else np.column_stack(
        [np.unique(groups, return_inverse=True)[1], covariates])
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()
