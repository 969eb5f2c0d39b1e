"""The fast quantile kernel (service.inference.quantile_kernel) against the numpy reference
(predictive.quantiles_reference) and against the mixture CDF it solves. Timing is measured
in benchmarks/quantiles.py, not here."""

import numba
import numpy as np
import pytest
from scipy.special import ndtr

from service.inference import predictive
from service.inference import quantile_kernel as qk
from service.inference.posterior import Posterior
from tests.service_process import random_artifact

# No level k / draws: with few draws F may have a plateau there, where every y is a root.
LEVELS = [1e-10, 1e-3, 0.05, 0.3183, 0.5772, 0.95, 1 - 1e-3, 1 - 1e-10]
# Both solve to 1e-12 x max(|mean|, total SD), so they may differ by twice that.
AGREEMENT = 2e-12


def strains(n: int, seed: int = 0) -> np.ndarray:
    # Beyond the training domain [-0.5, 0.5] too: saturated tanh, wide mixtures.
    return np.concatenate([[-0.5, 0.0, 0.5], np.random.default_rng(seed).uniform(-1.5, 1.5, n)])


def scale_and_cdf(posterior: Posterior, strain: np.ndarray, values: np.ndarray):
    """max(|mean|, total SD) per strain and the mixture's tail probability at each value
    (F below the median, 1 - F above), from the float64 reference network outputs."""
    mu, sigma, _ = posterior.network_outputs(strain)
    mean = mu.mean(axis=0)
    total_sd = np.sqrt(np.mean(sigma**2 + (mu - mean) ** 2, axis=0))
    t = (values[:, None, :] - mu[None]) / sigma[None]
    lower, upper = ndtr(t).mean(axis=1), ndtr(-t).mean(axis=1)
    return np.maximum(np.abs(mean), total_sd), lower, upper


def assert_solves_the_mixture(posterior: Posterior, x: np.ndarray, levels: list[float]):
    fast = predictive.quantiles(posterior, x, levels)
    reference = predictive.quantiles_reference(posterior, x, levels)
    assert fast.shape == reference.shape == (len(levels), x.size)
    scale, lower, upper = scale_and_cdf(posterior, x, fast)
    difference = np.abs(fast - reference) / scale
    assert difference.max() <= AGREEMENT, difference.max()
    for k, level in enumerate(levels):
        tail = lower[k] if level < 0.5 else upper[k]
        np.testing.assert_allclose(tail, min(level, 1 - level), rtol=1e-9, err_msg=str(level))


@pytest.mark.parametrize("draws", [2, 3, 16, 200])
@pytest.mark.parametrize("hidden_sizes,link", [((8,), "exp"), ((4, 3), "softplus"),
                                               ((3, 2, 2), "exp")])
def test_fast_quantiles_equal_the_reference(draws, hidden_sizes, link) -> None:
    posterior = Posterior(random_artifact(draws=draws, hidden_sizes=hidden_sizes,
                                          noise_link=link, seed=draws))
    assert qk.for_posterior(posterior) is not None
    # 150 strains: several blocks (both cores) for 200 draws, one for the others.
    assert_solves_the_mixture(posterior, strains(150, draws), LEVELS)


@pytest.mark.parametrize("modes", [2, 3])
def test_multimodal_mixtures(modes) -> None:
    """Draws that disagree by many of their own SDs: the CDF has plateaus between modes and
    Newton alone would oscillate."""
    artifact = random_artifact(draws=60, hidden_sizes=(8,), seed=modes)
    offsets = np.linspace(-4.0, 4.0, modes)[np.arange(60) % modes]
    artifact.arrays["mean_head.b"][:, 0] = offsets
    artifact.arrays["sigma_head.b"][:, 0] = -5.0
    posterior = Posterior(artifact)
    # Away from k / draws: there a plateau makes every y between two components a root.
    levels = [1e-6, 0.1234, 0.2345, 0.4567, 0.5678, 0.9012, 1 - 1e-6]
    assert_solves_the_mixture(posterior, strains(40, modes), levels)


