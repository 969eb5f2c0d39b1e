"""Whole curves: the curve model's math, its fit, and a tiny real fit of a material group."""

from __future__ import annotations

import numpy as np
import pytest

from service.artifact import Artifact, ArtifactError
from service.inference.curves import (
    CurveModel,
    Observed,
    conditional_predict,
    curve_samples,
    scatter_split,
)
from service.inference.posterior import Posterior, noise_link
from service.manifest import CurveModelSection
from tests.service_process import random_artifact, smooth_curve_section
from training.curves import fit_curve_model
from training.data import TrainingData, law_curves, make_mooney_rivlin_group
from training.model import BNNConfig
from training.pipeline import fit_data

hand_section = smooth_curve_section


def curved_artifact(seed: int = 3, **section: object) -> Artifact:
    artifact = random_artifact(draws=40, hidden_sizes=(8,), seed=seed)
    artifact.manifest["curve_model"] = hand_section(**section)  # type: ignore[arg-type]
    return Artifact.from_bytes(artifact.to_bytes())


def test_split_of_the_scatter_adds_up_to_the_aleatoric_sd() -> None:
    posterior = Posterior(curved_artifact())
    strain = np.linspace(-0.7, 0.7, 57)
    prediction = posterior.predict(strain)
    between, within = scatter_split(posterior.curve, strain, prediction.aleatoric_sd)
    np.testing.assert_allclose(between**2 + within**2, prediction.aleatoric_sd**2,
                               rtol=1e-12)
    assert np.all(between > within)  # this hand-built model: 96% of the variance between
    # Every marginal is still the BNN's: one draw's samples have unit standardised variance.
    samples = curve_samples(posterior, posterior.curve, strain, 4000, seed=1)
    mu, sigma, _ = posterior.network_outputs(strain)
    assert np.allclose(samples.mean(axis=1), mu.mean(axis=0), atol=0.1 * sigma.max())


def test_same_seed_same_curves_and_another_seed_other_curves() -> None:
    posterior = Posterior(curved_artifact())
    strain = np.linspace(-0.4, 0.4, 9)
    first = curve_samples(posterior, posterior.curve, strain, 50, seed=7)
    np.testing.assert_array_equal(first, curve_samples(posterior, posterior.curve, strain,
                                                       50, seed=7))
    assert not np.allclose(first, curve_samples(posterior, posterior.curve, strain, 50, 8))


def test_conditioning_on_a_material_of_the_model_recovers_its_curve() -> None:
    """Draw one material from the model itself (a posterior draw and its w), measure it at
    five strains, condition: its noise-free curve lies inside the conditioned band, which
    is far narrower than the population's."""
    posterior = Posterior(curved_artifact())
    curve = posterior.curve
    rng = np.random.default_rng(4)
    strain = np.linspace(-0.45, 0.45, 31)
    mu, sigma, _ = posterior.network_outputs(strain)
    s, w = 5, rng.standard_normal(curve.rank)
    truth = mu[s] + sigma[s] * (curve.loadings(strain) @ w)
    within = sigma[s] * np.sqrt(1 - curve.share(strain))
    measured = truth + within * rng.standard_normal(strain.size)
    picks = [3, 10, 17, 24, 28]
    given = conditional_predict(posterior, curve, strain, Observed(strain[picks],
                                                                   measured[picks]))
    band = np.hypot(given.epistemic_sd, given.between_material_sd)
    assert np.mean(np.abs(given.mean - truth) <= 2.5 * band) >= 0.9
    population = posterior.predict(strain)
    assert np.median(given.total_sd / population.total_sd) < 0.6
    np.testing.assert_allclose(given.aleatoric_sd**2, given.between_material_sd**2
                               + given.within_material_sd**2, rtol=1e-12)


def test_fit_recovers_the_share_of_a_known_curve_model() -> None:
    section = CurveModelSection.model_validate(hand_section(basis=8, level=0.2))
    truth = CurveModel.from_section(section)
    rng = np.random.default_rng(0)
    strain = np.linspace(-0.5, 0.5, 25)
    a = truth.loadings(strain)
    noise = np.sqrt(1 - truth.share(strain))
    curves = [(strain, a @ rng.standard_normal(truth.rank)
               + noise * rng.standard_normal(strain.size)) for _ in range(150)]
    section = fit_curve_model(curves, -0.5, 0.5, basis_size=8)
    fitted = CurveModel.from_section(CurveModelSection.model_validate(section))
    assert section["fit"]["converged"]
    np.testing.assert_allclose(fitted.share(strain), truth.share(strain), atol=0.06)
    assert fit_curve_model(curves[:2], -0.5, 0.5) is None  # too few materials


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "gp"}, "curve_model.kind"),
    ({"within_log_variance": [0.0] * 3}, "curve_model"),
    ({"between_cholesky": [[1.0]]}, "curve_model"),
    ({"domain": {"min": 1.0, "max": 0.0}}, "curve_model.domain"),
    ({"within_log_variance": [float("nan")] * 8}, r"curve_model.within_log_variance\[0\]"),
])
def test_a_bad_curve_model_section_is_an_artifact_error_naming_the_field(
    change: dict, field: str
) -> None:
    artifact = random_artifact(draws=10, hidden_sizes=(4,), seed=1)
    artifact.manifest["curve_model"] = {**hand_section(), **change}
    with pytest.raises(ArtifactError, match=f"manifest field {field}"):
        artifact.validate()


