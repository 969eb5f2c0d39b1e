"""Fitting the curve model: the penalised likelihood's gradient, and rho, the correlation
of a material's random effects across conditions, recovered from curves drawn with it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from service.inference.curves import design, normalise
from tests.service_process import smooth_curve_section
from training.condition_correlation import fit_condition_correlation
from training.curves import _batches, _start, negative_log_likelihood


def test_the_penalised_likelihood_has_the_gradient_it_reports() -> None:
    rng = np.random.default_rng(0)
    curves = [(np.sort(rng.uniform(-0.5, 0.5, rng.integers(5, 12))),
               rng.standard_normal(12)) for _ in range(6)]
    curves = [(x, z[:x.size]) for x, z in curves]
    batches = _batches(curves, -0.5, 0.5, 6)
    theta = _start(batches, 6) + 0.1 * rng.standard_normal(_start(batches, 6).size)
    for smoothing in (0.0, 10.0):
        error = check_grad(lambda t, s=smoothing: negative_log_likelihood(t, batches, 6, s)[0],
                           lambda t, s=smoothing: negative_log_likelihood(t, batches, 6, s)[1],
                           theta)
        assert error < 1e-4 * max(1.0, np.linalg.norm(
            negative_log_likelihood(theta, batches, 6, smoothing)[1]))


def _materials_at_conditions(rho: float, seed: int, section: dict) -> list:
    """40 materials x 5 conditions of z curves drawn from the model with this rho."""
    chol = np.array(section["between_cholesky"])
    gamma = np.array(section["within_log_variance"])
    rng = np.random.default_rng(seed)
    strain = np.linspace(-0.5, 0.5, 30)
    phi = design(normalise(strain, -0.5, 0.5), gamma.size)
    noise = np.sqrt(np.exp(phi @ gamma))
    curves = []
    for material in range(40):
        shared = rng.standard_normal(gamma.size)
        for _ in range(5):
            w = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(gamma.size)
            curves.append((strain, phi @ chol @ w + noise * rng.standard_normal(30), material,
                           len(curves) % 5))
    return curves


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_rho_is_recovered_from_materials_tested_at_several_conditions(rho: float) -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    fitted, summary = fit_condition_correlation(_materials_at_conditions(rho, 1, section),
                                                section, 8)
    assert abs(fitted - rho) < 0.06
    assert summary["identified"] and summary["materials_at_several_conditions"] == 40


def test_rho_is_zero_and_unidentified_when_each_material_has_one_condition() -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    curves = [(x, z, index, condition) for index, (x, z, _, condition) in
              enumerate(_materials_at_conditions(0.9, 2, section))]
    fitted, summary = fit_condition_correlation(curves, section, 8)
    assert fitted == 0.0 and summary["identified"] is False
