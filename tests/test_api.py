import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.inference.posterior import Posterior
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.service_process import random_artifact

# Every test that uses the database runs on SQLite and on a real PostgreSQL server.
pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def registered(session: Session):
    """Two versions of model 'demo'; production points at version 1."""
    first, second = random_artifact(seed=1), random_artifact(seed=2)
    register(session, "demo", first.to_bytes(), actor="test")
    register(session, "demo", second.to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    session.commit()
    return {1: first, 2: second}


def predict(client: TestClient, body, name: str = "demo"):
    return client.post(f"/v1/models/{name}/predict", json=body)


def test_predict_returns_the_decomposition_of_the_production_version(
    client: TestClient, registered
) -> None:
    strain = [-0.4, 0.0, 0.4]
    response = predict(client, {"strain": strain})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("demo", 1)
    expected = Posterior(registered[1]).predict(np.array(strain))
    np.testing.assert_allclose(body["mean"], expected.mean)
    np.testing.assert_allclose(body["aleatoric_sd"], expected.aleatoric_sd)
    np.testing.assert_allclose(body["epistemic_sd"], expected.epistemic_sd)
    np.testing.assert_allclose(body["total_sd"], expected.total_sd)
    assert body["strain"] == strain


def test_explicit_version_is_served(client: TestClient, registered) -> None:
    body = predict(client, {"strain": [0.1], "version": 2}).json()
    assert body["version"] == 2
    expected = Posterior(registered[2]).predict(np.array([0.1]))
    np.testing.assert_allclose(body["mean"], expected.mean)


def test_list_models_shows_versions_and_aliases(client: TestClient, registered) -> None:
    [model] = client.get("/v1/models").json()
    assert model["name"] == "demo"
    assert [v["version"] for v in model["versions"]] == [1, 2]
    assert model["aliases"] == {"production": 1}


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"strain": []}, "strain"),
        ({"strain": ["a"]}, "strain[0]"),
        ({"strain": [0.1, None]}, "strain[1]"),
        ({"strain": [[0.1]]}, "strain[0]"),
        ({"strain": 0.1}, "strain"),
        ({}, "strain"),
        ({"strain": [0.1], "version": 0}, "version"),
        ({"strain": [0.1], "version": 1, "alias": "production"}, "body"),
        ({"strain": [0.1], "unknown": 1}, "unknown"),
    ],
)
def test_invalid_input_gets_422_naming_the_field(
    client: TestClient, registered, payload, field
) -> None:
    response = predict(client, payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field
    assert predict(client, {"strain": [0.0]}).status_code == 200  # still answering


@pytest.mark.parametrize("raw", ["[NaN]", "[Infinity]", "[-Infinity]", "[1e999]"])
def test_non_finite_numbers_are_refused(client: TestClient, registered, raw) -> None:
    response = client.post("/v1/models/demo/predict", content=f'{{"strain": {raw}}}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "strain[0]"


def test_malformed_json_is_a_clear_422(client: TestClient, registered) -> None:
    response = client.post("/v1/models/demo/predict", content=b'{"strain": [1,',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize(
    "name,body,message",
    [
        ("nope", {"strain": [0.1]}, "not registered"),
        ("demo", {"strain": [0.1], "version": 7}, "no version 7"),
        ("demo", {"strain": [0.1], "alias": "staging"}, "no alias 'staging'"),
    ],
)
def test_unknown_model_version_or_alias_is_404(
    client: TestClient, registered, name, body, message
) -> None:
    response = predict(client, body, name=name)
    assert response.status_code == 404
    assert message in response.json()["error"]["message"]


def test_batch_above_the_configured_limit_is_413(database_url: str, registered) -> None:
    from service.main import create_app

    settings = Settings(database_url=database_url, max_points_per_request=10)
    with TestClient(create_app(settings)) as client:
        assert predict(client, {"strain": [0.0] * 10}).status_code == 200
        response = predict(client, {"strain": [0.0] * 11})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_uses_the_error_shape(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_service_import_does_not_load_pymc_or_pytensor() -> None:
    import subprocess
    import sys

    code = ("import sys, service.main, service.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pymc','pytensor'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