@pytest.fixture(scope="module")
def mooney_fit() -> tuple[Artifact, TrainingData]:
    frame = make_mooney_rivlin_group(materials=24, points=20, seed=3)
    data = TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame))
    config = BNNConfig().with_overrides(hidden_sizes=(8,), ensemble_members=4,
                                        map_max_iterations=800)
    trained = fit_data(data, config, holdout=0.25, parallel=False, folds=1)
    return trained.artifact, data


def test_a_group_fit_stores_its_curve_model_and_held_out_curve_scores(mooney_fit) -> None:
    artifact, data = mooney_fit
    manifest = artifact.manifest
    assert manifest["curve_model"]["fit"]["materials"] == 24  # the served fit: all of them
    metrics = manifest["metrics"]
    assert metrics["refit_on_all_data"] and manifest["data"]["training_rows"] == data.rows
    curves = metrics["held_out"]["curves"]
    assert curves["materials"] == 6
    # Whole curves beat independent per-strain sampling on held-out materials, and three
    # points of a material say a lot about the rest of it.
    assert curves["variogram_score"] < curves["independent_variogram_score"]
    assert curves["conditioning"]["gain_nats_per_point"] > 0.3


def test_sampled_curves_are_smooth_where_the_data_are(mooney_fit) -> None:
    """Along one sampled curve the second difference at close strains is the test noise's
    (sqrt(6) x within SD, the curve's own curvature adds ~h^2 f''), not the whole scatter's
    as with independent per-strain samples."""
    artifact, _ = mooney_fit
    posterior = Posterior(artifact)
    strain = np.linspace(-0.45, 0.45, 181)
    samples = curve_samples(posterior, posterior.curve, strain, 300, seed=0)
    jitter = np.diff(samples, n=2, axis=0).std(axis=1)
    prediction = posterior.predict(strain)
    _, within = scatter_split(posterior.curve, strain, prediction.aleatoric_sd)
    noise_only = np.sqrt(6) * within[1:-1]
    assert np.all(jitter <= 1.2 * noise_only + 0.002), np.max(jitter - 1.2 * noise_only)
    independent = np.sqrt(6) * prediction.aleatoric_sd[1:-1]
    away_from_zero = np.abs(strain[1:-1]) > 0.1  # where the scatter is mostly between
    assert np.median(jitter[away_from_zero] / independent[away_from_zero]) < 0.5


def test_conditioning_on_a_generating_material_recovers_its_curve(mooney_fit) -> None:
    artifact, _ = mooney_fit
    posterior = Posterior(artifact)
    strain = np.linspace(-0.5, 0.5, 41)
    population = posterior.predict(strain)
    curves, measured = law_curves("mooney-rivlin", strain, 20, seed=77)
    # The most unusual of 20 new materials: far from the population's mean curve.
    unusual = int(np.argmax(np.mean((curves - population.mean) ** 2, axis=1)))
    truth = curves[unusual]
    picks = [6, 20, 34]
    given = conditional_predict(posterior, posterior.curve, strain,
                                Observed(strain[picks], measured[unusual, picks]))
    band = np.hypot(given.epistemic_sd, given.between_material_sd) + 0.02  # + test noise
    assert np.mean(np.abs(given.mean - truth) <= 2 * band) >= 0.9
    assert (np.sqrt(np.mean((given.mean - truth) ** 2))
            < 0.5 * np.sqrt(np.mean((population.mean - truth) ** 2)))


@pytest.mark.parametrize("hidden", [(8,), (5, 4)])
def test_the_per_draw_forward_pass_is_the_network_draw_by_draw(hidden: tuple[int, ...]) -> None:
    """Posterior.network_outputs (blocked, broadcast first layer), which the curve model
    uses too, against the network written out one draw and one strain at a time; its
    tangent against central differences of that network."""
    posterior = Posterior(random_artifact(draws=30, hidden_sizes=hidden, seed=9))
    strain = np.linspace(-0.8, 0.8, 1501)  # several cache blocks at 30 draws

    def one(s: int, x: float) -> tuple[float, float]:
        h = np.array([(x - posterior.x_mean) / posterior.x_scale])
        *trunk, (w_mean, b_mean), (w_sigma, b_sigma) = posterior.weights
        for weight, bias in trunk:
            h = np.tanh(h @ weight[s] + bias[s])
        mu = float(h @ w_mean[s, :, 0] + b_mean[s, 0])
        z = float(h @ w_sigma[s, :, 0] + b_sigma[s, 0])
        return (posterior.y_mean + posterior.y_scale * mu,
                posterior.y_scale * float(noise_link(np.array(z), posterior.noise_link)))

    mu, sigma, d_mu = posterior.network_outputs(strain, with_tangent=True)
    assert d_mu is not None
    for s in (0, 17, 29):
        for i in (0, 700, 1500):
            expected_mu, expected_sigma = one(s, strain[i])
            assert mu[s, i] == pytest.approx(expected_mu, rel=1e-12, abs=1e-12)
            assert sigma[s, i] == pytest.approx(expected_sigma, rel=1e-12)
            step = 1e-6
            slope = (one(s, strain[i] + step)[0] - one(s, strain[i] - step)[0]) / (2 * step)
            assert d_mu[s, i] == pytest.approx(slope, rel=1e-5, abs=1e-6)
