"""Calibration metrics against brute force and known values (no fits: fixed draws)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from training import calibration
from training.calibration import PredictiveDraws


def single_normal(mu: float, sigma: float, n: int) -> PredictiveDraws:
    return PredictiveDraws(np.full((1, n), mu), np.full((1, n), sigma))


def test_nlpd_of_a_single_normal_is_its_negative_log_density() -> None:
    y = np.array([-1.0, 0.3, 2.5])
    expected = -norm.logpdf(y, loc=0.5, scale=2.0).mean()
    assert calibration.nlpd(y, single_normal(0.5, 2.0, 3)) == pytest.approx(expected)


def test_mixture_nlpd_is_log_of_mean_density_over_draws() -> None:
    rng = np.random.default_rng(1)
    mu, sigma = rng.normal(size=(7, 5)), rng.uniform(0.5, 2.0, size=(7, 5))
    y = rng.normal(size=5)
    brute = -np.mean([np.log(np.mean([norm.pdf(y[i], mu[s, i], sigma[s, i])
                                      for s in range(7)])) for i in range(5)])
    assert calibration.nlpd(y, PredictiveDraws(mu, sigma)) == pytest.approx(brute)


def test_mixture_nlpd_stays_finite_far_in_the_tails() -> None:
    draws = PredictiveDraws(np.zeros((3, 1)), np.full((3, 1), 1e-3))
    assert np.isfinite(calibration.nlpd(np.array([1.0]), draws))  # density underflows


def test_exact_samples_are_calibrated() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    mu, sigma = rng.normal(size=n), rng.uniform(0.1, 3.0, size=n)
    y = rng.normal(mu, sigma)
    pits = calibration.pit(y, PredictiveDraws(mu[None], sigma[None]))
    coverage = calibration.central_coverage(pits, np.array([0.5, 0.9, 0.95]))
    np.testing.assert_allclose(coverage, [0.5, 0.9, 0.95], atol=0.01)
    assert calibration.miscalibration_area(pits) < 0.01


def test_overconfident_predictions_undercover() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=5000)
    pits = calibration.pit(y, single_normal(0.0, 0.5, y.size))
    assert calibration.central_coverage(pits, np.array([0.95]))[0] < 0.7
    assert calibration.miscalibration_area(pits) > 0.1


def test_coverage_of_the_mixture_uses_the_mixture_not_a_gaussian() -> None:
    # Two well separated components: half the mass near -3, half near +3. An observation
    # at 0 is at the median but outside the central 50% interval of the mixture.
    draws = PredictiveDraws(np.array([[-3.0], [3.0]]), np.array([[0.1], [0.1]]))
    pits = calibration.pit(np.array([0.0]), draws)
    assert pits[0] == pytest.approx(0.5)
    assert calibration.central_coverage(pits, np.array([0.02]))[0] == 1.0
    assert calibration.pit(np.array([2.9]), draws)[0] == pytest.approx(
        0.5 + 0.5 * norm.cdf(-1.0), abs=1e-9)


def test_crps_of_a_normal_matches_the_closed_form() -> None:
    y = np.array([-0.7, 0.0, 1.9])
    closed = (1.5 * (((y - 0.2) / 1.5) * (2 * norm.cdf((y - 0.2) / 1.5) - 1)
                     + 2 * norm.pdf((y - 0.2) / 1.5) - 1 / np.sqrt(np.pi))).mean()
    draws = PredictiveDraws(np.full((200, 3), 0.2), np.full((200, 3), 1.5))
    assert calibration.crps(y, draws, samples_per_draw=50) == pytest.approx(closed, rel=0.02)


def test_empirical_sd_by_strain_matches_pandas_and_skips_sparse_strains() -> None:
    rng = np.random.default_rng(4)
    x = np.repeat([0.0, 0.1, 0.2], [5, 4, 2])
    y = rng.normal(size=x.size)
    strains, sd = calibration.empirical_sd_by_strain(x, y, min_repeats=3)
    expected = pd.Series(y).groupby(x).std()
    np.testing.assert_allclose(strains, [0.0, 0.1])
    np.testing.assert_allclose(sd, expected.loc[[0.0, 0.1]].to_numpy())


def _posterior_from_outputs(draws: int, chains_offset: float):  # type: ignore[no-untyped-def]
    """A 1-unit network whose mean head bias differs between two chains by an offset."""
    from service.artifact import Artifact
    from service.inference.posterior import Posterior

    rng = np.random.default_rng(5)
    half = draws // 2
    arrays = {
        "trunk0.W": np.ones((draws, 1, 1)), "trunk0.b": np.zeros((draws, 1)),
        "mean_head.W": np.ones((draws, 1, 1)),
        "mean_head.b": np.concatenate([rng.normal(0, 0.1, (half, 1)),
                                       rng.normal(chains_offset, 0.1, (half, 1))]),
        "sigma_head.W": np.zeros((draws, 1, 1)), "sigma_head.b": np.zeros((draws, 1)),
    }
    manifest = {
        "schema_version": 1, "inference": {"draws": draws},
        "architecture": {"hidden_sizes": [1], "activation": "tanh", "noise_link": "exp"},
        "normalisation": {"x_mean": 0.0, "x_scale": 1.0, "y_mean": 0.0, "y_scale": 1.0},
        "training_domain": {"min": -1.0, "max": 1.0},
    }
    return Posterior(Artifact(manifest=manifest, arrays=arrays))


def test_function_space_r_hat_flags_chains_that_disagree_on_the_function() -> None:
    agreeing = calibration.function_space_diagnostics(_posterior_from_outputs(400, 0.0), 2,
                                                      -1.0, 1.0)
    disagreeing = calibration.function_space_diagnostics(_posterior_from_outputs(400, 1.0),
                                                         2, -1.0, 1.0)
    assert agreeing["r_hat_max"] < 1.02
    assert disagreeing["r_hat_max"] > 1.5
    assert calibration.function_space_diagnostics(_posterior_from_outputs(400, 0.0), 1,
                                                  -1.0, 1.0) == {}


def test_evaluate_reports_every_score_from_the_service_forward_pass() -> None:
    posterior = _posterior_from_outputs(100, 0.0)
    x = np.linspace(-1, 1, 50)
    y = np.tanh(x) + np.random.default_rng(6).normal(size=50)  # sigma = exp(0) = 1
    scores = calibration.evaluate(posterior, x, y, y_scale=2.0)
    assert set(scores["coverage"]) == {"0.50", "0.90", "0.95"}
    # Standardised, the data's SD is 1: the same band is half as wide, its density twice.
    assert scores["nlpd_standardised"] == pytest.approx(scores["nlpd"] - np.log(2.0))
    assert scores["nlpd"] == pytest.approx(-norm.logpdf(y, np.tanh(x), 1.0).mean(), abs=0.05)
