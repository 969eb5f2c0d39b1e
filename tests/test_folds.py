"""Held-out folds: which rows each fit leaves out, the spread of the pooled scores over
materials, and the fold fits themselves (tiny real fits, in worker processes and not)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from tests.cli_helpers import TINY, make_group_csv, runner
from training import calibration, curve_metrics, spread
from training.cli import cli
from training.covariate_data import make_covariate_group
from training.data import CovariateColumn, TrainingData, make_mooney_rivlin_group
from training.folds import (
    condition_folds,
    held_out_plans,
    held_out_section,
    holdout_split,
    label_folds,
    plan_folds,
)
from training.model import BNNConfig
from training.pipeline import fit_data


def group_data(materials: int, points: int = 6, seed: int = 0) -> TrainingData:
    frame = make_mooney_rivlin_group(materials=materials, points=points, seed=seed)
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame))


def without_groups(data: TrainingData) -> TrainingData:
    return TrainingData(data.x, data.y, None, data.x_name, data.y_name, data.sha256, data.rows)


def test_k_folds_hold_out_every_material_once_in_folds_of_equal_size() -> None:
    data = group_data(materials=23)
    folds = plan_folds(data, folds=5, holdout=0.2, seed=3)
    assert (folds.by, folds.count, folds.unit_name) == ("group", 5, "material")
    assert np.all(folds.fold >= 0)  # every row is held out by exactly one fold
    for material in np.unique(data.groups):
        assert np.unique(folds.fold[data.groups == material]).size == 1  # whole materials
    sizes = [np.unique(data.groups[folds.fold == k]).size for k in range(5)]
    assert sorted(sizes) == [4, 4, 5, 5, 5]
    split = folds.split(2)
    assert not set(data.groups[split.train]) & set(split.held_out_groups)
    assert sorted(split.held_out_groups) == sorted(np.unique(data.groups[split.test]).tolist())
    again = plan_folds(data, folds=5, holdout=0.2, seed=3)
    assert np.array_equal(folds.fold, again.fold)  # the seed decides
    assert not np.array_equal(folds.fold, plan_folds(data, 5, 0.2, seed=4).fold)


def test_folds_are_capped_by_materials_and_fall_back_as_the_single_split_does() -> None:
    assert plan_folds(group_data(materials=3), folds=5, holdout=0.2, seed=0).count == 3
    rows = plan_folds(without_groups(group_data(materials=3)), 4, 0.2, seed=0)
    assert (rows.by, rows.count, rows.unit_name) == ("rows", 4, "row")
    assert sorted(np.bincount(rows.fold)) == [4, 4, 5, 5]
    two = group_data(materials=2)  # too few materials: rows, as holdout_split does
    assert plan_folds(two, 5, 0.2, seed=0).by == holdout_split(two, 0.2, 0).by == "rows"
    tiny = group_data(materials=1, points=6)  # too few rows: nothing held out
    assert plan_folds(tiny, 5, 0.2, seed=0).count == 0
    for folds, holdout in ((0, 0.2), (5, 0.0)):
        assert plan_folds(group_data(materials=8), folds, holdout, seed=0).count == 0


def test_one_fold_is_the_single_split_of_the_holdout_fraction() -> None:
    data = group_data(materials=20)
    folds = plan_folds(data, folds=1, holdout=0.2, seed=0)
    split = holdout_split(data, 0.2, seed=0)
    assert folds.count == 1 and folds.fraction == 0.2
    assert np.array_equal(folds.split(0).test, split.test)
    assert np.array_equal(folds.split(0).train, split.train)
    assert folds.split(0).held_out_groups == split.held_out_groups


def test_label_folds_leave_one_label_out() -> None:
    labels = np.array([293.0, 323.0, 293.0, 353.0, 323.0, 353.0])
    materials = np.array([0, 0, 1, 1, 2, 2])
    folds = label_folds(labels, materials, "condition", "material")
    assert folds.count == 3 and folds.fraction == pytest.approx(1 / 3)
    for k in range(3):
        assert np.unique(labels[folds.test_rows(k)]).size == 1
    assert folds.split(1).held_out_groups == [0, 2]
    conditions = np.column_stack([labels, [0.01, 0.1, 0.1, 0.01, 0.1, 0.01]])
    by_row = label_folds(conditions, materials, "condition", "material")
    assert by_row.count == 4  # (293, .01), (293, .1), (323, .1), (353, .01)
    for k in range(by_row.count):
        assert np.unique(conditions[by_row.test_rows(k)], axis=0).shape[0] == 1


def test_cluster_se_is_the_se_of_unit_means_or_of_rows() -> None:
    rng = np.random.default_rng(0)
    units = np.repeat(np.arange(8), 50)
    values = rng.normal(size=400) + np.repeat(rng.normal(size=8), 50)
    means, _ = spread.unit_means(values, units)
    assert spread.cluster_se(values, units) == pytest.approx(np.std(means, ddof=1) / 8**0.5)
    single = rng.normal(size=100)
    assert spread.cluster_se(single, np.arange(100)) == pytest.approx(
        np.std(single, ddof=1) / 10)
    assert spread.cluster_se(values, np.zeros(400)) is None  # one unit: no spread


def test_wilson_is_scipys_and_a_full_coverage_of_8_materials_is_wide() -> None:
    for successes, trials in ((8, 8), (37, 40), (3, 10)):
        expected = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
        assert spread.wilson(successes / trials, trials) == pytest.approx(
            (expected.low, expected.high))
    units = np.repeat(np.arange(8), 50)
    low, high = spread.fraction_interval(np.ones(400, dtype=bool), units)
    assert high == 1.0 and low == pytest.approx(0.676, abs=1e-3)
    low, _ = spread.fraction_interval(np.ones(2000, dtype=bool), np.repeat(np.arange(40), 50))
    assert low == pytest.approx(0.912, abs=1e-3)


def test_a_coverage_counts_materials_whose_rows_move_together_once() -> None:
    """36 of 40 materials inside their band everywhere, 4 outside everywhere: the
    interval is that of 40 trials, not of 2000 rows; independent misses at the same
    rate give the narrow interval of 2000 trials."""
    units = np.repeat(np.arange(40), 50)
    together = np.repeat(np.arange(40) >= 4, 50)
    by_material = stats.binomtest(36, 40).proportion_ci(0.95, method="wilson")
    assert spread.fraction_interval(together, units) == pytest.approx(
        (by_material.low, by_material.high), abs=0.01)
    rng = np.random.default_rng(1)
    independent = rng.random(2000) >= 0.1
    low, high = spread.fraction_interval(independent, units)
    assert high - low < 0.04 < by_material.high - by_material.low


def fold_result(points: calibration.Pointwise, train_rows: int) -> dict[str, Any]:
    return {"metrics": calibration.summarise(points), "pointwise": points,
            "fit": {"train_rows": train_rows, "wall_time_s": 1.0}}


def test_held_out_section_pools_rows_each_scored_by_its_own_fold() -> None:
    data = group_data(materials=10, points=5)
    folds = plan_folds(data, folds=3, holdout=0.2, seed=0)
    rng = np.random.default_rng(2)
    results = []
    for k in range(folds.count):
        rows = folds.test_rows(k).size
        points = calibration.Pointwise(rng.normal(-1 + k, 0.3, rows), rng.random(rows),
                                       rng.gamma(2.0, 0.05, rows))
        results.append(fold_result(points, data.rows - rows))
    section = held_out_section(folds, results, y_scale=None)
    rows = np.array([r["metrics"]["rows"] for r in results])
    assert section["rows"] == data.rows == rows.sum()
    assert section["nlpd"] == pytest.approx(
        np.average([r["metrics"]["nlpd"] for r in results], weights=rows))
    assert section["coverage"]["0.95"] == pytest.approx(
        np.average([r["metrics"]["coverage"]["0.95"] for r in results], weights=rows))
    assert section["spread"]["units"] == 10 and section["spread"]["folds"] == 3
    nlpd = section["spread"]["nlpd"]
    assert nlpd["low_95"] < section["nlpd"] < nlpd["high_95"]
    coverage = section["spread"]["coverage"]["0.95"]
    assert coverage["low_95"] <= section["coverage"]["0.95"] <= coverage["high_95"]
    curve = section["calibration_curve"]
    assert len(curve["low_95"]) == len(curve["nominal"]) == len(curve["high_95"])
    assert all(lo <= ob <= hi for lo, ob, hi in zip(curve["low_95"], curve["observed"],
                                                    curve["high_95"], strict=True))
    held = [m for fold in section["folds"] for m in fold["held_out"]]
    assert sorted(held) == sorted(str(m) for m in np.unique(data.groups))


def test_curve_scores_of_several_folds_pool_by_materials_and_points() -> None:
    parts = [{"materials": 3, "curves_per_material": 200, "energy_score": 1.0,
              "variogram_score": 2.0, "independent_energy_score": 1.5,
              "independent_variogram_score": 3.0,
              "conditioning": {"given_points": 3, "materials": 3, "points": 30,
                               "nlpd_conditioned": -1.0, "nlpd_unconditioned": 0.0,
                               "coverage_95_conditioned": 0.9}},
             {"materials": 1, "curves_per_material": 200, "energy_score": 5.0,
              "variogram_score": 6.0, "independent_energy_score": 5.5,
              "independent_variogram_score": 7.0,
              "conditioning": {"given_points": 3, "materials": 1, "points": 10,
                               "nlpd_conditioned": 1.0, "nlpd_unconditioned": 0.0,
                               "coverage_95_conditioned": 1.0}}]
    pooled = curve_metrics.pool(parts)
    assert pooled["materials"] == 4 and pooled["energy_score"] == pytest.approx(2.0)
    assert pooled["variogram_score"] == pytest.approx(3.0)
    conditioning = pooled["conditioning"]
    assert conditioning["points"] == 40 and conditioning["materials"] == 4
    assert conditioning["nlpd_conditioned"] == pytest.approx(-0.5)
    assert conditioning["gain_nats_per_point"] == pytest.approx(0.5)
    assert conditioning["coverage_95_conditioned"] == pytest.approx(0.925)


TINY_CONFIG = BNNConfig().with_overrides(hidden_sizes=(3,), ensemble_members=3,
                                         map_max_iterations=300)


def assert_close(got: Any, expected: Any, path: str = "held_out") -> None:
    """Equal structure and labels, numbers equal to 1e-6 relative: a worker process may
    sum in another order than this one (threaded BLAS), nothing more."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), path
        for key in expected:
            assert_close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), path
    else:
        assert got == expected, path


