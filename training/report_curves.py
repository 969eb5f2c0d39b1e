"""Whole-curve figures of the fit report (training.report): sampled curves and the
conditioning of a held-out material."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from service.inference.curves import curve_samples
from service.inference.posterior import Posterior
from training.curve_metrics import ConditioningExample
from training.data import TrainingData

SAMPLED_CURVES = 20


def figures(posterior: Posterior, data: TrainingData, example: ConditioningExample | None,
            x_label: str, y_label: str, title: str) -> dict[str, plt.Figure]:
    """`curves.png` for a fit with a curve model, and `conditioning.png` when the held-out
    fit gave an example."""
    out = {}
    if posterior.curve is not None:
        out["curves.png"] = _sampled(posterior, data, x_label, y_label, title)
    if example is not None:
        out["conditioning.png"] = _conditioning(example, x_label, y_label, title)
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


def _conditioning(example: ConditioningExample, x_label: str, y_label: str,
                  title: str) -> plt.Figure:
    strain = example.strain
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.fill_between(strain, example.population_mean - 2 * example.population_total_sd,
                      example.population_mean + 2 * example.population_total_sd, color="0.85",
                      label="population: mean ± 2 total SD")
    axis.fill_between(strain, example.given_mean - 2 * example.given_total_sd,
                      example.given_mean + 2 * example.given_total_sd,
                      color="tab:blue", alpha=0.3, label="given 3 points: ± 2 total SD")
    axis.plot(strain, example.given_mean, color="tab:blue", lw=2, label="given 3 points: mean")
    axis.plot(*example.other, ".", color="k", ms=4, label="the material's other points")
    axis.plot(*example.given, "o", color="tab:red", ms=8, label="the 3 given points")
    axis.set(xlabel=x_label, ylabel=y_label,
             title=f"{title}: one held-out material, conditioned on 3 of its points")
    axis.legend(loc="best", fontsize=8)
    return figure
