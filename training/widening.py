"""Widen the served scatter where held-out materials show the fit's answer too narrow.

A group of few materials per condition (three specimens at each of four temperatures) is
answered too narrowly: the Bayesian-bootstrap spread of the mean over n materials is about
(n-1)/(n+1) of a new material's mean error, and the fitted scatter is those n materials'
own spread, as uncertain as a chi-square with n-1 degrees of freedom. Dense curves do not
help: 300 points of one specimen are one material's worth of evidence about the scatter
between specimens. On such a group (docs/calibration.md, "Few materials: the scatter
widened") new specimens fell inside the 95% band 73-81% of the time.

The held-out folds by material measure exactly this: each fold's fit answers for materials
it has not seen. The rule:

- the factor c >= 1 that maximises the held-out log predictive density of every fold's
  rows, each scored by its own fold's fit with every draw's sigma multiplied by c;
- applied only where the held-out 95% coverage's interval over materials
  (`training.spread.fraction_interval`) lies wholly below 0.95: the materials, not the
  rows, must show the answer too narrow. Otherwise c = 1 and the fit is unchanged bit
  for bit;
- taken only where it helps out of sample: each fold scored with the factor the other
  folds ask for must lower the pooled held-out NLPD (a single fold cannot show that, and
  is not widened);
- never below 1: the held-out fits train on (K-1)/K of the materials and so answer a
  little more widely than they would with all of them; they are trusted to show that the
  answer is too narrow, not to narrow it.

The served fit applies c by adding ln c to every draw's sigma-head bias (the exp noise
link): sigma_s(x) becomes c sigma_s(x) at every strain and condition, and nothing in the
artifact's contract changes. The figures after widening are cross-fitted: each fold is
scored with the factor the other folds give, so they estimate what the widened fit does
on new materials without scoring c on the rows that chose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from training import calibration, spread
from training.calibration import PredictiveDraws

NOMINAL = 0.95
# No group is answered this much too narrowly by a fit worth serving; the bound keeps the
# one-dimensional search finite.
MAX_FACTOR = 10.0


@dataclass(frozen=True)
class HeldOutFold:
    """One fold's held-out rows: observations, the fold fit's draws there, their units."""

    y: np.ndarray
    draws: PredictiveDraws
    units: np.ndarray


def scaled(draws: PredictiveDraws, factor: float) -> PredictiveDraws:
    return PredictiveDraws(draws.mu, draws.sigma * factor)


def too_narrow(folds: list[HeldOutFold]) -> bool:
    """The held-out 95% coverage's interval over materials lies wholly below 0.95."""
    y, draws, units = _pooled(folds)
    inside = np.abs(calibration.pit(y, draws) - 0.5) <= NOMINAL / 2
    return spread.fraction_interval(inside, units)[1] < NOMINAL


def best_factor(folds: list[HeldOutFold]) -> float:
    """The c >= 1 maximising the pooled held-out log predictive density (1 where the
    materials do not show the answer too narrow)."""
    if not folds or not too_narrow(folds):
        return 1.0
    y, draws, _ = _pooled(folds)

    def nlpd(log_factor: float) -> float:
        return calibration.nlpd(y, scaled(draws, float(np.exp(log_factor))))

    found = minimize_scalar(nlpd, bounds=(0.0, float(np.log(MAX_FACTOR))), method="bounded",
                            options={"xatol": 1e-4})
    return float(np.exp(found.x))


def widening_section(folds: list[HeldOutFold], y_scale: float | None) -> dict[str, Any]:
    """The manifest's `metrics.scatter_widening`: the factor the served fit takes (1: not
    widened), the factor the folds asked for, the rule, and the held-out scores before and
    (cross-fitted) after it. The factor is taken only where the cross-fitted scores show
    it helping: with one fold there is nothing to check it on, and it is not taken."""
    asked = best_factor(folds)
    before = _scores(folds, y_scale)
    section: dict[str, Any] = {
        "factor": 1.0, "applied": False, "asked_factor": asked,
        "rule": "sigma x factor >= 1 maximising held-out log density; taken only where the "
                "held-out 95% coverage interval over materials lies below 0.95 and the "
                "factor, each fold scored with the other folds' factor, lowers the "
                "held-out NLPD",
        "held_out_before": before}
    if asked > 1.0 and len(folds) > 1:
        others = [best_factor(folds[:k] + folds[k + 1:]) for k in range(len(folds))]
        after = _scores([HeldOutFold(f.y, scaled(f.draws, c), f.units)
                         for f, c in zip(folds, others, strict=True)], y_scale)
        section["held_out_after"] = {**after, "fold_factors": [round(c, 4) for c in others]}
        if after["nlpd"] < before["nlpd"]:
            section.update(factor=asked, applied=True)
    return section


def _pooled(folds: list[HeldOutFold]) -> tuple[np.ndarray, PredictiveDraws, np.ndarray]:
    return (np.concatenate([f.y for f in folds]),
            PredictiveDraws(np.concatenate([f.draws.mu for f in folds], axis=1),
                            np.concatenate([f.draws.sigma for f in folds], axis=1)),
            np.concatenate([f.units for f in folds]))


def _scores(folds: list[HeldOutFold], y_scale: float | None) -> dict[str, Any]:
    y, pooled, unit = _pooled(folds)
    log_density = calibration.pointwise_log_predictive(y, pooled)
    distance = np.abs(calibration.pit(y, pooled) - 0.5)
    low, high = spread.fraction_interval(distance <= NOMINAL / 2, unit)
    scores: dict[str, Any] = {
        "nlpd": float(-np.mean(log_density)),
        "coverage": {f"{level:.2f}": float(np.mean(distance <= level / 2))
                     for level in calibration.REPORTED_LEVELS},
        "coverage_95_interval": [round(low, 4), round(high, 4)]}
    if y_scale:
        scores["nlpd_standardised"] = calibration.standardised_nlpd(scores["nlpd"], y_scale)
    return scores
