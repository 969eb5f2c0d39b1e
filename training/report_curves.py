"""Whole-curve figures of the fit report (training.report): sampled curves and the
conditioning of a held-out material."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from service.artifact import Artifact
from service.inference.curves import Observed, conditional_predict, curve_samples
from service.inference.posterior import Posterior
from training.calibration import representative
from training.curve_metrics import given_positions, material_curves
from training.data import TrainingData

SAMPLED_CURVES = 20


def figures(artifact: Artifact, data: TrainingData, split: Any,
            held_out_artifact: Artifact | None, x_label: str, y_label: str,
            title: str) -> dict[str, plt.Figure]:
    posterior = representative(artifact)
    if posterior.curve is None:
        return {}
    out = {"curves.png": _sampled(posterior, data, x_label, y_label, title)}
    if held_out_artifact is not None and split.test.size and data.groups is not None:
        held = representative(held_out_artifact, posterior.condition)
        if held.curve is not None:
            out["conditioning.png"] = _conditioning(held, data, split, x_label, y_label,
                                                    title)
    return out


def _sampled(posterior: Posterior, data: TrainingData, x_label: str, y_label: str,
             title: str) -> plt.Figure:
    low, high = posterior.domain
    strain = np.linspace(low, high, 300)
    curves = curve_samples(posterior, posterior.curve, strain, SAMPLED_CURVES, seed=0)
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.scatter(data.x, data.y, s=3, color="0.6", alpha=0.4, label="data")
    axis.plot(strain, curves, lw=0.9, alpha=0.85)
    axis.set(xlabel=x_label, ylabel=y_label,
             title=f"{title}: {SAMPLED_CURVES} sampled curves (each a new material)")
    axis.legend(loc="best", fontsize=8)
    return figure


def _conditioning(posterior: Posterior, data: TrainingData, split: Any, x_label: str,
                  y_label: str, title: str) -> plt.Figure:
    test = split.test
    materials = material_curves(data.x[test], data.y[test], data.groups[test])
    x, y = max(materials, key=lambda m: m[0].size)
    pick = given_positions(x.size)
    rest = np.setdiff1d(np.arange(x.size), pick)
    low, high = posterior.domain
    strain = np.linspace(low, high, 300)
    given = conditional_predict(posterior, posterior.curve, strain,
                                Observed(x[pick], y[pick]))
    population = posterior.predict(strain)
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.fill_between(strain, population.mean - 2 * population.total_sd,
                      population.mean + 2 * population.total_sd, color="0.85",
                      label="population: mean ± 2 total SD")
    axis.fill_between(strain, given.mean - 2 * given.total_sd, given.mean + 2 * given.total_sd,
                      color="tab:blue", alpha=0.3, label="given 3 points: ± 2 total SD")
    axis.plot(strain, given.mean, color="tab:blue", lw=2, label="given 3 points: mean")
    axis.plot(x[rest], y[rest], ".", color="k", ms=4, label="the material's other points")
    axis.plot(x[pick], y[pick], "o", color="tab:red", ms=8, label="the 3 given points")
    axis.set(xlabel=x_label, ylabel=y_label,
             title=f"{title}: one held-out material, conditioned on 3 of its points")
    axis.legend(loc="best", fontsize=8)
    return figure
