"""The numpy scores (training/scores.py) equal scoringrules' on random ensembles."""

from __future__ import annotations

import numpy as np
import pytest
import scoringrules

from training import scores


def test_crps_equals_scoringrules_pwm_estimator() -> None:
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(40, 300)) * rng.uniform(0.1, 3, size=(40, 1))
    observed = rng.normal(size=40) * 2
    expected = scoringrules.crps_ensemble(observed, samples, estimator="pwm")
    np.testing.assert_allclose(scores.crps_ensemble(observed, samples), expected,
                               rtol=1e-10, atol=1e-12)


def test_energy_and_variogram_scores_equal_scoringrules() -> None:
    rng = np.random.default_rng(2)
    for d, m in ((1, 5), (7, 50), (25, 200)):
        samples = np.cumsum(rng.normal(size=(m, d)), axis=1)  # correlated like a curve
        observed = np.cumsum(rng.normal(size=d))
        assert scores.energy_score(observed, samples) == pytest.approx(
            float(scoringrules.es_ensemble(observed, samples)), rel=1e-9, abs=1e-12)
        assert scores.variogram_score(observed, samples) == pytest.approx(
            float(scoringrules.vs_ensemble(observed, samples, p=0.5)), rel=1e-9, abs=1e-12)


def test_a_sharper_ensemble_around_the_truth_scores_better() -> None:
    rng = np.random.default_rng(3)
    truth = np.linspace(0, 1, 10)
    sharp = truth + 0.05 * rng.normal(size=(100, 10))
    wide = truth + 0.5 * rng.normal(size=(100, 10))
    assert scores.energy_score(truth, sharp) < scores.energy_score(truth, wide)
    assert scores.crps_ensemble(truth, sharp.T).mean() < scores.crps_ensemble(truth, wide.T).mean()