def test_a_strains_quantiles_do_not_depend_on_its_batch() -> None:
    posterior = Posterior(random_artifact(draws=100, hidden_sizes=(16,), seed=3))
    x = strains(3_000, 1)
    levels = [0.025, 0.5, 0.975]
    batch = predictive.quantiles(posterior, x, levels)
    picks = np.array([0, 1, 2, 255, 256, 1_700, 3_002])
    together = predictive.quantiles(posterior, x[picks[::-1]], levels)[:, ::-1]
    alone = np.column_stack([predictive.quantiles(posterior, x[[i]], levels) for i in picks])
    assert np.array_equal(together, batch[:, picks])
    assert np.array_equal(alone, batch[:, picks])


def test_unsupported_architectures_use_the_reference() -> None:
    posterior = Posterior(random_artifact(draws=20, hidden_sizes=(4,), seed=1))
    posterior.kernel = None  # what Posterior does for an architecture the kernels lack
    assert qk.for_posterior(posterior) is None
    x = strains(10)
    np.testing.assert_array_equal(predictive.quantiles(posterior, x, [0.1, 0.9]),
                                  predictive.quantiles_reference(posterior, x, [0.1, 0.9]))


def test_empty_requests() -> None:
    posterior = Posterior(random_artifact(draws=5, hidden_sizes=(4,), seed=1))
    assert predictive.quantiles(posterior, np.array([]), [0.5]).shape == (1, 0)
    assert predictive.quantiles(posterior, np.array([0.1]), []).shape == (0, 1)


@numba.njit
def _elementary(x):
    out = np.empty((5, x.size))
    for i in range(x.size):
        out[0, i] = qk._exp(x[i])
        out[1, i] = qk._exp_tiny(-abs(x[i]))
        out[2, i] = qk._tanh(x[i])
        out[3, i] = qk._softplus(x[i])
        a = abs(x[i])
        out[4, i] = qk._exp_tiny(-0.5 * a * a) * qk._scaled_tail(a)
    return out


def test_elementary_functions_are_float64_accurate() -> None:
    wide = np.concatenate([np.linspace(-708.0, 709.0, 20_001), np.linspace(-3.0, 3.0, 20_001)])
    exp, _, tanh, softplus, _ = _elementary(wide)
    np.testing.assert_allclose(exp, np.exp(wide), rtol=5e-16, atol=0)
    np.testing.assert_allclose(tanh, np.tanh(wide), rtol=0, atol=3e-16)
    np.testing.assert_allclose(softplus, np.logaddexp(0.0, wide), rtol=5e-16, atol=0)
    tiny = -np.linspace(0.0, 745.0, 20_001)
    _, exp_tiny, _, _, _ = _elementary(tiny)
    normal = tiny >= -708.0
    np.testing.assert_allclose(exp_tiny[normal], np.exp(tiny[normal]), rtol=5e-16, atol=0)
    np.testing.assert_allclose(exp_tiny[~normal], np.exp(tiny[~normal]), rtol=0, atol=1e-320)
    a = np.linspace(0.0, 37.0, 20_001)
    tail = _elementary(a)[4]
    # Relative error grows only as a^2 x 1e-16: a*a is rounded (as in any Phi of a rounded
    # argument); the series itself is good to 6e-16.
    assert np.all(np.abs(tail / ndtr(-a) - 1) <= 1e-15 + 2.5e-16 * a * a)


def test_a_strain_where_halleys_leading_error_term_cancels() -> None:
    """Found on the benchmark grid: c2^2 ~ c3 at the level-0.05 root (narrow components
    nearby), so the leading-term estimate of Halley's error (c2^2 - c3) h^3 was 200x too
    small and an early acceptance missed the tolerance 16-fold."""
    posterior = Posterior(random_artifact(draws=1000, hidden_sizes=(16,), seed=0))
    x = np.linspace(-0.5, 0.5, 200_001)[[191_522, 183_459]]
    assert_solves_the_mixture(posterior, x, [0.05, 0.5, 0.95])
