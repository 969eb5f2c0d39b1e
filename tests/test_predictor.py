"""The numpy reference summaries equal a brute-force computation of the formulas in
docs/architecture.md (the fast kernel behind Posterior.predict is tested against this
reference in test_kernel)."""

import numpy as np
import pytest

from service.inference.posterior import Posterior
from tests.service_process import random_artifact


def brute_force(artifact, strain: np.ndarray) -> dict[str, np.ndarray]:
    """Loop over draws and points with scalar-by-scalar maths: the formulas, literally."""
    a, m = artifact.arrays, artifact.manifest
    norm = m["normalisation"]
    layers = len(m["architecture"]["hidden_sizes"])
    link = {"exp": np.exp, "softplus": lambda z: np.log1p(np.exp(z))}[
        m["architecture"]["noise_link"]]
    mu = np.empty((artifact.draws, strain.size))
    sigma = np.empty_like(mu)
    for s in range(artifact.draws):
        for j, x in enumerate(strain):
            h = np.array([(x - norm["x_mean"]) / norm["x_scale"]])
            for i in range(layers):
                h = np.tanh(h @ a[f"trunk{i}.W"][s] + a[f"trunk{i}.b"][s])
            mu_n = float(h @ a["mean_head.W"][s][:, 0] + a["mean_head.b"][s][0])
            sigma_n = float(link(h @ a["sigma_head.W"][s][:, 0] + a["sigma_head.b"][s][0]))
            mu[s, j] = norm["y_mean"] + norm["y_scale"] * mu_n
            sigma[s, j] = norm["y_scale"] * sigma_n
    mean = mu.sum(0) / artifact.draws
    epistemic = np.sqrt(((mu - mean) ** 2).sum(0) / artifact.draws)
    aleatoric = np.sqrt((sigma**2).sum(0) / artifact.draws)
    return {"mean": mean, "aleatoric_sd": aleatoric, "epistemic_sd": epistemic,
            "total_sd": np.sqrt(aleatoric**2 + epistemic**2)}


@pytest.mark.parametrize("hidden_sizes,link", [((8,), "exp"), ((6, 4), "softplus")])
def test_predict_matches_brute_force_formulas(hidden_sizes, link) -> None:
    artifact = random_artifact(draws=40, hidden_sizes=hidden_sizes, noise_link=link)
    strain = np.linspace(-0.7, 0.7, 23)
    prediction = Posterior(artifact).predict_reference(strain)
    expected = brute_force(artifact, strain)
    for field in ("mean", "aleatoric_sd", "epistemic_sd", "total_sd"):
        np.testing.assert_allclose(getattr(prediction, field), expected[field], rtol=1e-10,
                                   atol=1e-12, err_msg=field)


def test_chunked_large_batch_equals_unchunked_small_batches() -> None:
    artifact = random_artifact(draws=400, hidden_sizes=(16,))
    posterior = Posterior(artifact)
    strain = np.random.default_rng(1).uniform(-0.5, 0.5, 2_000)  # > one 625-point chunk
    whole = posterior.predict_reference(strain)
    pieces = [posterior.predict_reference(strain[i:i + 100]) for i in range(0, strain.size, 100)]
    np.testing.assert_allclose(whole.mean, np.concatenate([p.mean for p in pieces]))
    np.testing.assert_allclose(whole.epistemic_sd,
                               np.concatenate([p.epistemic_sd for p in pieces]))


def test_outside_domain_flags_extrapolation() -> None:
    posterior = Posterior(random_artifact(domain=(-0.5, 0.5)))
    flags = posterior.outside_domain(np.array([-0.6, -0.5, 0.0, 0.5, 0.51]))
    assert flags.tolist() == [True, False, False, False, True]


@pytest.mark.parametrize("hidden_sizes", [(8,), (6, 4)])
def test_tangent_matches_central_finite_differences(hidden_sizes) -> None:
    posterior = Posterior(random_artifact(draws=30, hidden_sizes=hidden_sizes))
    strain = np.linspace(-0.6, 0.6, 17)
    step = 1e-5
    prediction = posterior.predict_reference(strain, tangent=True)
    mu_plus, _, _ = posterior.network_outputs(strain + step)
    mu_minus, _, _ = posterior.network_outputs(strain - step)
    d_mu = (mu_plus - mu_minus) / (2 * step)
    np.testing.assert_allclose(prediction.tangent, d_mu.mean(axis=0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(prediction.tangent_epistemic_sd, d_mu.std(axis=0),
                               rtol=1e-5, atol=1e-8)
    assert posterior.predict_reference(strain).tangent is None
