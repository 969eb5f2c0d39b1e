"""A tiny real fit with a covariate, end to end: make-data's compound design, `fit_csv`
with `--covariate temperature:K`, the registry, and predict over HTTP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.registry.writes import register
from training.covariate_data import make_covariate_group
from training.data import CovariateColumn
from training.model import BNNConfig
from training.pipeline import fit_csv

TEMPERATURES = (273.15, 296.15, 323.15)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, object]:
    folder = tmp_path_factory.mktemp("covariate-fit")
    frame = make_covariate_group(materials=8, points=25, seed=5, temperatures=TEMPERATURES)
    path = folder / "group.csv"
    frame.to_csv(path, index=False)
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=4, seed=2)
    trained = fit_csv(Path(path), config, holdout=0.0,
                      covariates=[CovariateColumn("temperature", "K")])
    return trained.artifact.to_bytes(), frame


def test_the_fit_records_its_covariate_and_tested_conditions(fitted) -> None:
    data, _ = fitted
    spec = Artifact.from_bytes(data).spec
    assert [(c.name, c.unit) for c in spec.covariates] == [("temperature", "K")]
    assert spec.covariates[0].min == 273.15 and spec.covariates[0].max == 323.15
    assert spec.tested_conditions == [[t] for t in TEMPERATURES]
    assert spec.curve_model is not None
    fit = spec.curve_model.fit["condition_correlation"]
    assert fit["identified"] and fit["materials_at_several_conditions"] == 8
    # The generator shares each compound's stiffness across its conditions.
    assert 0.3 < spec.curve_model.condition_correlation <= 1.0
    # The law held-out materials chose is the one stored: a decaying correlation with one
    # l per covariate, or one rho per component, or neither.
    assert fit["law"] in ("one rho", "decaying", "per component")
    lengths = spec.curve_model.condition_length_scales
    assert (fit["law"] == "decaying") == (lengths is not None)
    assert lengths is None or len(lengths) == 1
    assert (fit["law"] == "per component") == (
        spec.curve_model.condition_correlations is not None)


def test_the_fit_measures_its_trend_and_answers_beyond_the_range_with_it(fitted) -> None:
    from service.inference.posterior import Posterior
    from service.manifest import EXTRAPOLATION_SCHEMA_VERSION

    artifact = Artifact.from_bytes(fitted[0])
    assert artifact.spec.schema_version == EXTRAPOLATION_SCHEMA_VERSION
    # The generator's stiffness follows the absolute temperature (with softening): the
    # level moves across 273-323 K, by less than a factor e.
    change = artifact.spec.covariates[0].log_level_change
    assert change is not None and 0.01 < change < 1.0
    posterior = Posterior(artifact)
    strain = np.linspace(-0.3, 0.3, 13)
    beyond = posterior.at([348.15]).predict(strain)  # half the range above it
    # The level's relative SD there is change / 2: the epistemic SD at the largest
    # stresses holds at least most of it.
    large = np.argmax(np.abs(beyond.mean))
    assert beyond.epistemic_sd[large] > 0.8 * (change / 2) * abs(beyond.mean[large])
    # Inside the range there is no such term: the network's draws alone.
    mu, _, _ = posterior._network_outputs(strain, covariates=np.full((13, 1), 323.15))
    np.testing.assert_allclose(posterior.at([323.15]).predict_reference(strain).epistemic_sd,
                               mu.std(axis=0), rtol=1e-12)


def test_the_served_fit_answers_at_conditions_over_http(fitted, session: Session,
                                                         client: TestClient) -> None:
    data, frame = fitted
    register(session, "rubber", data, actor="test")
    session.commit()

    def predict(body: dict) -> dict:
        response = client.post("/v1/models/rubber/predict", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    strain = sorted(set(frame["strain"].round(12)))[1::3]
    for temperature in TEMPERATURES:
        answer = predict({"strain": strain, "covariates": {"temperature": temperature}})
        at = frame[np.isclose(frame["temperature"], temperature)]
        means = at.groupby(at["strain"].round(12))["stress"].mean().loc[strain].to_numpy()
        # The served mean follows the data at each tested temperature.
        assert np.all(np.abs(np.array(answer["mean"]) - means)
                      <= 3 * np.array(answer["total_sd"]))
        assert answer["condition_distance"] == [0.0] * len(strain)
    # Stiffer when cold: the compression stress at -0.4 is larger in magnitude at 273 K.
    cold = predict({"strain": [-0.4], "covariates": {"temperature": 273.15}})["mean"][0]
    hot = predict({"strain": [-0.4], "covariates": {"temperature": 323.15}})["mean"][0]
    assert cold < hot < 0
    between = predict({"strain": [0.2], "covariates": {"temperature": 310.0}})
    beyond = predict({"strain": [0.2], "covariates": {"temperature": 400.0}})
    assert 0 < between["condition_distance"][0] < beyond["condition_distance"][0]
    assert between["outside_training_domain"] == [False]
    assert beyond["outside_training_domain"] == [True]
    # Three points of one material at 273 K inform its curve at 323 K.
    material = frame[(frame["material"] == 0) & np.isclose(frame["temperature"], 273.15)]
    given = material.iloc[[4, 12, 20]]
    body = {"strain": strain, "covariates": {"temperature": 323.15}, "draws": 20, "seed": 4,
            "observed": {"strain": given["strain"].tolist(), "stress": given["stress"].tolist(),
                         "covariates": {"temperature": 273.15}}}
    conditioned = predict(body)
    assert predict(body)["samples"] == conditioned["samples"]
    population = predict({"strain": strain, "covariates": {"temperature": 323.15}})
    assert np.mean(conditioned["between_material_sd"]) < np.mean(
        population["between_material_sd"])