def test_fold_fits_in_worker_processes_score_as_in_this_one() -> None:
    """Three folds of 9 materials, fitted in two worker processes beside the served fit,
    store exactly what the same fits one after the other in this process store."""
    data = group_data(materials=9, points=8, seed=5)
    parallel = fit_data(data, TINY_CONFIG, folds=3).artifact.manifest["metrics"]
    serial = fit_data(data, TINY_CONFIG, folds=3, parallel=False).artifact.manifest["metrics"]
    def scores(held: dict[str, Any]) -> dict[str, Any]:  # without the fit times
        return {**held, "folds": [{k: v for k, v in fold.items() if k != "wall_time_s"}
                                  for fold in held["folds"]]}

    assert_close(scores(parallel["held_out"]), scores(serial["held_out"]))
    held = parallel["held_out"]
    assert held["rows"] == data.rows and held["spread"]["units"] == 9
    assert [fold["train_rows"] for fold in held["folds"]] == [48, 48, 48]
    assert held["curves"]["materials"] == 9
    assert held["curves"]["conditioning"]["points"] == 9 * 5  # 3 of 8 points given
    assert parallel["held_out_fit"]["folds"] == 3


def test_cli_folds_zero_scores_nothing_and_one_is_a_single_split(
        tmp_path: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    csv = make_group_csv(tmp_path / "group.csv", 5, 10, 1)
    base = ["fit", str(csv), "--name", "rubber", "--database-url", database_url, *TINY]
    result = runner.invoke(cli, [*base, "--folds", "0"])
    assert result.exit_code == 0, result.output
    assert "held-out" not in result.output
    result = runner.invoke(cli, [*base, "--folds", "1", "--holdout", "0.4"])
    assert result.exit_code == 0, result.output
    assert "held-out (2 materials in 1 fold)" in result.output


def covariate_data(design: str = "compound", temperatures: tuple[float, ...] = (
        253.15, 273.15, 296.15, 323.15, 353.15), materials: int = 6,
        points: int = 8) -> TrainingData:
    frame = make_covariate_group(materials=materials, points=points, seed=2, design=design,
                                 temperatures=temperatures)
    columns = (CovariateColumn("temperature", "K"), CovariateColumn("filler"))
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame),
                        frame[["temperature", "filler"]].to_numpy(), columns)


