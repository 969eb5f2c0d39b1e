"""Fit report figures of a model with covariates (training.report): for each covariate,
``covariate_<name>.png`` shows how the curves move across it, the others held at the
central tested condition.

- left: the mean curve with its band (mean +/- 2 total SD) at the covariate's tested
  values (solid; dotted without the band past the strains tested there, where a model
  records them), and the mean alone halfway between them and a quarter of its range
  beyond either end (dashed: never tested), colour by value;
- right: at one strain (the end of the training domain where the curves differ most),
  the mean with bands of 2 total SD and 2 epistemic SD against the covariate, from half its
  range below the smallest tested value to half above the largest, with the tested values
  marked (dotted lines) and the training data at that strain: between tested values the
  epistemic band should stay narrow, away from them it should widen.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np

from service.inference.posterior import Posterior
from training.data import TrainingData

# Figures per fit: one per covariate, up to this many (a model rarely has more).
MAX_FIGURES = 4
_CURVE_POINTS = 200
_SWEEP_POINTS = 121


def figures(posterior: Posterior, data: TrainingData, x_label: str, y_label: str,
            title: str) -> dict[str, plt.Figure]:
    """{file name: figure} for a model with covariates; nothing for one without."""
    conditions = posterior.conditions
    if conditions is None:
        return {}
    out = {}
    for index, name in enumerate(conditions.names[:MAX_FIGURES]):
        file = "covariate_" + re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"
        out[file] = _across(posterior, data, index, x_label, y_label, title)
    return out


def curve_values(tested: np.ndarray, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Values of one covariate to draw curves at: its distinct tested values, the points
    halfway between neighbours, and a quarter of its range beyond either end (on the
    scale the network reads it: a log covariate's halfway points are geometric means);
    and whether each was tested."""
    tested = np.unique(tested)
    read = np.log(tested) if log else tested
    span = float(read[-1] - read[0]) or max(abs(float(read[0])), 1.0)
    between = 0.5 * (read[:-1] + read[1:])
    beyond = np.array([read[0] - 0.25 * span, read[-1] + 0.25 * span])
    extra = np.concatenate([between, beyond])
    values = np.concatenate([tested, np.exp(extra) if log else extra])
    order = np.argsort(values)
    return values[order], np.isin(values[order], tested)


def sweep_values(tested: np.ndarray, log: bool = False) -> np.ndarray:
    """Values of one covariate from half its tested range below it to half above (on the
    scale the network reads it)."""
    read = np.log(tested) if log else tested
    span = float(read[-1] - read[0]) or max(abs(float(read[0])), 1.0)
    sweep = np.linspace(read[0] - 0.5 * span, read[-1] + 0.5 * span, _SWEEP_POINTS)
    return np.exp(sweep) if log else sweep


def _conditions(base: np.ndarray, index: int, values: np.ndarray) -> np.ndarray:
    rows = np.tile(base, (values.size, 1))
    rows[:, index] = values
    return rows


def _across(posterior: Posterior, data: TrainingData, index: int, x_label: str,
            y_label: str, title: str) -> plt.Figure:
    conditions = posterior.conditions
    assert conditions is not None
    name, unit = conditions.names[index], conditions.units[index]
    base = conditions.central()
    tested = np.unique(conditions.tested[:, index])
    fixed = [f"{n}={v:g} {u}" for j, (n, u, v) in
             enumerate(zip(conditions.names, conditions.units, base, strict=True)) if j != index]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    low, high = posterior.domain
    strain = np.linspace(low, high, _CURVE_POINTS)
    log = bool(conditions.log[index])
    values, was_tested = curve_values(tested, log)
    colours = plt.get_cmap("coolwarm")(np.linspace(0.0, 1.0, values.size))
    for value, known, colour in zip(values, was_tested, colours, strict=True):
        rows = _conditions(base, index, np.full(strain.size, value))
        prediction = posterior.predict(strain, covariates=rows)
        # Strains past the range tested at the nearest tested condition: dotted, no band.
        untested = conditions.untested_strain(strain, rows) if known else np.zeros(
            strain.size, dtype=bool)
        if known:
            band = 2.0 * prediction.total_sd
            left.fill_between(strain, prediction.mean - band, prediction.mean + band,
                              where=~untested, color=colour, alpha=0.12, lw=0)
        left.plot(strain, np.where(untested, np.nan, prediction.mean), color=colour,
                  lw=1.8 if known else 1.2, ls="-" if known else "--",
                  label=f"{name}={value:.5g}{'' if known else ' (untested)'}")
        if untested.any():
            left.plot(strain, np.where(untested, prediction.mean, np.nan), color=colour,
                      lw=1.2, ls=":")
    left.set(xlabel=x_label, ylabel=y_label,
             title=f"mean ± 2 total SD across {name} [{unit}]")
    left.legend(fontsize=7, loc="best")

    # Where along the strain the curves differ most: that end of the training domain.
    ends = np.array([low, high])
    spread = [np.ptp(posterior.predict(np.full(tested.size, x), covariates=_conditions(
        base, index, tested)).mean) for x in ends]
    at = float(ends[int(np.argmax(spread))])
    sweep = sweep_values(tested, log)
    prediction = posterior.predict(np.full(sweep.size, at),
                                   covariates=_conditions(base, index, sweep))
    mean = prediction.mean
    right.fill_between(sweep, mean - 2 * prediction.total_sd, mean + 2 * prediction.total_sd,
                       color="tab:blue", alpha=0.18, lw=0, label="mean ± 2 total SD")
    right.fill_between(sweep, mean - 2 * prediction.epistemic_sd,
                       mean + 2 * prediction.epistemic_sd, color="tab:purple", alpha=0.35,
                       lw=0, label="mean ± 2 epistemic SD")
    right.plot(sweep, mean, color="tab:blue", lw=2, label="predictive mean")
    for k, value in enumerate(tested):
        right.axvline(value, color="0.3", lw=0.8, ls=":",
                      label="tested values" if k == 0 else None)
    near = _data_at(data, at, base, index)
    if near is not None:
        right.scatter(near[0], near[1], s=10, color="k", alpha=0.6, zorder=3,
                      label=f"data at {x_label.split(' [')[0]}≈{at:.3g}")
    right.set(xlabel=f"{name} [{unit}]", ylabel=y_label,
              title=f"at {x_label.split(' [')[0]}={at:.3g}, across {name}")
    if log:
        right.set_xscale("log")
    right.legend(fontsize=7, loc="best")
    others = f" ({', '.join(fixed)})" if fixed else ""
    figure.suptitle(f"{title}: across {name}{others}", fontsize=10)
    return figure


def _data_at(data: TrainingData, strain: float, base: np.ndarray, index: int
             ) -> tuple[np.ndarray, np.ndarray] | None:
    """(covariate value, stress) of the training rows at the strain nearest `strain` (per
    material curve, within 2% of the strain range) whose other covariates equal the
    central condition's."""
    if data.covariates is None or data.x.size == 0:
        return None
    others = np.delete(np.arange(base.size), index)
    same = np.all(data.covariates[:, others] == base[others], axis=1)
    tolerance = 0.02 * float(np.ptp(data.x) or 1.0)
    rows = np.flatnonzero(same & (np.abs(data.x - strain) <= tolerance))
    if rows.size == 0:
        return None
    return data.covariates[rows, index], data.y[rows]
