"""The random effect across conditions: its closed-form conditioning against brute-force
Gaussian algebra, and sampled materials whose curves at two conditions correlate by rho."""

from __future__ import annotations

import numpy as np

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


def test_conditioning_across_conditions_is_the_gaussian_conditional() -> None:
    posterior = Posterior(across_artifact())
    curve = posterior.curve
    assert curve is not None and curve.condition_correlation == RHO
    at_a, at_b, at_c = [273.15], [296.15], [340.0]
    observed = Observed(np.array([-0.3, 0.2, 0.1]), np.array([-0.5, 0.3, 0.0]))
    observed_at = np.array([at_a, at_a, at_b])
    state = curves_across.condition_across(posterior, curve, RHO, observed, observed_at)
    # Brute force per draw: the joint covariance of z over observed and target points,
    # Cov = a(x).a(x') (1 at one condition, rho across) + (1 - r(x)) at the same point.
    target = np.array([-0.25, 0.35])
    for condition in (at_a, at_c):
        mean, between, within = curves_across.conditional_draws_at(
            posterior, curve, state, target, np.array(condition))
        strains = np.concatenate([observed.strain, target])
        where = np.concatenate([observed_at[:, 0], np.full(target.size, condition[0])])
        a = curve.loadings(strains)
        same = where[:, None] == where[None, :]
        cov = (a @ a.T) * np.where(same, 1.0, RHO) + np.diag(1.0 - np.sum(a * a, axis=1))
        o, t = slice(0, 3), slice(3, 5)
        gain = cov[t, o] @ np.linalg.inv(cov[o, o])
        conditional_cov = cov[t, t] - gain @ cov[o, t]
        for s in range(posterior.draws):
            z_observed = np.empty(3)
            for i in range(3):
                mu, sigma, _ = posterior.at(observed_at[i]).network_outputs(
                    observed.strain[i:i + 1])
                z_observed[i] = (observed.stress[i] - mu[s, 0]) / sigma[s, 0]
            mu_t, sigma_t, _ = posterior.at(condition).network_outputs(target)
            np.testing.assert_allclose(mean[s], mu_t[s] + sigma_t[s] * (gain @ z_observed),
                                       rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(between[s] + within[s],
                                       sigma_t[s] ** 2 * np.diag(conditional_cov),
                                       rtol=1e-9)


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
