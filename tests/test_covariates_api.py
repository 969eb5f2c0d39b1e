"""Predict with covariates over HTTP: every 422, answers at a condition, per-strain
conditions, the domain flags and condition distance, samples, and observed points at one
condition informing the curve at another."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.inference.posterior import Posterior
from service.registry.writes import register
from tests.service_process import random_artifact, smooth_curve_section, with_level_changes

AT = {"temperature": 300.0, "rate": 0.01}
STRAIN = [-0.3, 0.0, 0.25, 0.4]


def hot_artifact(rho: float = 0.7) -> Artifact:
    """Two covariates (temperature 273-353 K, rate 0.001-0.1 /s) and a curve model."""
    artifact = random_artifact(draws=20, hidden_sizes=(8,), covariates=2, seed=3)
    section = smooth_curve_section(basis=8)
    section["condition_correlation"] = rho
    artifact.manifest["curve_model"] = section
    return artifact


@pytest.fixture
def hot(session: Session) -> Posterior:
    """'hot' v1 (covariates, rho 0.7), 'cold' v1 (covariates, rho 0), 'plain' v1 (no
    covariates); all with a curve model."""
    artifact = hot_artifact()
    register(session, "hot", artifact.to_bytes(), actor="test")
    register(session, "cold", hot_artifact(rho=0.0).to_bytes(), actor="test")
    plain = random_artifact(draws=20, seed=2)
    plain.manifest["curve_model"] = smooth_curve_section(basis=8)
    register(session, "plain", plain.to_bytes(), actor="test")
    session.commit()
    return Posterior(artifact)


def predict(client: TestClient, body: dict, name: str = "hot"):
    return client.post(f"/v1/models/{name}/predict", json=body)


def refused(client: TestClient, body: dict, name: str = "hot") -> list[str]:
    response = predict(client, body, name)
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


OBSERVED = {"strain": [-0.2, 0.1, 0.3], "stress": [-0.8, -0.1, 0.2]}


@pytest.mark.parametrize(("body", "field"), [
    ({"strain": [0.1]}, "covariates"),
    ({"strain": [0.1], "covariates": {"temperature": 300.0}}, "covariates.rate"),
    ({"strain": [0.1], "covariates": {**AT, "pressure": 1.0}}, "covariates.pressure"),
    ({"strain": [0.1, 0.2], "covariates": {"temperature": [300.0], "rate": 0.01}},
     "covariates.temperature"),
    ({"strain": [0.1], "covariates": {"temperature": "300", "rate": 0.01}},
     "covariates.temperature"),
    ({"strain": [0.1, 0.2], "covariates": {"temperature": [300.0, None], "rate": 0.01}},
     "covariates.temperature"),
    ({"strain": [0.1], "covariates": {"temperature": [], "rate": 0.01}},
     "covariates.temperature"),
    ({"strain": [0.1], "covariates": {}}, "covariates"),
    ({"strain": [0.1], "covariates": {"temperature": 400.0, "rate": 0.01},
      "extrapolation": "reject"}, "covariates.temperature[0]"),
    ({"strain": [0.1], "covariates": AT, "observed": {
        **OBSERVED, "covariates": {"temperature": [300.0], "rate": 0.01}}},
     "observed.covariates.temperature"),
    ({"strain": [0.1], "covariates": AT, "observed": {
        **OBSERVED, "covariates": {"temperature": 300.0}}}, "observed.covariates.rate"),
    ({"strain": [0.1, 0.2], "covariates": {"temperature": [300.0, 320.0], "rate": 0.01},
      "observed": OBSERVED}, "observed.covariates"),
    ({"strain": [0.1], "covariates": AT, "extrapolation": "reject", "observed": {
        **OBSERVED, "covariates": {"temperature": 200.0, "rate": 0.01}}},
     "observed.covariates.temperature[0]"),
])
def test_each_bad_covariate_is_a_422_naming_its_field(client: TestClient, hot, body,
                                                      field: str) -> None:
    assert field in refused(client, body)


def test_non_finite_covariates_are_refused(client: TestClient, hot) -> None:
    for raw in (b'{"strain": [0.1], "covariates": {"temperature": Infinity, "rate": 0.01}}',
                b'{"strain": [0.1], "covariates": {"temperature": 1e999, "rate": 0.01}}',
                b'{"strain": [0.1], "covariates": {"temperature": [300, NaN], "rate": 0.01}}'):
        response = client.post("/v1/models/hot/predict", content=raw,
                               headers={"content-type": "application/json"})
        assert response.status_code == 422, raw
        assert response.json()["error"]["details"][0]["field"] == "covariates.temperature"


def test_a_model_without_covariates_refuses_them(client: TestClient, hot) -> None:
    assert refused(client, {"strain": [0.1], "covariates": AT}, "plain") == ["covariates"]
    body = {"strain": [0.1], "observed": {**OBSERVED, "covariates": AT}}
    assert refused(client, body, "plain") == ["observed.covariates"]


def test_a_number_applies_to_every_strain_and_answers_as_the_view(
    client: TestClient, hot: Posterior
) -> None:
    body = predict(client, {"strain": STRAIN, "covariates": AT, "tangent": True}).json()
    listed = predict(client, {"strain": STRAIN, "tangent": True, "covariates": {
        "temperature": [300.0] * 4, "rate": [0.01] * 4}}).json()
    assert listed == body
    view = hot.at([300.0, 0.01]).predict(np.array(STRAIN), tangent=True)
    np.testing.assert_allclose(body["mean"], view.mean, rtol=1e-12)
    np.testing.assert_allclose(body["tangent"], view.tangent, rtol=1e-12)
    assert "unstable_strain_ranges" in body


def test_per_strain_conditions_answer_each_strain_at_its_own(client: TestClient,
                                                             hot) -> None:
    temperatures = [273.15, 300.0, 353.15, 300.0]
    body = predict(client, {"strain": STRAIN, "quantiles": [0.1, 0.9], "covariates": {
        "temperature": temperatures, "rate": 0.01}}).json()
    for i, temperature in enumerate(temperatures):
        alone = predict(client, {"strain": [STRAIN[i]], "quantiles": [0.1, 0.9],
                                 "covariates": {"temperature": temperature, "rate": 0.01}}
                        ).json()
        for field in ("mean", "epistemic_sd", "aleatoric_sd", "between_material_sd",
                      "condition_distance"):
            assert body[field][i] == pytest.approx(alone[field][0], rel=1e-12)
        assert [q[i] for q in body["quantiles"]] == pytest.approx(
            [q[0] for q in alone["quantiles"]], rel=1e-9)


def test_flags_and_distance_tell_tested_conditions_from_extrapolation(
    client: TestClient, hot
) -> None:
    body = predict(client, {"strain": [0.0, 0.0, 0.0, 0.9], "covariates": {
        "temperature": [296.15, 284.65, 400.0, 296.15], "rate": 0.01}}).json()
    assert body["outside_training_domain"] == [False, False, True, True]
    scale = float(np.std([273.15, 296.15, 353.15]))
    np.testing.assert_allclose(body["condition_distance"],
                               [0.0, 11.5 / scale, 46.85 / scale, 0.0], rtol=1e-12)
    allowed = predict(client, {"strain": [0.0], "extrapolation": "allow", "covariates": {
        "temperature": 400.0, "rate": 0.01}}).json()
    assert "outside_training_domain" not in allowed and "condition_distance" in allowed


def test_the_same_seed_gives_the_same_curves_at_a_condition(client: TestClient,
                                                             hot) -> None:
    for covariates in (AT, {"temperature": [273.15, 300.0, 320.0, 353.15], "rate": 0.01}):
        body = {"strain": STRAIN, "draws": 50, "seed": 9, "covariates": covariates}
        first = predict(client, body).json()
        assert predict(client, body).json()["samples"] == first["samples"]
        assert np.array(first["samples"]).shape == (4, 50)
        other = predict(client, {**body, "seed": 10}).json()
        assert other["samples"] != first["samples"]


def test_observed_points_at_one_condition_inform_the_curve_at_another(
    client: TestClient, hot
) -> None:
    target = {"temperature": 353.15, "rate": 0.01}
    observed = {**OBSERVED, "covariates": {"temperature": 273.15, "rate": 0.01}}
    population = predict(client, {"strain": STRAIN, "covariates": target}).json()
    for name in ("hot", "cold"):
        given = predict(client, {"strain": STRAIN, "covariates": target,
                                 "observed": observed, "quantiles": [0.5], "draws": 5,
                                 "seed": 1}, name)
        assert given.status_code == 200, given.text
        answer = given.json()
        if name == "cold":
            # rho = 0: points at another condition say nothing about this one (the plain
            # answer comes from the float32 kernel, hence the tolerance).
            reference = predict(client, {"strain": STRAIN, "covariates": target},
                                name).json()
            np.testing.assert_allclose(answer["mean"], reference["mean"], rtol=1e-6)
            np.testing.assert_allclose(answer["aleatoric_sd"], reference["aleatoric_sd"],
                                       rtol=1e-5)
        else:
            assert np.max(np.abs(np.subtract(answer["mean"], population["mean"]))) > 1e-3
            assert np.all(np.array(answer["between_material_sd"])
                          < np.array(population["between_material_sd"]))
        np.testing.assert_allclose(
            np.array(answer["between_material_sd"]) ** 2
            + np.array(answer["within_material_sd"]) ** 2,
            np.array(answer["aleatoric_sd"]) ** 2, rtol=1e-12)


def test_a_decaying_correlation_is_served_near_and_forgets_far(
    client: TestClient, session: Session
) -> None:
    # rho0 0.9 decaying over 20 K of temperature (rate far from mattering): points at
    # 273.15 K inform 283.15 K and leave 353.15 K (4 length scales away) the population's.
    artifact = hot_artifact(rho=0.9)
    artifact.manifest["curve_model"]["condition_length_scales"] = [20.0, 100.0]
    register(session, "decaying", artifact.to_bytes(), actor="test")
    session.commit()
    observed = {**OBSERVED, "covariates": {"temperature": 273.15, "rate": 0.01}}
    for temperature, informed in ((283.15, True), (353.15, False)):
        target = {"temperature": temperature, "rate": 0.01}
        population = predict(client, {"strain": STRAIN, "covariates": target},
                             "decaying").json()
        given = predict(client, {"strain": STRAIN, "covariates": target,
                                 "observed": observed}, "decaying")
        assert given.status_code == 200, given.text
        moved = np.max(np.abs(np.subtract(given.json()["mean"], population["mean"])))
        assert (moved > 1e-3) == informed
        if not informed:  # exp(-8) * 0.9 = 3e-4 of correlation left
            np.testing.assert_allclose(given.json()["between_material_sd"],
                                       population["between_material_sd"], rtol=1e-3)


def test_beyond_the_range_the_level_term_answers_alike_on_every_way_in(
    client: TestClient, session: Session
) -> None:
    """A model with the level's uncertainty beyond the tested range
    (covariates[].log_level_change): one condition per request (its view, on the compiled
    kernel) and a condition per strain (the float64 reference) agree to float32 rounding;
    samples and quantiles widen with the epistemic SD."""
    register(session, "far", with_level_changes(hot_artifact(), [0.8, 0.0]).to_bytes(),
             actor="test")
    register(session, "near", hot_artifact().to_bytes(), actor="test")
    session.commit()
    temperatures = [300.0, 400.0, 353.15, 450.0]
    listed = predict(client, {"strain": STRAIN, "covariates": {
        "temperature": temperatures, "rate": 0.01}}, "far").json()
    assert listed["outside_training_domain"] == [False, True, False, True]
    for i, temperature in enumerate(temperatures):
        alone = predict(client, {"strain": [STRAIN[i]], "covariates": {
            "temperature": temperature, "rate": 0.01}}, "far").json()
        for field in ("mean", "epistemic_sd", "aleatoric_sd"):
            assert listed[field][i] == pytest.approx(alone[field][0], rel=1e-5, abs=1e-7)
        without = predict(client, {"strain": [STRAIN[i]], "covariates": {
            "temperature": temperature, "rate": 0.01}}, "near").json()
        if temperature <= 353.15:  # inside the range: the network alone, bit for bit
            assert {**alone, "model": "near"} == without
    # Far above the range the curves spread more than the network alone's.
    body = {"strain": STRAIN, "draws": 400, "seed": 3, "quantiles": [0.05, 0.95],
            "covariates": {"temperature": 450.0, "rate": 0.01}}
    far, near = predict(client, body, "far").json(), predict(client, body, "near").json()
    assert np.mean(far["epistemic_sd"]) > np.mean(near["epistemic_sd"])
    width = np.subtract(*far["quantiles"][::-1])
    assert np.mean(width) > np.mean(np.subtract(*near["quantiles"][::-1]))
