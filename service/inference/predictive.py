"""The full posterior predictive beyond its first two moments: quantiles and samples.

For a strain x the posterior predictive is the equal-weight mixture over posterior draws s
of Normal(mu_s(x), sigma_s(x)). Its quantiles are not those of a Gaussian with the total SD
(the mixture can be skewed or heavy-tailed where draws disagree), so they are found by
solving  F(y) = mean_s Phi((y - mu_s) / sigma_s) = q  per strain: safeguarded Newton inside
a bracket that provably holds the root, vectorised over strains, in bounded-memory chunks.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from service.inference import curves, interrupt, quantile_kernel
from service.inference.posterior import Posterior

# Bound on draws x points x width floats held at once (same budget as the predictor).
_MAX_ACTIVATION_ELEMENTS = 4_000_000
_MAX_ITERATIONS = 200
# Quantiles are solved to this fraction of max(|mean|, total SD): far below any MC error.
_RELATIVE_TOLERANCE = 1e-12
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
# Work of `mixture_quantile` per strain, posterior draw and level, in nanoseconds on the
# reference machine (docs/performance.md; benchmarks/admission.py measures it).
MIXTURE_LEVEL_NS = 150.0


def _chunk_size(posterior: Posterior) -> int:
    return max(1, _MAX_ACTIVATION_ELEMENTS // (posterior.draws * posterior.max_width))


def mixture_quantile(mu: np.ndarray, sigma: np.ndarray, level: float) -> np.ndarray:
    """The `level` quantile of the mixture (1/S) sum_s Normal(mu[s, i], sigma[s, i]) for
    every column i; mu and sigma have shape (S, n)."""
    z = float(ndtri(level))
    component = mu + sigma * z
    # Every component CDF is <= level at the smallest component quantile and >= level at
    # the largest, so the mixture CDF crosses `level` between them: a bracket for free.
    low, high = component.min(axis=0), component.max(axis=0)
    # Start from the Gaussian with the mixture's mean and total variance.
    mean = mu.mean(axis=0)
    total_sd = np.sqrt(np.mean(sigma * sigma + (mu - mean) ** 2, axis=0))
    y = np.clip(mean + total_sd * z, low, high)
    upper_tail = level > 0.5
    target = 1.0 - level if upper_tail else level
    scale = np.maximum(total_sd, np.abs(mean))
    previous_step = high - low
    active = np.flatnonzero(high > low)  # equal bounds: every component agrees, done
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        m, s, ya = mu[:, active], sigma[:, active], y[active]
        t = (ya - m) / s
        # In the upper tail work with the survival function: F - q = (1 - q) - mean Phi(-t)
        # keeps full relative precision where F is close to 1.
        if upper_tail:
            excess = target - ndtr(-t).mean(axis=0)
        else:
            excess = ndtr(t).mean(axis=0) - target
        density = (np.exp(-0.5 * t * t) / s).mean(axis=0) * _INV_SQRT_2PI
        lo = np.where(excess < 0, ya, low[active])
        hi = np.where(excess > 0, ya, high[active])
        # Safeguarded Newton (Numerical Recipes' rtsafe): take the Newton step only if it
        # stays inside the bracket and at least halves the previous step; otherwise bisect.
        # A multimodal mixture (draws that disagree) would make plain Newton oscillate.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton_step = excess / density
        newton = ya - newton_step
        use_newton = (np.isfinite(newton) & (newton > lo) & (newton < hi)
                      & (np.abs(newton_step) <= 0.5 * previous_step[active]))
        step_to = np.where(use_newton, newton, 0.5 * (lo + hi))
        # Converged when the Newton correction is below the tolerance (checked before the
        # halving rule, which rounding noise near the root would otherwise trip) or the
        # bracket is that narrow.
        tolerance = _RELATIVE_TOLERANCE * scale[active]
        newton_converged = np.abs(newton_step) <= tolerance
        done = (excess == 0) | newton_converged | (hi - lo <= tolerance)
        step_to = np.where(newton_converged, np.clip(newton, lo, hi), step_to)
        previous_step[active] = np.abs(step_to - ya)
        y[active] = np.where(excess == 0, ya, step_to)
        low[active], high[active] = lo, hi
        active = active[~done]
    return y


def quantiles(posterior: Posterior, strain: np.ndarray, levels: list[float],
              observed: curves.Observed | None = None) -> np.ndarray:
    """Quantiles of the posterior predictive, shape (len(levels), len(strain)); given
    `observed`, of that material's predictive (per draw a Normal with the conditional
    mean and variance of the curve model). Unconditioned quantiles run the fast kernel
    (service.inference.quantile_kernel) when it computes the architecture, else
    `quantiles_reference`. Both solve to the tolerance above; the kernel's quantiles of a
    strain do not depend on the other strains asked with it (predict = export, bit for bit)."""
    fast = quantile_kernel.for_posterior(posterior) if observed is None else None
    if fast is None:
        return quantiles_reference(posterior, strain, levels, observed)
    return fast.quantiles(strain, levels)


def quantiles_reference(posterior: Posterior, strain: np.ndarray, levels: list[float],
                        observed: curves.Observed | None = None) -> np.ndarray:
    """The same quantiles by the plain-numpy reference (network_outputs, mixture_quantile),
    which also answers conditioned requests."""
    strain = np.asarray(strain, dtype=np.float64).ravel()
    out = np.empty((len(levels), strain.size))
    chunk = _chunk_size(posterior)
    conditioned = None
    if observed is not None:
        conditioned = curves.condition(posterior, _curve(posterior), observed)
    for start in range(0, strain.size, chunk):
        interrupt.checkpoint()
        part = slice(start, start + chunk)
        if conditioned is None:
            mu, sigma, _ = posterior.network_outputs(strain[part])
        else:
            mu, between, within = curves.conditional_draws(
                posterior, _curve(posterior), conditioned, strain[part])
            sigma = np.sqrt(between + within)
        for row, level in enumerate(levels):
            interrupt.checkpoint()  # a level of a chunk is tens of milliseconds
            out[row, part] = mixture_quantile(mu, sigma, level)
    return out


def _curve(posterior: Posterior) -> curves.CurveModel:
    if getattr(posterior, "curve", None) is None:
        raise ValueError("this model has no curve model (fitted without groups)")
    return posterior.curve


def samples(
    posterior: Posterior, strain: np.ndarray, count: int, seed: int,
    observed: curves.Observed | None = None, test_noise: bool = True,
) -> np.ndarray:
    """`count` posterior-predictive samples per strain, shape (len(strain), count).

    With a curve model (models fitted on grouped data), column j is one whole material
    curve: a posterior draw s_j, a material (new, or given `observed`) and its test noise
    (service.inference.curves.curve_samples). Without one, sample j draws one posterior draw s_j
    (uniformly) shared by all strains of the request, so column j is mu_{s_j}(x) plus
    independent per-strain scatter sigma_{s_j}(x) * eps. The same seed and strains give
    the same samples. `test_noise=False` gives the curves without the test noise: the
    material's law (or, without a curve model, the posterior draw's mean curve).
    """
    if getattr(posterior, "curve", None) is not None or observed is not None:
        return curves.curve_samples(posterior, _curve(posterior), strain, count, seed,
                                    observed, test_noise)
    strain = np.asarray(strain, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, posterior.draws, size=count)
    noise = rng.standard_normal((strain.size, count))
    used, column = np.unique(chosen, return_inverse=True)
    out = np.empty((strain.size, count))
    chunk = max(1, _MAX_ACTIVATION_ELEMENTS // (max(used.size, 1) * posterior.max_width))
    for start in range(0, strain.size, chunk):
        interrupt.checkpoint()
        part = slice(start, start + chunk)
        mu, sigma, _ = posterior.network_outputs(strain[part], draws=used)
        out[part] = mu[column].T + (sigma[column].T * noise[part] if test_noise else 0.0)
    return out
