"""One rho per component of the loadings (curve_model.condition_correlations): the
conditioning across conditions against brute-force Gaussian algebra, and the fit that
recovers a shared leading component that one rho for all components understates."""

from __future__ import annotations

import numpy as np
import pytest

from service.artifact import Artifact
from service.inference import curves_across
from service.inference.curves import CurveModel
from service.inference.posterior import Posterior
from service.manifest import CurveModelSection
from tests.service_process import smooth_curve_section
from tests.test_curves_across import RHO, across_artifact, assert_the_gaussian_conditional
from training.condition_correlation import fit_condition_law

RHOS = [0.95, 0.2, 0.6, 0.0, 1.0, 0.5, 0.3, 0.8]


def components_artifact() -> Artifact:
    """The one-rho test's model, with one rho per component beside its rho."""
    artifact = across_artifact()
    artifact.manifest["curve_model"]["condition_correlations"] = RHOS
    return artifact


@pytest.mark.parametrize("condition", [[273.15], [340.0]])
def test_conditioning_with_one_rho_per_component_is_the_gaussian_conditional(
        condition: list[float]) -> None:
    posterior = Posterior(components_artifact())
    curve = posterior.curve
    assert curve is not None
    vectors = curves_across.component_basis(curve.table_loadings)
    across = vectors @ np.diag(RHOS) @ vectors.T  # Cov(w_c, w_c') for c != c'
    assert_the_gaussian_conditional(
        posterior, condition,
        lambda a, where: np.where(where[:, None] == where[None, :], a @ a.T,
                                  a @ across @ a.T))


def test_sampled_new_materials_share_each_component_by_its_rho() -> None:
    artifact = components_artifact()
    for array in artifact.arrays.values():  # every draw the same network
        array[:] = array[0]
    posterior = Posterior(artifact)
    curve = posterior.curve
    assert curve is not None
    strain = np.array([0.3, 0.3])
    conditions = np.array([[273.15], [353.15]])
    state = curves_across.prior(curve, RHO, posterior.draws)
    samples = curves_across.curve_samples_across(posterior, curve, state, strain,
                                                 conditions, 20_000, seed=3,
                                                 test_noise=False)
    mu = np.array([posterior.at(c).network_outputs(strain[:1])[0][0, 0] for c in conditions])
    a = curve.loadings(strain[:1])[0]
    vectors = curves_across.component_basis(curve.table_loadings)
    expected = float(a @ vectors @ np.diag(RHOS) @ vectors.T @ a / (a @ a))
    correlation = np.corrcoef(samples[0] - mu[0], samples[1] - mu[1])[0, 1]
    assert abs(correlation - expected) < 0.03


def test_a_condition_correlations_of_the_wrong_size_is_refused() -> None:
    section = smooth_curve_section(basis=8)
    section["condition_correlations"] = [0.5] * 7
    with pytest.raises(ValueError, match="condition_correlations"):
        CurveModelSection.model_validate(section)


def simulated_curves(rhos: np.ndarray, section: dict, materials: int, seed: int
                     ) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """z curves of `materials` materials at 3 conditions each, from the model itself."""
    curve = CurveModel.from_section(CurveModelSection.model_validate(section))
    vectors = curves_across.component_basis(curve.table_loadings)
    shared = (vectors * np.sqrt(rhos)) @ vectors.T
    own = (vectors * np.sqrt(1.0 - rhos)) @ vectors.T
    strain = np.linspace(-0.5, 0.5, 15)
    a = curve.loadings(strain)
    noise = np.sqrt(np.maximum(1.0 - np.sum(a * a, axis=1), 0.0))
    rng = np.random.default_rng(seed)
    out = []
    for material in range(materials):
        w = rng.standard_normal(a.shape[1])
        for condition in range(3):
            effect = shared @ w + own @ rng.standard_normal(a.shape[1])
            z = a @ effect + noise * rng.standard_normal(strain.size)
            out.append((strain, z, material, condition))
    return out


def test_the_fit_keeps_a_shared_leading_component_that_one_rho_understates() -> None:
    section = smooth_curve_section(basis=6, length=0.6, level=0.05)
    rhos = np.array([0.95, 0.3, 0.3, 0.3, 0.3, 0.3])
    curves = simulated_curves(rhos, section, materials=60, seed=1)
    # Three conditions on a line: the decaying law is a candidate too.
    law = fit_condition_law(curves, section, 6, np.array([[-1.0], [0.0], [1.0]]))
    summary = law.summary
    assert summary["law"] == "per component" and law.rhos is not None, summary
    gains = summary["held_out_gain_over_one_rho_nats_per_point"]
    assert gains["per component"] > max(gains["decaying"], 0.0)
    assert law.length_scale is None
    assert abs(law.rhos[0] - 0.95) < 0.04
    assert law.rhos[0] > np.mean(law.rhos[1:3]) + 0.3
