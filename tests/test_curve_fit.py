"""Fitting the curve model: the penalised likelihood's gradient, and rho, the correlation
of a material's random effects across conditions (one for every pair, or decaying with the
distance between conditions), recovered from curves drawn with it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from service.inference.curves import design, normalise
from tests.service_process import smooth_curve_section
from training.condition_correlation import (
    _Grid,
    _stacks,
    fit_condition_correlation,
    fit_condition_law,
    fit_decaying_correlation,
    joint_negative_log_likelihood,
)
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


def _materials_with(correlation: np.ndarray, seed: int, section: dict) -> list:
    """40 materials x len(correlation) conditions of z curves drawn from the model whose
    random effects at the conditions are N(0, correlation (x) I)."""
    chol = np.array(section["between_cholesky"])
    gamma = np.array(section["within_log_variance"])
    rng = np.random.default_rng(seed)
    strain = np.linspace(-0.5, 0.5, 30)
    phi = design(normalise(strain, -0.5, 0.5), gamma.size)
    noise = np.sqrt(np.exp(phi @ gamma))
    root = np.linalg.cholesky(correlation + 1e-12 * np.eye(len(correlation)))
    curves = []
    for material in range(40):
        effects = root @ rng.standard_normal((len(correlation), gamma.size))
        for condition, w in enumerate(effects):
            curves.append((strain, phi @ chol @ w + noise * rng.standard_normal(30), material,
                           condition))
    return curves


def _materials_at_conditions(rho: float, seed: int, section: dict) -> list:
    """40 materials x 5 conditions, one rho between every pair."""
    return _materials_with(np.full((5, 5), rho) + (1.0 - rho) * np.eye(5), seed, section)


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


def _materials_at_decaying_correlation(rho0: float, length: float, seed: int,
                                       section: dict, coordinates: np.ndarray) -> list:
    """40 materials x the conditions at `coordinates` (standardised), R = rho0
    exp(-d^2 / 2 l^2) off the diagonal."""
    gap = coordinates[:, None, :] - coordinates[None, :, :]
    r = rho0 * np.exp(-0.5 * np.sum(gap * gap, axis=2) / length**2)
    np.fill_diagonal(r, 1.0)
    return _materials_with(r, seed, section)


def test_a_decaying_correlation_is_recovered_from_materials_at_several_conditions() -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    coordinates = np.linspace(-1.4, 1.4, 5)[:, None]
    curves = _materials_at_decaying_correlation(0.95, 0.8, 5, section, coordinates)
    rho0, length, summary = fit_decaying_correlation(curves, section, 8, coordinates)
    assert length is not None and abs(length - 0.8) < 0.2
    assert abs(rho0 - 0.95) < 0.06
    assert summary["gain_over_one_rho_nats_per_point"] > 0


def test_held_out_materials_choose_the_decaying_law_where_the_correlation_decays() -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    coordinates = np.linspace(-1.4, 1.4, 5)[:, None]
    curves = _materials_at_decaying_correlation(0.95, 0.8, 5, section, coordinates)
    law = fit_condition_law(curves, section, 8, coordinates)
    assert law.summary["law"] == "decaying", law.summary
    assert law.length_scale is not None and abs(law.length_scale - 0.8) < 0.2
    assert law.summary["held_out_gain_over_one_rho_nats_per_point"]["decaying"] > 0


def test_one_correlation_for_every_pair_is_kept_when_the_data_have_no_decay() -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    coordinates = np.linspace(-1.4, 1.4, 5)[:, None]
    curves = _materials_at_conditions(0.7, 3, section)
    rho, _ = fit_condition_correlation(curves, section, 8)
    law = fit_condition_law(curves, section, 8, coordinates)
    # One rho, or a law that reduces to it: a length scale too long to matter over the
    # span, or components all near the one rho.
    assert law.length_scale is None or law.length_scale > 5.0, law.summary
    assert abs(law.rho - rho) < 0.05 and law.summary["rho"] == rho
    if law.rhos is not None:
        assert np.max(np.abs(np.array(law.rhos) - rho)) < 0.25, law.summary


def test_the_decaying_likelihood_at_infinite_length_is_the_one_rho_likelihood() -> None:
    section = smooth_curve_section(basis=8, level=0.05)
    chol = np.tril(np.asarray(section["between_cholesky"]))
    gamma = np.asarray(section["within_log_variance"])
    grids: dict = {}
    kept = []
    for strain, z, material, condition in _materials_at_conditions(0.7, 3, section)[:60]:
        key = strain.tobytes()
        grids.setdefault(key, _Grid(strain, chol, gamma, -0.5, 0.5))
        kept.append((key, z, material, condition))
    stacks = _stacks(kept, grids, np.linspace(-1.4, 1.4, 5)[:, None])
    for rho in (0.0, 0.4, 0.9):
        decaying = sum(s.negative_log_likelihood(rho, np.inf) for s in stacks)
        one_rho = joint_negative_log_likelihood(rho, grids, [c[:3] for c in kept])
        assert abs(decaying - one_rho) < 1e-8 * abs(one_rho)
