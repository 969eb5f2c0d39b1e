"""Dense curves are thinned for the network's fit (training.thinning): each curve keeps
at most the limit of its points, evenly over its strains with both ends; data at or under
the limit fit exactly as before."""

from __future__ import annotations

import numpy as np

from training.config import BNNConfig
from training.data import TrainingData, make_law_group
from training.pipeline import fit_data
from training.thinning import MAX_NETWORK_POINTS_PER_CURVE, network_rows


def test_a_curve_over_the_limit_keeps_the_limit_evenly_with_both_ends() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.permutation(np.linspace(-0.5, 0.5, 1001)), np.linspace(0, 1, 5)])
    groups = np.array(["a"] * 1001 + ["b"] * 5)
    rows = network_rows(x, groups, None, max_points=11)
    assert rows is not None and np.all(np.diff(rows) > 0)
    kept_a = np.sort(x[rows[groups[rows] == "a"]])
    np.testing.assert_allclose(kept_a, np.linspace(-0.5, 0.5, 11), atol=1e-12)
    assert np.sum(groups[rows] == "b") == 5  # under the limit: every point


def test_curves_are_a_material_at_one_condition() -> None:
    x = np.tile(np.linspace(0, 1, 30), 4)
    groups = np.repeat([0, 0, 1, 1], 30)
    temperature = np.repeat([273.0, 323.0, 273.0, 323.0], 30)[:, None]
    rows = network_rows(x, groups, temperature, max_points=10)
    assert rows is not None and rows.size == 40
    assert network_rows(x, groups, None, max_points=10).size == 20  # two curves of 60
    assert network_rows(x, groups, temperature, max_points=30) is None
    assert network_rows(x, None, None, max_points=10) is None  # no curves named


def test_a_dense_fit_thins_the_network_rows_and_keeps_the_rest_whole() -> None:
    points = MAX_NETWORK_POINTS_PER_CURVE + 50
    frame = make_law_group("gent", materials=4, points=points, seed=5)
    data = TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame))
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=2,
                                        map_max_iterations=100)
    spec = fit_data(data, config, holdout=0, parallel=False).artifact.spec
    assert spec.diagnostics["network_rows"] == 4 * MAX_NETWORK_POINTS_PER_CURVE
    assert spec.data["rows"] == 4 * points
    assert (spec.training_domain.min, spec.training_domain.max) == (
        frame["strain"].min(), frame["strain"].max())
    assert spec.curve_model is not None
    short = make_law_group("gent", materials=4, points=50, seed=5)
    data = TrainingData(short["strain"].to_numpy(), short["stress"].to_numpy(),
                        short["material"].to_numpy(), "strain", "stress", "-", len(short))
    assert "network_rows" not in fit_data(data, config, holdout=0,
                                          parallel=False).artifact.spec.diagnostics
