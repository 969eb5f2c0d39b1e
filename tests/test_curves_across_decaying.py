"""A correlation across conditions that decays with their distance
(curve_model.condition_length_scales): the Gaussian conditional by brute force, the
one-rho answer as the length grows, the unconditioned answer far away, sampled materials
correlating by R, and the manifest refusing a length scale per missing covariate."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from service.inference import curves_across
from service.inference.posterior import Posterior
from service.manifest import Manifest
from tests.service_process import random_artifact
from tests.test_curves_across import (
    OBSERVED,
    OBSERVED_AT,
    RHO,
    TARGET,
    across_artifact,
    assert_the_gaussian_conditional,
)


def decaying_posterior(length: float | None, identical_draws: bool = False) -> Posterior:
    artifact = across_artifact(identical_draws)
    artifact.manifest["curve_model"]["condition_length_scales"] = (
        None if length is None else [length])
    return Posterior(artifact)


def answer(posterior: Posterior, condition: list[float]) -> tuple[np.ndarray, np.ndarray]:
    curve = posterior.curve
    assert curve is not None
    state = curves_across.condition_across(posterior, curve, RHO, OBSERVED, OBSERVED_AT)
    mean, between, within = curves_across.conditional_draws_at(
        posterior, curve, state, TARGET, np.array(condition))
    return mean, between + within


@pytest.mark.parametrize("condition", [[273.15], [296.15], [340.0]])
def test_decaying_conditioning_is_the_gaussian_conditional(condition: list[float]) -> None:
    length = 30.0

    def between(a: np.ndarray, where: np.ndarray) -> np.ndarray:
        gap = (where[:, None] - where[None, :]) / length
        return (a @ a.T) * np.where(gap == 0.0, 1.0, RHO * np.exp(-0.5 * gap**2))

    assert_the_gaussian_conditional(decaying_posterior(length), condition, between)


@pytest.mark.parametrize("condition", [[273.15], [296.15], [340.0]])
def test_an_infinite_length_scale_is_the_one_rho_answer(condition: list[float]) -> None:
    one_rho = answer(decaying_posterior(None), condition)
    very_long = answer(decaying_posterior(1e9), condition)
    for plain, decaying in zip(one_rho, very_long, strict=True):
        np.testing.assert_allclose(decaying, plain, rtol=1e-9, atol=1e-12)


def test_a_far_condition_gets_the_unconditioned_answer() -> None:
    posterior = decaying_posterior(5.0)
    far = [296.15 + 200.0]  # 40 length scales from the nearest observed condition
    mean, variance = answer(posterior, far)
    mu, sigma, _ = posterior.at(far).network_outputs(TARGET)
    np.testing.assert_allclose(mean, mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(variance, sigma**2, rtol=1e-9)
    near_mean, _ = answer(posterior, [300.0])
    assert np.max(np.abs(near_mean - posterior.at([300.0]).network_outputs(TARGET)[0])) > 1e-3


def test_sampled_materials_correlate_by_the_decayed_rho() -> None:
    length = 40.0
    posterior = decaying_posterior(length, identical_draws=True)
    curve = posterior.curve
    assert curve is not None
    strain = np.array([0.3, 0.3, 0.3])
    conditions = np.array([[273.15], [296.15], [353.15]])
    state = curves_across.prior(curve, RHO, posterior.draws)
    samples = curves_across.curve_samples_across(posterior, curve, state, strain, conditions,
                                                 20_000, seed=3, test_noise=False)
    mu = [posterior.at(c).network_outputs(strain[:1])[0][0, 0] for c in conditions]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        expected = RHO * np.exp(-0.5 * ((conditions[i, 0] - conditions[j, 0]) / length) ** 2)
        seen = np.corrcoef(samples[i] - mu[i], samples[j] - mu[j])[0, 1]
        assert abs(seen - expected) < 0.03
    # Given points at 273.15 K the samples there follow them; at 353.15 K they are freer.
    given = curves_across.condition_across(posterior, curve, RHO, OBSERVED, OBSERVED_AT)
    conditioned = curves_across.curve_samples_across(posterior, curve, given, strain,
                                                     conditions, 20_000, seed=3,
                                                     test_noise=False)
    prediction = curves_across.conditional_predict_across(posterior, curve, given, strain,
                                                          conditions)
    np.testing.assert_allclose(conditioned.mean(axis=1), prediction.mean, atol=0.05)


def test_the_manifest_wants_one_length_scale_per_covariate() -> None:
    manifest = across_artifact().manifest
    manifest["curve_model"]["condition_length_scales"] = [20.0, 1.0]
    with pytest.raises(ValidationError, match="condition_length_scales"):
        Manifest.model_validate(manifest)
    manifest["curve_model"]["condition_length_scales"] = [0.0]
    with pytest.raises(ValidationError, match="condition_length_scales"):
        Manifest.model_validate(manifest)
    manifest["curve_model"]["condition_length_scales"] = [20.0]
    assert Manifest.model_validate(manifest).curve_model is not None
    plain = random_artifact(draws=2, seed=1).manifest
    plain["curve_model"] = {**manifest["curve_model"]}
    with pytest.raises(ValidationError, match="needs covariates"):
        Manifest.model_validate(plain)
    del plain["curve_model"]["condition_length_scales"]
    assert Manifest.model_validate(plain).curve_model is not None
