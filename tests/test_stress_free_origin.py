"""The unloaded state (training.origin): a model with covariates holds its mean to zero
stress at zero strain across the tested ranges, where the data show every curve there, and
never where they do not."""

from __future__ import annotations

import numpy as np
import pytest

from training import origin as origin_module
from training.config import BNNConfig
from training.covariate_data import make_covariate_group
from training.data import CovariateColumn, TrainingData
from training.model import HeteroskedasticBNN
from training.origin import curve_intercepts, data_unloaded_at_zero
from training.pipeline import fit_training_rows

TEMPERATURES = (253.15, 353.15)
INTERIOR = 303.15


def group(offset: float = 0.0, strain_from: float | None = None) -> TrainingData:
    frame = make_covariate_group(6, 12, 5, "compound", temperatures=TEMPERATURES,
                                 rates=(0.01,))
    if strain_from is not None:
        frame = frame[frame["strain"] >= strain_from]
    columns = (CovariateColumn("temperature", "K"),)
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy() + offset,
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame),
                        frame[["temperature"]].to_numpy(dtype=float), columns)


def unloaded(data: TrainingData) -> bool:
    assert data.covariates is not None
    return data_unloaded_at_zero(data.x, data.y, data.groups, data.covariates)


def test_each_curve_is_extrapolated_to_zero_strain_from_its_nearest_points() -> None:
    strain = np.tile(np.linspace(0.05, 1.0, 8), 3)
    curve = np.repeat([2, 0, 1], 8)
    # Straight near zero strain, bending far from it (only the 4 nearest points count).
    stress = np.repeat([0.0, 1.0, -0.5], 8) + 2.0 * strain + 5.0 * np.maximum(strain - 0.6, 0)
    np.testing.assert_allclose(curve_intercepts(strain, stress, curve), [1.0, -0.5, 0.0],
                               atol=1e-9)


def test_curves_through_zero_are_detected() -> None:
    assert unloaded(group())
    # No materials named: the curves are the conditions.
    data = group()
    assert data.covariates is not None
    assert data_unloaded_at_zero(data.x, data.y, None, data.covariates)


def test_an_offset_or_a_range_short_of_zero_turns_it_off() -> None:
    data = group()
    assert not unloaded(group(offset=0.2 * float(np.std(data.y))))
    assert not unloaded(group(strain_from=0.2))


def test_the_graph_carries_the_term_only_when_asked() -> None:
    data = group()
    assert data.covariates is not None
    x = np.column_stack([data.x, data.covariates])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    bnn = HeteroskedasticBNN(BNNConfig().with_overrides(hidden_sizes=(4,)))
    assert "stress_free_origin" not in bnn.build_model(x, data.y).named_vars
    held = origin_module.Origin(np.zeros((3, 2)), 0.0, 0.01)
    assert "stress_free_origin" in bnn.build_model(x, data.y, held).named_vars


def zero_strain_spread(enabled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[float, bool]:
    """The members' SD of the mean at zero strain at an untested interior temperature, and
    whether the fit recorded the term."""
    monkeypatch.setattr(origin_module, "STRESS_FREE_ORIGIN", enabled)
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=6,
                                        map_max_iterations=400)
    trained = fit_training_rows(group(), config)
    answer = trained.posterior.at([INTERIOR]).predict(np.array([0.0]))
    return (float(answer.epistemic_sd[0]) + abs(float(answer.mean[0])),
            trained.artifact.spec.diagnostics["stress_free_origin"])


def test_a_real_fit_holds_zero_stress_between_the_tested_conditions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    free, recorded_free = zero_strain_spread(False, monkeypatch)
    held, recorded_held = zero_strain_spread(True, monkeypatch)
    assert (recorded_free, recorded_held) == (False, True)
    # Members' disagreement plus the mean's miss, 50 K from both tested temperatures.
    assert held < 0.5 * free
