"""The random effect across conditions: its closed-form conditioning against brute-force
Gaussian algebra, and sampled materials whose curves at two conditions correlate by rho."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from service.artifact import Artifact
from service.inference import curves_across
from service.inference.curves import Observed
from service.inference.posterior import Posterior
from tests.service_process import random_artifact, smooth_curve_section

RHO = 0.6


def across_artifact(identical_draws: bool = False) -> Artifact:
    artifact = random_artifact(draws=6, hidden_sizes=(8,), covariates=1, seed=4)
    if identical_draws:  # every draw the same network: samples minus mu are sigma z
        for array in artifact.arrays.values():
            array[:] = array[0]
    section = smooth_curve_section(basis=8, level=0.1)
    section["condition_correlation"] = RHO
    artifact.manifest["curve_model"] = section
    return artifact


OBSERVED = Observed(np.array([-0.3, 0.2, 0.1]), np.array([-0.5, 0.3, 0.0]))
OBSERVED_AT = np.array([[273.15], [273.15], [296.15]])
TARGET = np.array([-0.25, 0.35])


def assert_the_gaussian_conditional(
        posterior: Posterior, condition: list[float],
        between: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """`curves_across`' answer at `condition`, given OBSERVED at OBSERVED_AT, against the
    Gaussian conditional of z built point by point, per draw: Cov = between(a, where) +
    (1 - r(x)) at the same point, with a the loadings at the observed then the TARGET
    strains and `where` their conditions (one covariate)."""
    curve = posterior.curve
    assert curve is not None
    state = curves_across.condition_across(posterior, curve, curve.condition_correlation,
                                           OBSERVED, OBSERVED_AT)
    mean, between_var, within_var = curves_across.conditional_draws_at(
        posterior, curve, state, TARGET, np.array(condition))
    where = np.concatenate([OBSERVED_AT[:, 0], np.full(TARGET.size, condition[0])])
    a = curve.loadings(np.concatenate([OBSERVED.strain, TARGET]))
    cov = between(a, where) + np.diag(1.0 - np.sum(a * a, axis=1))
    o, t = slice(0, OBSERVED.strain.size), slice(OBSERVED.strain.size, None)
    gain = cov[t, o] @ np.linalg.inv(cov[o, o])
    conditional_var = np.diag(cov[t, t] - gain @ cov[o, t])
    outputs = [posterior.at(OBSERVED_AT[i]).network_outputs(OBSERVED.strain[i:i + 1])
               for i in range(OBSERVED.strain.size)]
    z = np.array([(OBSERVED.stress[i] - mu[:, 0]) / sigma[:, 0]
                  for i, (mu, sigma, _) in enumerate(outputs)])  # (points, draws)
    mu_t, sigma_t, _ = posterior.at(condition).network_outputs(TARGET)
    for s in range(posterior.draws):
        np.testing.assert_allclose(mean[s], mu_t[s] + sigma_t[s] * (gain @ z[:, s]),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(between_var[s] + within_var[s],
                                   sigma_t[s] ** 2 * conditional_var, rtol=1e-9)


@pytest.mark.parametrize("condition", [[273.15], [340.0]])
def test_conditioning_across_conditions_is_the_gaussian_conditional(
        condition: list[float]) -> None:
    posterior = Posterior(across_artifact())
    assert posterior.curve is not None and posterior.curve.condition_correlation == RHO
    # One rho: the effects correlate 1 at one condition and rho across two.
    assert_the_gaussian_conditional(
        posterior, condition,
        lambda a, where: (a @ a.T) * np.where(where[:, None] == where[None, :], 1.0, RHO))


def test_sampled_materials_correlate_by_rho_across_conditions() -> None:
    posterior = Posterior(across_artifact(identical_draws=True))
    curve = posterior.curve
    assert curve is not None
    strain = np.array([0.3, 0.3])
    conditions = np.array([[273.15], [353.15]])
    state = curves_across.prior(curve, RHO, posterior.draws)
    samples = curves_across.curve_samples_across(posterior, curve, state, strain,
                                                 conditions, 20_000, seed=3,
                                                 test_noise=False)
    mu = np.array([posterior.at(c).network_outputs(strain[:1])[0][0, 0] for c in conditions])
    correlation = np.corrcoef(samples[0] - mu[0], samples[1] - mu[1])[0, 1]
    assert abs(correlation - RHO) < 0.03
    again = curves_across.curve_samples_across(posterior, curve, state, strain, conditions,
                                               20_000, seed=3, test_noise=False)
    np.testing.assert_array_equal(samples, again)