def test_condition_folds_leave_out_interior_conditions_scored_by_material() -> None:
    """Temperature varies within a compound, filler does not (a material property, held
    out with its material): the folds leave out the three interior temperatures."""
    data = covariate_data()
    folds = condition_folds(data, count=5, seed=0)
    assert folds is not None and (folds.by, folds.count, folds.unit_name) == (
        "condition", 3, "material")
    left_out = sorted(np.unique(data.covariates[folds.fold >= 0, 0]))
    assert left_out == [273.15, 296.15, 323.15]  # never 253.15 or 353.15: no extrapolation
    for k in range(3):
        temperatures = np.unique(data.covariates[folds.test_rows(k), 0])
        assert temperatures.size == 1
        assert folds.names[k] == f"temperature={temperatures[0]:g} K"
        assert np.array_equal(np.unique(folds.unit[folds.test_rows(k)]), np.arange(6))
    one = condition_folds(data, count=1, seed=0)  # fewer fits: one condition each
    assert one is not None and one.count == 1 and one.names[0] in folds.names
    assert condition_folds(data, count=0, seed=0) is None
    assert condition_folds(covariate_data(temperatures=(253.15, 353.15)), 5, 0) is None
    assert condition_folds(covariate_data(design="specimen"), 5, 0) is None
    assert condition_folds(group_data(materials=6), 5, 0) is None


