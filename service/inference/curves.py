"""Whole curves: the material as a random effect over strain (numpy and scipy).

The BNN gives, per posterior draw s, the marginal Normal(mu_s(x), sigma_s(x)) at every
strain. Readings of one material are not independent: a stiff material is stiff at every
strain. The curve model describes how the standardised residual z(x) = (y - mu)/sigma of
one material varies along its curve, without changing any marginal:

    z(x) = a(x) . w + sqrt(1 - r(x)) e(x),   w ~ N(0, I_k) per material, e iid N(0, 1)

- a(x) = phi(x) L / sqrt(q(x) + v(x)): phi a cubic B-spline basis over the training
  domain (k functions), Sigma = L L^T the covariance of a material's spline coefficients,
  q(x) = phi Sigma phi^T the between-material variance and v(x) = exp(phi(x) . gamma) the
  test-noise variance of z. Both are learned from the training materials' residuals by
  maximum likelihood (training.curves).
- r(x) = |a(x)|^2 = q/(q + v) is the between-material share of the scatter, so
  Var z(x) = 1 and every marginal stays the BNN's.

A learned covariance, not a stationary kernel: a stiff material lies above the mean curve
in tension and below it in compression, a correlation of nearly -1 across zero strain that
no positive stationary kernel (squared exponential and the like) can express
(docs/curves.md has the measurements).

The loadings a(x) are tabulated at load on `TABLE_POINTS` strains across the domain and
interpolated linearly; r is recomputed from the interpolated loadings, so a(x).a(x) +
(1 - r(x)) = 1 holds to rounding. Beyond the training domain the strain is clamped to its
edge: the correlation structure and the split of the scatter stay those at the edge, while
mu and sigma keep the network's extrapolation.

The manifest section `curve_model` (typed and validated with the manifest,
service.manifest.CurveModelSection) holds the fitted parameters;
`CurveModel.from_section` builds the tables. mu_s and sigma_s come from the posterior's
own forward pass (`Posterior.network_outputs`), the one place the network is evaluated
in numpy.

Why one module of this size: it is one model (the spline factor copula) with its
validation, sampling, conditioning and scatter split, which share its loadings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.interpolate import BSpline
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from service.errors import InvalidInputError
from service.inference import interrupt
from service.manifest import CURVE_DEGREE, CurveModelSection, Manifest

# Linear interpolation on this many strains across the domain: the loadings are cubic
# splines with at most 64 pieces, so the table's interpolation error is below 1e-6 of r.
TABLE_POINTS = 4097
# Bound on strains x max(draws, samples) floats held at once while sampling or conditioning.
_MAX_ELEMENTS = 4_000_000


def knot_vector(basis_size: int) -> np.ndarray:
    """Clamped cubic knots on [-1, 1] with `basis_size` functions (equally spaced)."""
    inner = np.linspace(-1.0, 1.0, basis_size - CURVE_DEGREE + 1)
    return np.concatenate([np.full(CURVE_DEGREE, -1.0), inner, np.full(CURVE_DEGREE, 1.0)])


def design(t: np.ndarray, basis_size: int) -> np.ndarray:
    """B-spline basis at t (clamped to [-1, 1]), shape (n, basis_size), dense."""
    t = np.clip(np.asarray(t, dtype=float), -1.0, 1.0)
    return BSpline.design_matrix(t, knot_vector(basis_size), CURVE_DEGREE).toarray()


def normalise(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return 2.0 * (np.asarray(x, dtype=float) - low) / (high - low) - 1.0


@dataclass(frozen=True)
class CurveModel:
    section: CurveModelSection
    table_t: np.ndarray  # (T,) normalised strains of the table
    table_loadings: np.ndarray  # (T, k) a(x) at the table strains
    table_share: np.ndarray  # (T,) r(x) = |a(x)|^2 at the table strains
    # Per covariate, True where it is read on a log scale: the correlation laws across
    # conditions (service.inference.curves_across) measure on the scale the network reads.
    log_covariates: tuple[bool, ...] = ()

    @classmethod
    def from_section(cls, section: CurveModelSection,
                     log_covariates: tuple[bool, ...] = ()) -> CurveModel:
        chol = np.tril(np.asarray(section.between_cholesky, dtype=float))
        gamma = np.asarray(section.within_log_variance, dtype=float)
        t = np.linspace(-1.0, 1.0, TABLE_POINTS)
        basis = design(t, gamma.size)
        factor = basis @ chol
        q = np.sum(factor * factor, axis=1)
        v = np.exp(basis @ gamma)
        loadings = factor / np.sqrt(q + v)[:, None]
        return cls(section, t, loadings, np.clip(np.sum(loadings**2, axis=1), 0.0, 1.0),
                   log_covariates)

    @classmethod
    def of(cls, spec: Manifest) -> CurveModel | None:
        """The manifest's curve model (None for models fitted without groups and for
        artifacts older than it)."""
        if spec.curve_model is None:
            return None
        return cls.from_section(spec.curve_model, tuple(c.transform == "log"
                                                        for c in spec.covariates or ()))

    @property
    def condition_correlation(self) -> float:
        """rho across conditions (service.inference.curves_across); 0 when not fitted."""
        return float(self.section.condition_correlation or 0.0)

    @property
    def rank(self) -> int:
        return int(self.table_loadings.shape[1])

    def _position(self, strain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        domain = self.section.domain
        t = np.clip(normalise(strain, domain.min, domain.max), -1.0, 1.0)
        step = 2.0 / (TABLE_POINTS - 1)
        index = np.minimum(((t + 1.0) / step).astype(np.int64), TABLE_POINTS - 2)
        return index, (t - self.table_t[index]) / step

    def loadings(self, strain: np.ndarray) -> np.ndarray:
        """a(x), shape (n, k): a . w with w ~ N(0, I) is the material's part of z(x)."""
        index, weight = self._position(np.asarray(strain, dtype=float).ravel())
        table = self.table_loadings
        return table[index] * (1.0 - weight)[:, None] + table[index + 1] * weight[:, None]

    def share(self, strain: np.ndarray) -> np.ndarray:
        """r(x): the between-material share of the variance at each strain (interpolated
        from the table: O(n) memory, so every plain predict can afford it)."""
        domain = self.section.domain
        t = normalise(np.asarray(strain, dtype=float).ravel(), domain.min, domain.max)
        return np.interp(t, self.table_t, self.table_share)


