"""Covariates (inputs beside the strain): the manifest's sections, the artifact's shapes,
the posterior's views at a condition, CSV loading and a tiny real fit."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from service.artifact import Artifact, ArtifactError
from service.inference import posterior as posterior_module
from service.inference.conditions import distinct
from service.inference.posterior import Posterior, Prediction
from service.manifest import ManifestError, parse_manifest
from tests.service_process import random_artifact
from training.data import CovariateColumn, load_csv


def covariate_artifact(covariates: int = 2, seed: int = 0, draws: int = 30) -> Artifact:
    return random_artifact(draws=draws, hidden_sizes=(8,), seed=seed, covariates=covariates)


# --- the manifest and the artifact -----------------------------------------------------

def test_manifest_lists_covariates_and_tested_conditions() -> None:
    spec = covariate_artifact().spec
    assert [c.name for c in spec.covariates] == ["temperature", "rate"]
    assert spec.covariates[0].unit == "K" and spec.input_dim == 3
    assert len(spec.tested_conditions) == 9
    plain = random_artifact().spec
    assert plain.covariates is None and plain.tested_conditions is None
    assert plain.input_dim == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("tested_conditions"), "both or neither"),
    (lambda m: m.pop("covariates"), "both or neither"),
    (lambda m: m["tested_conditions"].append([300.0]), "tested_conditions[9] has 1 values"),
    (lambda m: m["covariates"][1].update(name="temperature"), "must be distinct"),
    (lambda m: m["covariates"][1].update(name="strain"), "must be distinct"),
    (lambda m: m["covariates"][0].update(min=400.0), "is above max"),
    (lambda m: m["covariates"][0].update(scale=0.0), "covariates[0].scale"),
    (lambda m: m["covariates"][0].update(mean="300"), "covariates[0].mean"),
    (lambda m: m["tested_conditions"][0].__setitem__(0, "300"), "tested_conditions[0][0]"),
    (lambda m: m["covariates"][0].update(name="bad name"), "covariates[0].name"),
    (lambda m: m.update(covariates=[]), "covariates"),
])
def test_a_malformed_covariate_section_is_refused_naming_it(change, message) -> None:
    manifest = copy.deepcopy(covariate_artifact().manifest)
    change(manifest)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest)
    assert message in str(caught.value)


def test_the_first_layer_takes_the_strain_and_every_covariate() -> None:
    artifact = covariate_artifact()
    assert artifact.arrays["trunk0.W"].shape == (30, 3, 8)
    Artifact.from_bytes(artifact.to_bytes())  # round trip, validated
    # Arrays of a strain-only model under a manifest with covariates: refused.
    wrong = Artifact(manifest=covariate_artifact().manifest, arrays=random_artifact(
        draws=30, hidden_sizes=(8,)).arrays)
    with pytest.raises(ArtifactError, match=r"trunk0.W.*\(30, 3, 8\)"):
        wrong.validate()


# --- the posterior at a condition ------------------------------------------------------

def assert_kernel_agrees(fast: Prediction, reference: Prediction) -> None:
    """The fast kernel's summaries within its contract of the float64 reference: 1e-3 of
    the total SD."""
    for field in ("mean", "aleatoric_sd", "epistemic_sd"):
        error = np.abs(getattr(fast, field) - getattr(reference, field)) / reference.total_sd
        assert error.max() < 1e-3, field


def test_a_view_at_a_condition_is_the_network_with_those_covariates() -> None:
    posterior = Posterior(covariate_artifact())
    strain = np.linspace(-0.6, 0.6, 41)
    condition = [310.0, 0.02]
    view = posterior.at(condition)
    assert view.condition == (310.0, 0.02) and view.conditions is None
    given = np.tile(condition, (strain.size, 1))
    mu, sigma, tangent = posterior.network_outputs(strain, with_tangent=True,
                                                   covariates=given)
    mu_v, sigma_v, tangent_v = view.network_outputs(strain, with_tangent=True)
    np.testing.assert_allclose(mu_v, mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sigma_v, sigma, rtol=1e-12)
    np.testing.assert_allclose(tangent_v, tangent, rtol=1e-10, atol=1e-12)
    # The fast kernel at the view agrees with the float64 reference with covariates.
    assert_kernel_agrees(posterior.predict(strain, tangent=True, covariates=given),
                         posterior.predict_reference(strain, tangent=True, covariates=given))
    # The tangent is d/d strain alone: the covariates' columns do not enter it.
    step = 1e-6
    above = posterior.network_outputs(strain + step, covariates=given)[0]
    below = posterior.network_outputs(strain - step, covariates=given)[0]
    np.testing.assert_allclose(tangent, (above - below) / (2 * step), rtol=1e-5, atol=1e-6)


def test_per_strain_covariates_answer_each_strain_at_its_own_condition() -> None:
    posterior = Posterior(covariate_artifact())
    strain = np.array([-0.3, 0.0, 0.2, 0.4, 0.1])
    conditions = np.array([[273.15, 0.01], [353.15, 0.1], [273.15, 0.01], [300.0, 0.05],
                           [353.15, 0.1]])
    together = posterior.predict(strain, covariates=conditions)
    for i in range(strain.size):
        # Exactly as when asked alone: an answer does not depend on the other conditions.
        alone = posterior.predict(strain[i:i + 1], covariates=conditions[i:i + 1])
        assert together.mean[i] == alone.mean[0]
        assert together.epistemic_sd[i] == alone.epistemic_sd[0]
        # And as the strain-only view at that condition answers, to float32 rounding.
        view = posterior.at(conditions[i]).predict(strain[i:i + 1])
        for field in ("mean", "aleatoric_sd", "epistemic_sd"):
            assert getattr(together, field)[i] == pytest.approx(
                getattr(view, field)[0], rel=1e-5, abs=1e-6 * view.total_sd[0])
    unique, inverse = distinct(conditions)
    assert unique.shape == (3, 2) and np.all(unique[inverse] == conditions)


def test_views_are_cached_and_the_cache_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(posterior_module, "VIEW_CACHE_SIZE", 3)
    posterior = Posterior(covariate_artifact())
    first = posterior.at([300.0, 0.01])
    assert posterior.at(np.array([300.0, 0.01])) is first
    for temperature in (301.0, 302.0, 303.0):
        posterior.at([temperature, 0.01])
    assert len(posterior._views) == 3
    assert posterior.at([300.0, 0.01]) is not first  # evicted, built again


def test_covariates_must_fit_the_model() -> None:
    posterior = Posterior(covariate_artifact())
    strain = np.zeros(4)
    with pytest.raises(ValueError, match="needs covariates: temperature, rate"):
        posterior.predict(strain)
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        posterior.predict(strain, covariates=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="2 values"):
        posterior.at([300.0])
    plain = Posterior(random_artifact())
    with pytest.raises(ValueError, match="takes no covariates"):
        plain.predict(strain, covariates=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="takes no covariates"):
        plain.at([1.0])


def test_outside_the_domain_and_the_distance_to_the_nearest_tested_condition() -> None:
    posterior = Posterior(covariate_artifact(covariates=1))
    conditions = posterior.conditions
    assert conditions is not None
    strain = np.zeros(4)
    temperature = np.array([[296.15], [284.65], [353.15], [400.0]])
    np.testing.assert_array_equal(posterior.outside_domain(strain, temperature),
                                  [False, False, False, True])
    distance = conditions.distance(temperature)
    scale = conditions.scale[0]
    np.testing.assert_allclose(distance, [0.0, 11.5 / scale, 0.0, 46.85 / scale])
    assert conditions.central()[0] == 296.15


# --- training data ---------------------------------------------------------------------

def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "group.csv"
    path.write_text("strain,stress,material,temperature,rate\n" + "\n".join(rows) + "\n")
    return path


GOOD_ROWS = [f"{s},{s * 2},{m},{t},0.01" for m, t in ((0, 273.15), (1, 296.15))
             for s in (-0.2, 0.0, 0.2)]
COLUMNS = [CovariateColumn("temperature", "K"), CovariateColumn("rate", "1/s")]


def test_covariate_columns_load_in_order(tmp_path: Path) -> None:
    data = load_csv(_csv(tmp_path, GOOD_ROWS), covariates=COLUMNS)
    assert data.covariates is not None and data.covariates.shape == (6, 2)
    assert data.covariates[3, 0] == 296.15 and data.covariate_columns == tuple(COLUMNS)
    assert load_csv(_csv(tmp_path, GOOD_ROWS)).covariates is None


@pytest.mark.parametrize(("cell", "message"), [
    ("", "line 4 (data row 3): the value is missing"),
    ("warm", "line 4 (data row 3): 'warm' is not a number"),
    ("inf", "line 4 (data row 3): 'inf' is not a finite number"),
    ("nan", "line 4 (data row 3): 'nan' is not a finite number"),
])
def test_a_bad_covariate_value_names_the_column_and_the_row(tmp_path: Path, cell: str,
                                                             message: str) -> None:
    rows = list(GOOD_ROWS)
    rows[2] = f"0.2,0.4,0,{cell},0.01"
    with pytest.raises(ValueError) as caught:
        load_csv(_csv(tmp_path, rows), covariates=COLUMNS)
    assert "covariate column 'temperature'" in str(caught.value)
    assert message in str(caught.value)


def test_covariate_options_are_checked(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD_ROWS)
    with pytest.raises(ValueError, match="covariate column 'pressure' not in"):
        load_csv(path, covariates=[CovariateColumn("pressure")])
    with pytest.raises(ValueError, match="already the strain, stress or group"):
        load_csv(path, covariates=[CovariateColumn("material")])
    with pytest.raises(ValueError, match="twice"):
        load_csv(path, covariates=[CovariateColumn("rate"), CovariateColumn("rate")])
    assert CovariateColumn.parse("temperature:K") == CovariateColumn("temperature", "K")
    assert CovariateColumn.parse("rate") == CovariateColumn("rate", "1")
    with pytest.raises(ValueError, match="--covariate"):
        CovariateColumn.parse("2hot:K")


@pytest.mark.parametrize(("hidden", "link"), [((8,), "exp"), ((6, 5), "softplus")])
def test_the_summary_kernel_takes_a_condition_per_strain(hidden: tuple[int, ...],
                                                         link: str) -> None:
    """Every strain at its own condition, in the compiled kernel (both its serial and its
    parallel launches): the float64 reference's answer to float32 rounding, and a
    strain's answer the same bits whatever else the request asks."""
    posterior = Posterior(random_artifact(draws=200, hidden_sizes=hidden, noise_link=link,
                                          covariates=2, seed=4))
    assert posterior.kernel is None  # no strain-only kernel that would ignore covariates
    assert posterior.condition_kernel is not None
    rng = np.random.default_rng(5)
    strain = rng.uniform(-0.5, 0.5, 700)
    given = np.column_stack([rng.uniform(250, 360, 700), rng.uniform(0.0, 0.2, 700)])
    fast = posterior.predict(strain, tangent=True, covariates=given)
    reference = posterior.predict_reference(strain, tangent=True, covariates=given)
    for field in ("mean", "aleatoric_sd", "epistemic_sd", "tangent"):
        scale = reference.total_sd if field != "tangent" else np.abs(reference.tangent) + 1
        error = np.abs(getattr(fast, field) - getattr(reference, field)) / scale
        assert error.max() < 1e-3, field
    few = posterior.predict(strain[:5], tangent=True, covariates=given[:5])  # serial
    view = posterior.at(given[3]).predict(strain[3:4], tangent=True)
    for field in ("mean", "aleatoric_sd", "epistemic_sd", "tangent"):
        assert np.array_equal(getattr(few, field), getattr(fast, field)[:5]), field
        assert getattr(view, field)[0] == getattr(fast, field)[3], field