@pytest.mark.parametrize(("data", "folds", "expected"), [
    (group_data(40, 50), None, (5, 0)),  # the demo group: 5 x 1,600 training rows
    (group_data(100, 50), None, (2, 0)),  # 5,000 rows: two folds
    (group_data(200, 50), None, (1, 0)),  # 10,000 rows: the single split
    (group_data(100, 50), 5, (5, 0)),
    (covariate_data(), None, (5, 3)),  # small: every fit the budget allows
    (covariate_data(materials=40, points=25), None, (1, 1)),  # 5,000 rows: half each
    (covariate_data(materials=40, points=25), 4, (4, 3)),
    (covariate_data(), 1, (1, 0)),
    (covariate_data(), 0, (0, 0)),
])
def test_held_out_plans_fit_a_budget_of_training_rows_unless_folds_are_given(
        data: TrainingData, folds: int | None, expected: tuple[int, int]) -> None:
    plans = held_out_plans(data, folds, holdout=0.2, seed=0)
    conditions = plans.get("held_out_conditions")
    assert (plans["held_out"].count, conditions.count if conditions else 0) == expected
    assert held_out_plans(data, folds, holdout=0.0, seed=0)["held_out"].count == 0
    assert "held_out_conditions" not in held_out_plans(data, folds, holdout=0.0, seed=0)


def test_a_budget_of_fewer_fits_than_folds_fits_some_folds_of_five() -> None:
    """5,000 rows afford two fold fits: two of five folds, each training on four fifths
    of the materials (as the served fit nearly does), not two halves."""
    data = group_data(100, 50)
    plan = held_out_plans(data, None, holdout=0.2, seed=0)["held_out"]
    assert plan.count == 2 and plan.fraction == pytest.approx(0.2)
    for k in range(plan.count):
        split = plan.split(k)
        assert len(split.held_out_groups) == 20
        assert split.train.size == data.rows * 4 // 5
    assert np.count_nonzero(plan.fold == -1) == data.rows * 3 // 5


def test_a_covariate_models_folds_spread_each_conditions_materials() -> None:
    """Three specimens at each of four temperatures in five folds: no fold holds out two
    specimens of one temperature, so no fold's fit loses a temperature. Without the
    covariate the same materials are dealt as a plain random permutation."""
    specimens = np.repeat([f"s{i:02d}" for i in range(12)], 5)
    temperature = np.repeat([253.0, 273.0, 296.0, 333.0], 15)[:, None]
    data = TrainingData(np.tile(np.linspace(0, 1, 5), 12), np.zeros(60), specimens, "x",
                        "y", "-", 60, temperature, (CovariateColumn("temperature", "K"),))
    plan = plan_folds(data, 5, holdout=0.2, seed=0)
    for k in range(plan.count):
        held = plan.fold == k
        assert np.unique(temperature[held, 0]).size == np.unique(specimens[held]).size
    plain = TrainingData(data.x, data.y, specimens, "x", "y", "-", 60)
    order = np.random.default_rng(0).permutation(np.unique(specimens))
    expected = {g: i % 5 for i, g in enumerate(order)}
    assert plan_folds(plain, 5, holdout=0.2, seed=0).fold.tolist() == [
        expected[g] for g in specimens]


def test_the_budget_counts_dense_curves_as_the_network_fits_them() -> None:
    """20 materials x 400 points: 8,000 rows, of which the network fits 200 per curve
    (training.thinning), so two fold fits fit the budget, not one."""
    from training.thinning import MAX_NETWORK_POINTS_PER_CURVE

    data = group_data(20, 2 * MAX_NETWORK_POINTS_PER_CURVE)
    assert held_out_plans(data, None, holdout=0.2, seed=0)["held_out"].count == 2


def test_a_covariate_fit_stores_scores_at_untested_conditions() -> None:
    data = covariate_data()
    metrics = fit_data(data, TINY_CONFIG, folds=3, parallel=False).artifact.manifest["metrics"]
    assert metrics["held_out"]["rows"] == data.rows  # the folds of materials, as ever
    conditions = metrics["held_out_conditions"]
    assert conditions["rows"] == 6 * 3 * 8  # every curve at the 3 interior temperatures
    assert conditions["spread"]["units"] == 6 and conditions["spread"]["folds"] == 3
    named = [held for fold in conditions["folds"] for held in fold["held_out"]]
    assert sorted(named) == [f"temperature={t} K" for t in ("273.15", "296.15", "323.15")]
    for fold in conditions["folds"]:
        assert fold["train_rows"] == data.rows - fold["rows"]
    assert np.isfinite(conditions["nlpd"]) and 0 <= conditions["coverage"]["0.95"] <= 1
