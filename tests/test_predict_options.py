"""The predict options simulation codes use: quantiles of the full posterior predictive,
the tangent, reproducible samples, the extrapolation policy, large batches and limits."""

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from scipy.special import ndtr
from sqlalchemy.orm import Session

from service.inference.posterior import Posterior
from service.inference.predictive import mixture_quantile
from service.main import create_app
from service.registry.writes import register, set_alias
from service.settings import Settings
from tests.service_process import random_artifact

LEVELS = [0.01, 0.025, 0.25, 0.5, 0.75, 0.975, 0.99]


@pytest.fixture
def artifact(session: Session):
    """Model 'demo' version 1 (alias production), training domain [-0.5, 0.5]."""
    artifact = random_artifact(draws=60, hidden_sizes=(8,), seed=11)
    register(session, "demo", artifact.to_bytes(), actor="test")
    set_alias(session, "demo", "production", 1, actor="test")
    session.commit()
    return artifact


def predict(client: TestClient, body: dict, name: str = "demo"):
    return client.post(f"/v1/models/{name}/predict", json=body)


def test_quantiles_match_brute_force_monte_carlo_of_the_mixture(
    client: TestClient, artifact
) -> None:
    strain = [-0.45, -0.1, 0.2, 0.6]
    response = predict(client, {"strain": strain, "quantiles": LEVELS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["quantile_levels"] == LEVELS
    served = np.array(body["quantiles"])  # (levels, strains)
    assert served.shape == (len(LEVELS), len(strain))

    posterior = Posterior(artifact)
    mu, sigma, _ = posterior.network_outputs(np.array(strain))
    # Brute force: sample the mixture (a draw s uniformly, then Normal(mu_s, sigma_s)).
    rng = np.random.default_rng(2024)
    n = 400_000
    which = rng.integers(0, posterior.draws, size=n)
    samples = mu[which] + sigma[which] * rng.standard_normal((n, len(strain)))
    empirical = np.quantile(samples, LEVELS, axis=0)
    # MC standard error of a sample quantile: sqrt(q (1 - q) / n) / density at the quantile.
    t = (served[:, None, :] - mu[None]) / sigma[None]
    density = (np.exp(-0.5 * t**2) / (np.sqrt(2 * np.pi) * sigma[None])).mean(axis=1)
    levels = np.array(LEVELS)[:, None]
    standard_error = np.sqrt(levels * (1 - levels) / n) / density
    z = np.abs(empirical - served) / standard_error
    print(f"quantiles vs Monte-Carlo ({n} samples): max |diff| = "
          f"{np.abs(empirical - served).max():.2e}, max |diff|/MC s.e. = {z.max():.2f}")
    assert z.max() < 4.5
    # And they solve the mixture CDF exactly, unlike a Gaussian with the total SD, which the
    # same Monte-Carlo tells apart (so this test can fail).
    cdf = ndtr(t).mean(axis=1)
    np.testing.assert_allclose(cdf, np.broadcast_to(levels, cdf.shape), rtol=1e-9, atol=1e-12)
    from scipy.special import ndtri

    gaussian = np.array(body["mean"]) + np.array(body["total_sd"]) * ndtri(levels)
    assert (np.abs(empirical - gaussian) / standard_error).max() > 10


def test_mixture_quantile_of_one_component_is_the_normal_quantile() -> None:
    mu, sigma = np.array([[1.5, -2.0]]), np.array([[0.3, 2.0]])
    np.testing.assert_allclose(mixture_quantile(mu, sigma, 0.975),
                               mu[0] + sigma[0] * 1.959963984540054, rtol=1e-12)


def test_mixture_quantile_is_accurate_in_far_tails() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(0, 1, (40, 7)), np.exp(rng.normal(-1, 0.5, (40, 7)))
    for level in (1e-9, 1e-4, 1 - 1e-4, 1 - 1e-9):
        y = mixture_quantile(mu, sigma, level)
        t = (y - mu) / sigma
        tail = ndtr(t).mean(0) if level < 0.5 else ndtr(-t).mean(0)
        np.testing.assert_allclose(tail, min(level, 1 - level), rtol=1e-8)


def test_tangent_through_the_api_matches_central_differences_of_the_mean(
    client: TestClient, artifact
) -> None:
    strain = np.linspace(-0.45, 0.45, 7)
    # The served mean is float32 arithmetic (service.inference.kernel, ~1e-7 rounding), so the
    # difference step is 1e-3: its rounding noise and truncation error both stay ~1e-5.
    step = 1e-3
    body = predict(client, {"strain": strain.tolist(), "tangent": True}).json()
    plus = predict(client, {"strain": (strain + step).tolist()}).json()["mean"]
    minus = predict(client, {"strain": (strain - step).tolist()}).json()["mean"]
    difference = (np.array(plus) - np.array(minus)) / (2 * step)
    np.testing.assert_allclose(body["tangent"], difference, rtol=2e-3, atol=1e-4)
    assert np.all(np.array(body["tangent_epistemic_sd"]) > 0)
    assert "tangent" not in predict(client, {"strain": [0.1]}).json()


def test_draws_reproduce_with_the_same_seed(client: TestClient, artifact) -> None:
    request = {"strain": [-0.3, 0.0, 0.3], "draws": 50, "seed": 7}
    first = predict(client, request).json()
    again = predict(client, request).json()
    other = predict(client, {**request, "seed": 8}).json()
    assert np.array(first["samples"]).shape == (3, 50)
    assert first["samples"] == again["samples"] and first["seed"] == 7
    assert first["samples"] != other["samples"]
    # Without a seed the service picks one and says which: it reproduces the samples.
    unseeded = predict(client, {"strain": [0.1], "draws": 5}).json()
    replay = predict(client, {"strain": [0.1], "draws": 5, "seed": unseeded["seed"]}).json()
    assert replay["samples"] == unseeded["samples"]


def test_draws_sample_the_posterior_predictive(client: TestClient, artifact) -> None:
    body = predict(client, {"strain": [-0.2, 0.25], "draws": 10_000, "seed": 3}).json()
    samples = np.array(body["samples"])
    mean, total_sd = np.array(body["mean"]), np.array(body["total_sd"])
    # Sample mean within 4 MC standard errors of the predictive mean, SD within 5 %.
    assert np.all(np.abs(samples.mean(axis=1) - mean) < 4 * total_sd / np.sqrt(10_000))
    np.testing.assert_allclose(samples.std(axis=1), total_sd, rtol=0.05)


def test_extrapolation_policies(client: TestClient, artifact) -> None:
    strain = [-0.7, 0.0, 0.2, 0.8]
    flagged = predict(client, {"strain": strain}).json()
    assert flagged["outside_training_domain"] == [True, False, False, True]
    allowed = predict(client, {"strain": strain, "extrapolation": "allow"}).json()
    assert "outside_training_domain" not in allowed
    assert allowed["mean"] == flagged["mean"]
    rejected = predict(client, {"strain": strain, "extrapolation": "reject"})
    assert rejected.status_code == 422
    error = rejected.json()["error"]
    assert error["code"] == "invalid_input"
    assert [d["field"] for d in error["details"]] == ["strain[0]", "strain[3]"]
    assert "strain[0]=-0.7" in error["message"] and "strain[3]=0.8" in error["message"]
    inside = predict(client, {"strain": [0.0, 0.4], "extrapolation": "reject"})
    assert inside.status_code == 200


def test_a_million_strains_in_one_request(client: TestClient, artifact) -> None:
    strain = np.random.default_rng(5).uniform(-0.6, 0.6, 1_000_000)
    content = orjson.dumps({"strain": strain}, option=orjson.OPT_SERIALIZE_NUMPY)
    response = client.post("/v1/models/demo/predict", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    body = orjson.loads(response.content)
    assert len(body["mean"]) == 1_000_000
    picks = np.array([0, 123_456, 999_999])
    expected = Posterior(artifact).predict(strain[picks])
    np.testing.assert_allclose(np.array(body["mean"])[picks], expected.mean, rtol=1e-12)
    np.testing.assert_array_equal(body["outside_training_domain"], np.abs(strain) > 0.5)


def test_limits_are_configurable_and_clear(database_url: str, artifact) -> None:
    settings = Settings(database_url=database_url, max_points_per_request=100,
                        max_samples_per_request=1_000, max_request_bytes=10_000,
                        max_quantile_points_per_request=20)
    with TestClient(create_app(settings)) as client:
        assert predict(client, {"strain": [0.0] * 100}).status_code == 200
        points = predict(client, {"strain": [0.0] * 101})
        samples = predict(client, {"strain": [0.0] * 11, "draws": 100})
        big_body = client.post("/v1/models/demo/predict",
                               content=b'{"strain": [' + b"0.0, " * 3000 + b"0.0]}",
                               headers={"content-type": "application/json"})
        assert predict(client, {"strain": [0.0] * 10, "draws": 100}).status_code == 200
        assert predict(client, {"strain": [0.0] * 20, "quantiles": [0.5]}).status_code == 200
        quantiles = predict(client, {"strain": [0.0] * 21, "quantiles": [0.5]})
    assert points.status_code == 413 and "limit is 100" in points.json()["error"]["message"]
    assert samples.status_code == 413 and "1100 samples" in samples.json()["error"]["message"]
    assert quantiles.status_code == 413
    assert quantiles.json()["error"]["details"][0]["field"] == "quantiles"
    assert big_body.status_code == 413
    assert big_body.json()["error"]["code"] == "payload_too_large"
    assert "10000 bytes" in big_body.json()["error"]["message"]


def test_openapi_documents_the_options_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    request = schema["components"]["schemas"]["PredictRequest"]
    for option in ("version", "alias", "quantiles", "tangent", "draws", "seed",
                   "extrapolation"):
        assert request["properties"][option].get("description"), option
    examples = request["examples"]
    assert any("quantiles" in e for e in examples) and any("draws" in e for e in examples)
