"""Which covariates are properties of the material rather than conditions of a test.

A material property is a covariate fixed within every material (a compound's filler
fraction, its hardness) in data where another covariate varies within materials. Each of
its values then belongs to one material, so a network free to bend in it takes each
material's own offset into its mean, and the scatter between materials - what a new
material's answer must carry - is lost from the band. Its first-layer weights get a
narrower prior (training.model.MATERIAL_PROPERTY_WEIGHT_PRIOR_SD), which keeps its effect
smooth at the spacing between materials. docs/covariates.md ("New compounds") has the
measurement.
"""

from __future__ import annotations

import numpy as np


def material_properties(x: np.ndarray, groups: np.ndarray | None) -> tuple[int, ...]:
    """The columns of x (strain first, then covariates) that are material properties:
    constant within every material, where another covariate varies within some material
    (materials tested at several conditions). One curve per specimen at its own condition
    has none: there every covariate is fixed within its material, and the conditions,
    not the materials, are what its values tell apart."""
    if groups is None or np.ndim(x) != 2 or np.shape(x)[1] < 3:
        return ()
    _, material = np.unique(np.asarray(groups), return_inverse=True)
    fixed = []
    for j in range(1, np.shape(x)[1]):
        column = x[:, j]
        low = np.full(material.max() + 1, np.inf)
        high = np.full(material.max() + 1, -np.inf)
        np.minimum.at(low, material, column)
        np.maximum.at(high, material, column)
        fixed.append(bool(np.all(low == high)))
    if all(fixed) or not any(fixed):
        return ()
    return tuple(j + 1 for j, f in enumerate(fixed) if f)
