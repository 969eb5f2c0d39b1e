"""Whole curves over HTTP: the scatter split, coherent samples, `observed` and its 422s."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.artifact import Artifact
from service.inference.posterior import Posterior
from service.main import create_app
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.service_process import random_artifact
from tests.test_curves import curved_artifact

OBSERVED = {"strain": [-0.3, 0.0, 0.35], "stress": [-0.9, -0.2, 0.3]}


@pytest.fixture
def curved(session: Session) -> Artifact:
    """'curvy' v1: a model with a curve model; 'plain' v1: one without (no groups)."""
    artifact = curved_artifact()
    register(session, "curvy", artifact.to_bytes(), actor="test")
    set_alias(session, "curvy", "production", 1, actor="test")
    register(session, "plain", random_artifact(draws=20, seed=2).to_bytes(), actor="test")
    session.commit()
    return artifact


def predict(client: TestClient, body: dict, name: str = "curvy"):
    return client.post(f"/v1/models/{name}/predict", json=body)


def test_every_answer_of_a_group_fit_splits_the_scatter(client: TestClient, curved) -> None:
    # One strain, no options: the lean path answers, with the same fields.
    for body in ({"strain": [0.1]}, {"strain": [-0.4, 0.0, 0.4], "tangent": True}):
        answer = predict(client, body).json()
        between = np.array(answer["between_material_sd"])
        within = np.array(answer["within_material_sd"])
        np.testing.assert_allclose(between**2 + within**2,
                                   np.array(answer["aleatoric_sd"]) ** 2, rtol=1e-12)
    plain = predict(client, {"strain": [0.1]}, name="plain").json()
    assert "between_material_sd" not in plain and "within_material_sd" not in plain


def test_draws_are_whole_curves_and_the_same_seed_gives_the_same_curves(
    client: TestClient, curved
) -> None:
    body = {"strain": list(np.linspace(-0.45, 0.45, 19)), "draws": 400, "seed": 5}
    first = predict(client, body).json()
    assert predict(client, body).json()["samples"] == first["samples"]
    samples = np.array(first["samples"])  # (strains, curves)
    assert samples.shape == (19, 400)
    # Neighbouring strains of one curve move together (this model: 96% between).
    correlation = np.corrcoef(samples[9], samples[10])[0, 1]
    assert correlation > 0.8


def test_observed_points_narrow_the_answer_to_that_material(
    client: TestClient, curved: Artifact
) -> None:
    strain = list(np.linspace(-0.45, 0.45, 10))
    population = predict(client, {"strain": strain}).json()
    given = predict(client, {"strain": strain, "observed": OBSERVED, "draws": 50,
                             "seed": 1, "quantiles": [0.025, 0.975]})
    assert given.status_code == 200, given.text
    body = given.json()
    assert np.median(np.array(body["aleatoric_sd"]) / population["aleatoric_sd"]) < 0.6
    assert body["observed_outside_training_domain"] == [False, False, False]
    np.testing.assert_allclose(np.array(body["between_material_sd"]) ** 2
                               + np.array(body["within_material_sd"]) ** 2,
                               np.array(body["aleatoric_sd"]) ** 2, rtol=1e-12)
    assert np.array(body["samples"]).shape == (10, 50)
    low, high = np.array(body["quantiles"])
    assert np.all(low < body["mean"]) and np.all(body["mean"] < high)
    # Conditioning on a model without a curve model is refused, naming the field.
    plain = predict(client, {"strain": [0.1], "observed": OBSERVED}, name="plain")
    assert plain.status_code == 422
    assert plain.json()["error"]["details"][0]["field"] == "observed"
    assert Posterior(curved).curve is not None


@pytest.mark.parametrize(("observed", "field"), [
    ({"strain": [0.1, 0.2], "stress": [1.0]}, "observed"),
    ({"strain": [], "stress": []}, "observed.strain"),
    ({"strain": [0.1], "stress": []}, "observed.stress"),
    ({"strain": [0.1], "stress": ["1"]}, "observed.stress[0]"),
    ({"strain": [0.1]}, "observed.stress"),
    ({"strain": [0.1], "stress": [1.0], "load": [2.0]}, "observed.load"),
    ({"strain": [0.1] * 6, "stress": [1.0] * 6}, "observed.strain"),  # limit: 5 here
])
def test_bad_observed_input_is_a_422_naming_the_field(
    settings: Settings, curved, observed: dict, field: str
) -> None:
    limited = settings.model_copy(update={"max_observed_points": 5})
    with TestClient(create_app(limited)) as client:
        response = predict(client, {"strain": [0.1], "observed": observed})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


def test_non_finite_observed_numbers_are_a_422(client: TestClient, curved) -> None:
    body = b'{"strain": [0.1], "observed": {"strain": [0.1, NaN], "stress": [1.0, 2.0]}}'
    response = client.post("/v1/models/curvy/predict", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "observed" in response.json()["error"]["message"]
    # Finite but absurd: the update would overflow, so it is refused, not answered as null.
    extreme = predict(client, {"strain": [0.1], "observed": {"strain": [0.1, 0.2],
                                                             "stress": [1e300, -1e300]}})
    assert extreme.status_code == 422, extreme.text
    assert extreme.json()["error"]["details"][0]["field"] == "observed.stress"


@pytest.mark.parametrize("stress", [[1e308, 0.0], [-1e308, 1e308], [1e200, 0.0]])
@pytest.mark.parametrize("options", [{}, {"draws": 5}, {"quantiles": [0.5]}])
def test_an_observed_stress_that_overflows_the_update_is_a_422_not_a_500(
        client: TestClient, curved, stress: list[float], options: dict) -> None:
    answer = predict(client, {"strain": [0.0, 0.1], **options,
                              "observed": {"strain": [0.1, 0.2], "stress": stress}})
    assert answer.status_code == 422, answer.text[:300]
    assert answer.json()["error"]["details"][0]["field"] == "observed.stress"


def test_the_extrapolation_policy_applies_to_observed_strains(
    client: TestClient, curved
) -> None:
    observed = {"strain": [0.1, 0.9], "stress": [0.1, 1.0]}
    rejected = predict(client, {"strain": [0.1], "observed": observed,
                                "extrapolation": "reject"})
    assert rejected.status_code == 422
    assert rejected.json()["error"]["details"][0]["field"] == "observed.strain[1]"
    flagged = predict(client, {"strain": [0.1], "observed": observed}).json()
    assert flagged["observed_outside_training_domain"] == [False, True]


def test_oip_returns_the_scatter_split_of_a_group_fit_and_refuses_it_without_one(
    client: TestClient, curved
) -> None:
    strain = [-0.4, 0.0, 0.4]
    native = predict(client, {"strain": strain}).json()
    tensor = {"name": "strain", "shape": [3], "datatype": "FP64", "data": strain}
    answer = client.post("/v2/models/curvy/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["between_material_sd"] == native["between_material_sd"]
    assert outputs["within_material_sd"] == native["within_material_sd"]
    # A version without a curve model: absent by default, a 422 naming the output if asked.
    plain = client.post("/v2/models/plain/infer", json={"inputs": [tensor]}).json()
    assert {o["name"] for o in plain["outputs"]}.isdisjoint(
        {"between_material_sd", "within_material_sd"})
    asked = client.post("/v2/models/plain/infer", json={
        "inputs": [tensor], "outputs": [{"name": "mean"}, {"name": "within_material_sd"}]})
    assert asked.status_code == 422
    assert "outputs[1].name" in asked.text