def scatter_split(curve: CurveModel, strain: np.ndarray, aleatoric_sd: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(between_material_sd, within_material_sd) of the population: per draw
    between_s = sigma_s sqrt(r), within_s = sigma_s sqrt(1 - r), so
    sqrt(mean_s between_s^2) = aleatoric_sd sqrt(r) (r does not depend on the draw)."""
    r = curve.share(strain)
    return aleatoric_sd * np.sqrt(r), aleatoric_sd * np.sqrt(1.0 - r)


class DrawNetwork(Protocol):
    """What the curve model needs of a posterior (service.inference.posterior.Posterior):
    its draw count, its widest layer and its per-draw forward pass. A protocol, because
    the posterior holds a curve model and so cannot be imported here without a cycle."""

    draws: int
    max_width: int

    def network_outputs(self, strain: np.ndarray, with_tangent: bool = False,
                        covariates: np.ndarray | None = None,
                        draws: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...


def draw_outputs(posterior: DrawNetwork, strain: np.ndarray, draws: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """mu_s(x) and sigma_s(x), each (draws, n), physical units (only `draws`, if given)."""
    mu, sigma, _ = posterior.network_outputs(strain, draws=draws)
    return mu, sigma


def sampled_draws(posterior: DrawNetwork, chosen: np.ndarray, count: int
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """The distinct draws `count` sampled curves use (evaluated alone: a few curves need a
    few draws, not all), each curve's index into them, and strains per block for them."""
    used, column = np.unique(chosen, return_inverse=True)
    step = max(1, _MAX_ELEMENTS // max(used.size * posterior.max_width, count, 1))
    return used, column, step


@dataclass(frozen=True)
class Observed:
    """One material's own measurements, in physical units."""

    strain: np.ndarray
    stress: np.ndarray


@dataclass(frozen=True)
class Conditioned:
    """Per draw s, the curve model's Gaussian update of w given a material's points:
    w | data ~ N(means[:, s], P^-1) with P the same for every draw (it depends on the
    loadings and noise at the observed strains only)."""

    means: np.ndarray  # (k, S)
    precision_factor: tuple[np.ndarray, bool]  # Cholesky factor of P (scipy cho_factor)
    inverse_root: np.ndarray  # (k, k) R with R R^T = P^-1


def condition(posterior: DrawNetwork, curve: CurveModel, observed: Observed) -> Conditioned:
    """The material's loadings given its observed points; 422 naming observed.stress when
    a stress, finite or not, is too far from every draw's curve to condition on."""
    mu, sigma = draw_outputs(posterior, observed.strain)
    with np.errstate(over="ignore", invalid="ignore"):
        z = (observed.stress[None, :] - mu) / sigma  # (S, n_o)
    if not np.all(np.isfinite(z)):  # 1e308 - mu or (1e300 - mu) / 1e-10 overflow
        raise too_extreme_to_condition()
    a = curve.loadings(observed.strain)  # (n_o, k)
    within = np.maximum(1.0 - np.sum(a * a, axis=1), 1e-12)
    scaled = a / within[:, None]
    precision = np.eye(curve.rank) + a.T @ scaled
    factor = cho_factor(precision, lower=True)
    means = cho_solve(factor, scaled.T @ z.T)
    # P = C C^T -> P^-1 = C^-T C^-1: R = C^-T.
    lower = np.tril(factor[0])
    root = solve_triangular(lower, np.eye(curve.rank), lower=True, trans="T")
    return Conditioned(means, factor, root)


def too_extreme_to_condition() -> InvalidInputError:
    return InvalidInputError(
        "observed.stress is too far from the model's curves to condition on (the update "
        "overflows)", [{"field": "observed.stress", "message": "too extreme to condition on"}])


@dataclass(frozen=True)
class CurvePrediction:
    """Summaries of one material's curve (population, or given its own points)."""

    mean: np.ndarray
    aleatoric_sd: np.ndarray
    epistemic_sd: np.ndarray
    between_material_sd: np.ndarray
    within_material_sd: np.ndarray

    @property
    def total_sd(self) -> np.ndarray:
        return np.hypot(self.aleatoric_sd, self.epistemic_sd)


def chunk_size(posterior: DrawNetwork, width: int) -> int:
    """Strains per block so strains x max(draws x width, width) stays bounded."""
    return max(1, _MAX_ELEMENTS // max(posterior.draws * posterior.max_width, width, 1))


def conditional_draws(posterior: DrawNetwork, curve: CurveModel, conditioned: Conditioned,
                      strain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw s at each strain: conditional mean, between variance and within variance
    of the material's stress, each (S, n)."""
    mu, sigma = draw_outputs(posterior, strain)
    a = curve.loadings(strain)
    r = np.sum(a * a, axis=1)
    mean = mu + sigma * (a @ conditioned.means).T
    remaining = np.sum((a @ conditioned.inverse_root) ** 2, axis=1)  # a P^-1 a^T
    var = sigma * sigma
    return mean, var * remaining[None, :], var * np.maximum(1.0 - r, 0.0)[None, :]


def conditional_predict(posterior: DrawNetwork, curve: CurveModel, strain: np.ndarray,
                        observed: Observed) -> CurvePrediction:
    """mean, SDs and the scatter split of the observed material's curve at `strain`.
    Epistemic: SD over draws of the conditional mean; aleatoric: sqrt(mean over draws of
    the conditional variance) = sqrt(between^2 + within^2)."""
    strain = np.asarray(strain, dtype=float).ravel()
    conditioned = condition(posterior, curve, observed)
    summary = ConditionalSummary(strain.size)
    step = chunk_size(posterior, 0)
    for start in range(0, strain.size, step):
        interrupt.checkpoint()
        part = slice(start, start + step)
        summary.store(part, *conditional_draws(posterior, curve, conditioned, strain[part]))
    return summary.prediction()


class ConditionalSummary:
    """The conditional answer at n strains, filled chunk by chunk from per-draw conditional
    means and variances (draws x strains): epistemic SD over the draws' means, aleatoric
    parts as the root of the mean variance."""

    def __init__(self, n: int) -> None:
        self.out = {key: np.empty(n) for key in ("mean", "epistemic_sd", "between",
                                                 "within")}

    def store(self, part: slice | np.ndarray, mean: np.ndarray, between: np.ndarray,
              within: np.ndarray) -> None:
        self.out["mean"][part] = mean.mean(axis=0)
        self.out["epistemic_sd"][part] = mean.std(axis=0)
        self.out["between"][part] = np.sqrt(between.mean(axis=0))
        self.out["within"][part] = np.sqrt(within.mean(axis=0))

    def prediction(self) -> CurvePrediction:
        out = self.out
        return CurvePrediction(out["mean"], np.hypot(out["between"], out["within"]),
                               out["epistemic_sd"], out["between"], out["within"])


def curve_samples(posterior: DrawNetwork, curve: CurveModel, strain: np.ndarray, count: int,
                  seed: int, observed: Observed | None = None,
                  test_noise: bool = True) -> np.ndarray:
    """`count` whole curves at `strain`, shape (len(strain), count). Column j: one
    posterior draw s_j, one material w_j (new, or drawn given `observed`) and its test
    noise: mu_s(x) + sigma_s(x) (a(x) . w_j + sqrt(1 - r(x)) e_j(x)). Same seed, strains
    and observations -> same curves. `test_noise=False` leaves the noise term out: the
    material's own law, smooth, which is what a solver's table needs (the same seed gives
    the same materials either way)."""
    strain = np.asarray(strain, dtype=float).ravel()
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, posterior.draws, size=count)
    w = rng.standard_normal((curve.rank, count))
    noise = rng.standard_normal((strain.size, count))
    if observed is not None:
        conditioned = condition(posterior, curve, observed)
        w = conditioned.means[:, chosen] + conditioned.inverse_root @ w
    out = np.empty((strain.size, count))
    used, column, step = sampled_draws(posterior, chosen, count)
    for start in range(0, strain.size, step):
        interrupt.checkpoint()
        part = slice(start, start + step)
        mu, sigma = draw_outputs(posterior, strain[part], used)
        a = curve.loadings(strain[part])
        within = np.sqrt(np.maximum(1.0 - np.sum(a * a, axis=1), 0.0))
        z = a @ w
        if test_noise:
            z = z + within[:, None] * noise[part]
        out[part] = mu[column].T + sigma[column].T * z
    return out
