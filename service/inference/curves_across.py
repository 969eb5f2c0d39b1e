"""One material at several conditions (models with covariates): its random effect shared
across conditions where the data show it is.

Why one module of this size: conditioning, sampling and quantiles across conditions share
the one Gaussian algebra below, for every correlation law the manifest may hold.

The curve model (service.inference.curves) describes a material at one condition:
z(x) = a(x) . w + sqrt(1 - r(x)) e(x), w ~ N(0, I_k). A material tested at several
conditions has one w_c per condition c:

    w_c = sqrt(rho) w + sqrt(1 - rho) u_c,     w, u_c ~ N(0, I_k), all independent

so every w_c is N(0, I_k) - every marginal stays the BNN's and each condition alone is the
one-condition model - while Corr(w_c, w_c') = rho I_k for c != c'. rho = 1: the material's
standardised deviation from the mean curve is the same at every condition; rho = 0: its
curves at different conditions are unrelated. rho (`curve_model.condition_correlation`) is
fitted by maximum likelihood on training materials tested at several conditions
(training.curves); where no material was, it is 0 (docs/covariates.md says why).

Conditioning is exact Gaussian algebra on theta = [w; u_d for each observed condition d]
(dimension k (1 + J)). A point i at condition d_i sees
z_i = a(x_i) (sqrt(rho) w + sqrt(1 - rho) u_{d_i}) + sqrt(1 - r(x_i)) e_i, so
theta | points ~ N(m_s, P^-1) with P = I + H^T N^-1 H (the same for every posterior draw
s) and m_s = P^-1 H^T N^-1 z_s. At a target condition t, w_t = T_t theta plus, when no
point was observed at t, a fresh sqrt(1 - rho) u_t ~ N(0, (1 - rho) I) of its own (shared
by all strains at t within one sampled curve).

A correlation that decays with the distance between conditions
(`curve_model.condition_length_scales`, l_j per covariate): the effects at any set of
conditions are N(0, R (x) I_k) with R = rho0 K + (1 - rho0) I, K[c, c'] =
exp(-sum_j ((c_j - c'_j) / l_j)^2 / 2) - a Gaussian kernel, positive semi-definite, so R
is for 0 <= rho0 <= 1, with 1 on its diagonal (every marginal stays the BNN's). Then theta
= eta, the whitened effects at the J observed conditions O: w_O = (G (x) I_k) eta with G
G^T = R_OO (G = Q Lambda^1/2 from its eigendecomposition, so a singular R_OO - two
observed conditions almost equal, rho0 = 1 - is fine). At a target t, w_t = (c_t (x) I_k)
theta + sqrt(1 - |c_t|^2) u_t with c_t = R_tO Q Lambda^-1/2; targets without observed
points share their conditional covariance R_TT - C C^T (sampled jointly). Every l_j -> inf
is the one-rho law above, which keeps its own code path (an artifact without length scales
answers as before).

One rho per component (`curve_model.condition_correlations`, no length scales): the
material's deviation has directions that carry over between conditions to different
degrees (on the make-data generator, the compound's modulus offset is shared but a
per-specimen offset is not; a shape term such as C01/C10 is shared whole), and one rho
for all of them is pulled towards the least shared. With V the principal components of
the loadings over the strain domain (`component_basis`) and rho_j one per component,

    w_c = S w + F u_c,   S = V diag(sqrt(rho_j)) V^T,   F = V diag(sqrt(1 - rho_j)) V^T

so S^2 + F^2 = I (every marginal stays the BNN's) and Cov(w_c, w_c') = V diag(rho_j) V^T.
Every rho_j equal is the one-rho law; the conditioning is the same algebra with S and F in
place of sqrt(rho) I and sqrt(1 - rho) I.

Random slopes (`curve_model.condition_slope_scales` and `condition_slope_centre`): a
material's effect linear in the covariates, w_c = w_0 + sum_j s_j(c) w_j; the decaying
law's algebra with R from `slope_correlation` (`ConditionKernel` holds either kernel).

"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from service.inference import interrupt
from service.inference.conditions import distinct, on_read_scale
from service.inference.curves import (
    ConditionalSummary,
    CurveModel,
    CurvePrediction,
    DrawNetwork,
    Observed,
    chunk_size,
    sampled_draws,
    too_extreme_to_condition,
)

# Distinct conditions observed points may come from: theta has k (1 + J) entries.
MAX_OBSERVED_CONDITIONS = 16


class ConditionNetwork(Protocol):
    """What conditioning across conditions needs of a posterior with covariates
    (service.inference.posterior.Posterior): its draws and a strain-only view per
    condition."""

    draws: int
    max_width: int

    def at(self, condition: np.ndarray) -> DrawNetwork: ...


def correlation(first: np.ndarray, second: np.ndarray, rho: float,
                length_scales: np.ndarray) -> np.ndarray:
    """R between rows of conditions (physical units): rho0 exp(-d^2 / 2) with d the
    distance in length-scale units between different conditions, 1 between equal ones."""
    gap = (first[:, None, :] - second[None, :, :]) / length_scales
    squared = np.sum(gap * gap, axis=2)
    return np.where(squared == 0.0, 1.0, rho * np.exp(-0.5 * squared))


def slope_correlation(first: np.ndarray, second: np.ndarray, rho: float,
                      scales: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """R between rows of conditions (physical units) when a material's effect is linear
    in the covariates, w_c = w_0 + sum_j s_j(c) w_j with s_j(c) = (c_j - centre_j) /
    scale_j and w_0, w_j independent N(0, I): Cov = 1 + s(c) . s(c'), taken to a
    correlation (each condition's own variance is the BNN's), times rho0 between
    different conditions, 1 between equal ones. Materials whose slopes differ cross over,
    so conditions on opposite sides of the centre can correlate weakly or negatively."""
    a = (first - centre) / scales
    b = (second - centre) / scales
    cov = 1.0 + a @ np.swapaxes(b, -1, -2)  # rows (..., n, k): batches of conditions too
    norm = np.sqrt((1.0 + np.sum(a * a, axis=-1))[..., :, None]
                   * (1.0 + np.sum(b * b, axis=-1))[..., None, :])
    same = np.all(first[..., :, None, :] == second[..., None, :, :], axis=-1)
    return np.where(same, 1.0, rho * cov / norm)


@dataclass(frozen=True)
class ConditionKernel:
    """A correlation law that depends on where the two conditions are: decaying with their
    distance (`length_scales`) or a random slope in the covariates (`slope_scales` and
    `slope_centre`), in the covariates' physical units (units of ln(value) for a
    covariate read on a log scale)."""

    length_scales: np.ndarray | None = None
    slope_scales: np.ndarray | None = None
    slope_centre: np.ndarray | None = None
    # Covariates read on a log scale: their parameters are in units of ln(value).
    log: tuple[bool, ...] = ()

    @classmethod
    def of(cls, curve: CurveModel) -> ConditionKernel | None:
        section = curve.section
        log = curve.log_covariates
        if section.condition_length_scales is not None:
            return cls(length_scales=np.asarray(section.condition_length_scales, dtype=float),
                       log=log)
        if section.condition_slope_scales is not None:
            assert section.condition_slope_centre is not None  # the manifest checks both
            return cls(slope_scales=np.asarray(section.condition_slope_scales, dtype=float),
                       slope_centre=np.asarray(section.condition_slope_centre, dtype=float),
                       log=log)
        return None

    @property
    def covariates(self) -> int:
        scales = self.length_scales if self.length_scales is not None else self.slope_scales
        assert scales is not None
        return scales.size

    def correlation(self, first: np.ndarray, second: np.ndarray, rho: float) -> np.ndarray:
        """R between rows of conditions given in physical units."""
        log = np.array(self.log, dtype=bool)
        first, second = on_read_scale(first, log), on_read_scale(second, log)
        if self.length_scales is not None:
            return correlation(first, second, rho, self.length_scales)
        assert self.slope_scales is not None and self.slope_centre is not None
        return slope_correlation(first, second, rho, self.slope_scales, self.slope_centre)


def component_basis(table_loadings: np.ndarray) -> np.ndarray:
    """V (k, k): eigenvectors of the mean of a(x)^T a(x) over the strain table, by
    decreasing share of the between-material variance they carry. Component j's share is
    the mean over the domain of (a(x) . V_j)^2; its sign and, among components of equal
    share, its order do not matter (V diag(rho) V^T is the same)."""
    gram = table_loadings.T @ table_loadings / table_loadings.shape[0]
    values, vectors = np.linalg.eigh(gram)
    return vectors[:, np.argsort(values, kind="stable")[::-1]]


def component_roots(curve: CurveModel) -> tuple[np.ndarray, np.ndarray] | None:
    """(S, F) of the per-component law, or None when the curve model has one rho."""
    rhos = curve.section.condition_correlations
    if rhos is None:
        return None
    vectors = component_basis(curve.table_loadings)
    values = np.clip(np.asarray(rhos, dtype=float), 0.0, 1.0)
    return ((vectors * np.sqrt(values)) @ vectors.T,
            (vectors * np.sqrt(1.0 - values)) @ vectors.T)


def _symmetric_root(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, Lambda) of a PSD matrix, eigenvalues below round-off dropped."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > 1e-12 * max(float(values.max(initial=0.0)), 1.0)
    return vectors[:, keep], values[keep]


@dataclass(frozen=True)
class AcrossConditioned:
    """theta | observed points ~ N(means[:, s], R R^T) per posterior draw s."""

    rho: float
    rank: int
    observed_conditions: np.ndarray  # (J, k) distinct conditions of the observed points
    means: np.ndarray  # (k (1 + J), S); with a kernel (k r, S), r = rank of R_OO
    inverse_root: np.ndarray  # (D, D), D = means.shape[0]
    kernel: ConditionKernel | None = None  # None: one rho for every pair
    whitening: np.ndarray | None = None  # (J, r) Q Lambda^-1/2: c_t = R_tO whitening
    roots: tuple[np.ndarray, np.ndarray] | None = None  # (S, F): one rho per component

    def _coefficients(self, conditions: np.ndarray) -> np.ndarray:
        """c_t per target row (T, r) under the decaying law."""
        assert self.kernel is not None and self.whitening is not None
        if not self.observed_conditions.size:
            return np.zeros((conditions.shape[0], 0))
        return self.kernel.correlation(conditions, self.observed_conditions,
                                       self.rho) @ self.whitening

    def target(self, condition: np.ndarray) -> tuple[np.ndarray, float | np.ndarray]:
        """(T, fresh): w_t = T theta + fresh u_t at condition t, u_t ~ N(0, I) new (fresh
        a number, or the matrix F with one rho per component)."""
        k = self.rank
        if self.kernel is not None:
            c = self._coefficients(np.asarray(condition, dtype=float).reshape(1, -1))[0]
            return (np.kron(c[None, :], np.eye(k)),
                    float(np.sqrt(max(1.0 - float(c @ c), 0.0))))
        blocks = 1 + self.observed_conditions.shape[0]
        transform = np.zeros((k, k * blocks))
        shared, own = ((np.sqrt(self.rho) * np.eye(k), np.sqrt(1.0 - self.rho) * np.eye(k))
                       if self.roots is None else self.roots)
        transform[:, :k] = shared
        match = (np.flatnonzero(np.all(self.observed_conditions == condition, axis=1))
                 if self.observed_conditions.size else np.empty(0, dtype=np.int64))
        if match.size:
            start = k * (1 + int(match[0]))
            transform[:, start:start + k] = own
            return transform, 0.0
        if self.roots is not None:
            return transform, own
        return transform, float(np.sqrt(1.0 - self.rho))

    def fresh_share(self, a: np.ndarray, fresh: float | np.ndarray, r: np.ndarray
                    ) -> np.ndarray:
        """|a(x) F|^2 per strain: the variance of the target's own new effect in z."""
        if isinstance(fresh, np.ndarray):
            return np.sum((a @ fresh) ** 2, axis=1)
        return fresh**2 * r

    def effects(self, conditions: np.ndarray, theta: np.ndarray,
                normals: np.ndarray) -> np.ndarray:
        """w at each distinct target condition (T, k, count) for sampled theta (D, count),
        from standard normals (T, k, count) for the parts the observed points leave free."""
        if self.kernel is None:
            out = np.empty_like(normals)
            for d, condition in enumerate(conditions):
                transform, fresh = self.target(condition)
                out[d] = transform @ theta + (fresh @ normals[d]
                                              if isinstance(fresh, np.ndarray)
                                              else fresh * normals[d])
            return out
        c = self._coefficients(conditions)  # (T, r)
        left = self.kernel.correlation(conditions, conditions, self.rho) - c @ c.T
        vectors, values = _symmetric_root(left)  # (T, r') with r' <= T
        free = np.einsum("tv,vkc->tkc", vectors * np.sqrt(values), normals[:values.size])
        shared = np.einsum("tr,rkc->tkc", c, theta.reshape(c.shape[1], self.rank,
                                                            normals.shape[2]))
        return shared + free


def prior(curve: CurveModel, rho: float, draws: int) -> AcrossConditioned:
    """No points observed: theta = w ~ N(0, I) (with a kernel: theta is empty)."""
    k = curve.rank
    kernel = ConditionKernel.of(curve)
    if kernel is not None:
        return AcrossConditioned(rho, k, np.empty((0, kernel.covariates)),
                                 np.zeros((0, draws)), np.zeros((0, 0)), kernel,
                                 np.zeros((0, 0)))
    return AcrossConditioned(rho, k, np.empty((0, 0)), np.zeros((k, draws)), np.eye(k),
                             roots=component_roots(curve))


def condition_across(posterior: ConditionNetwork, curve: CurveModel, rho: float,
                     observed: Observed, observed_conditions: np.ndarray
                     ) -> AcrossConditioned:
    """The posterior of theta given one material's points, each at its own condition
    (observed_conditions: (n_o, k), physical units)."""
    unique, index = distinct(observed_conditions)
    if unique.shape[0] > MAX_OBSERVED_CONDITIONS:
        raise ValueError(f"observed points come from {unique.shape[0]} distinct conditions; "
                         f"at most {MAX_OBSERVED_CONDITIONS} are supported")
    k, blocks = curve.rank, 1 + unique.shape[0]
    n = observed.strain.size
    z = np.empty((posterior.draws, n))
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        mu, sigma, _ = posterior.at(condition).network_outputs(observed.strain[rows])
        with np.errstate(over="ignore", invalid="ignore"):
            z[:, rows] = (observed.stress[None, rows] - mu) / sigma
    if not np.all(np.isfinite(z)):
        raise too_extreme_to_condition()
    a = curve.loadings(observed.strain)  # (n, k)
    within = np.maximum(1.0 - np.sum(a * a, axis=1), 1e-12)
    kernel = ConditionKernel.of(curve)
    if kernel is not None:
        vectors, values = _symmetric_root(kernel.correlation(unique, unique, rho))
        root = vectors * np.sqrt(values)  # G (J, r): w_d = (G[d] (x) I_k) eta
        # Row i of the design: a_i (x) G[d_i], eta ordered block by block.
        design = (root[index][:, :, None] * a[:, None, :]).reshape(n, -1)
        return _posterior(design, within, z, AcrossConditioned(
            rho, k, unique, np.empty(0), np.empty(0), kernel,
            vectors / np.sqrt(values)))
    roots = component_roots(curve)
    design = np.zeros((n, k * blocks))
    design[:, :k] = np.sqrt(rho) * a if roots is None else a @ roots[0]
    for d in range(unique.shape[0]):
        rows = np.flatnonzero(index == d)
        design[rows, k * (1 + d):k * (2 + d)] = (np.sqrt(1.0 - rho) * a[rows] if roots is None
                                                 else a[rows] @ roots[1])
    return _posterior(design, within, z, AcrossConditioned(
        rho, k, unique, np.empty(0), np.empty(0), roots=roots))


def _posterior(design: np.ndarray, within: np.ndarray, z: np.ndarray,
               law: AcrossConditioned) -> AcrossConditioned:
    """theta | z for z = design theta + noise of variance `within`, theta ~ N(0, I)."""
    size = design.shape[1]
    scaled = design / within[:, None]
    precision = np.eye(size) + design.T @ scaled
    factor = cho_factor(precision, lower=True)
    means = cho_solve(factor, scaled.T @ z.T)
    lower = np.tril(factor[0])
    root = solve_triangular(lower, np.eye(size), lower=True, trans="T")
    return replace(law, means=means, inverse_root=root)


def conditional_draws_at(posterior: ConditionNetwork, curve: CurveModel,
                         state: AcrossConditioned, strain: np.ndarray, condition: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw s at strains of one target condition: the material's conditional mean,
    between variance and within variance of its stress, each (S, n)."""
    mu, sigma, _ = posterior.at(condition).network_outputs(strain)
    a = curve.loadings(strain)
    r = np.sum(a * a, axis=1)
    transform, fresh = state.target(condition)
    loading = a @ transform  # (n, D)
    mean = mu + sigma * (loading @ state.means).T
    remaining = (np.sum((loading @ state.inverse_root) ** 2, axis=1)
                 + state.fresh_share(a, fresh, r))
    var = sigma * sigma
    return mean, var * remaining[None, :], var * np.maximum(1.0 - r, 0.0)[None, :]


def conditional_predict_across(posterior: ConditionNetwork, curve: CurveModel,
                               state: AcrossConditioned, strain: np.ndarray,
                               conditions: np.ndarray) -> CurvePrediction:
    """`curves.conditional_predict` with the strains at their own conditions ((n, k))."""
    strain = np.asarray(strain, dtype=float).ravel()
    summary = ConditionalSummary(strain.size)
    unique, index = distinct(conditions)
    for d, condition in enumerate(unique):
        rows = np.flatnonzero(index == d)
        step = chunk_size(posterior, 0)
        for start in range(0, rows.size, step):
            interrupt.checkpoint()
            part = rows[start:start + step]
            summary.store(part, *conditional_draws_at(posterior, curve, state, strain[part],
                                                      condition))
    return summary.prediction()


def curve_samples_across(posterior: ConditionNetwork, curve: CurveModel,
                         state: AcrossConditioned, strain: np.ndarray,
                         conditions: np.ndarray, count: int, seed: int,
                         test_noise: bool = True) -> np.ndarray:
    """`count` whole materials, shape (len(strain), count): column j is one posterior
    draw s_j and one material - its theta_j (given the observed points, or new) and, at
    each target condition without observed points, its own u - measured at every
    requested (strain, condition) with its test noise. Same seed, strains, conditions and
    observations -> same curves."""
    strain = np.asarray(strain, dtype=float).ravel()
    unique, index = distinct(conditions)
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, posterior.draws, size=count)
    theta = state.means[:, chosen] + state.inverse_root @ rng.standard_normal(
        (state.means.shape[0], count))
    noise = rng.standard_normal((strain.size, count))
    fresh_effects = rng.standard_normal((unique.shape[0], state.rank, count))
    effects = state.effects(unique, theta, fresh_effects)
    out = np.empty((strain.size, count))
    used, column, step = sampled_draws(posterior, chosen, count)
    for d, condition in enumerate(unique):
        w = effects[d]
        view = posterior.at(condition)
        rows = np.flatnonzero(index == d)
        for start in range(0, rows.size, step):
            interrupt.checkpoint()
            part = rows[start:start + step]
            mu, sigma, _ = view.network_outputs(strain[part], draws=used)
            a = curve.loadings(strain[part])
            z = a @ w
            if test_noise:
                within = np.sqrt(np.maximum(1.0 - np.sum(a * a, axis=1), 0.0))
                z = z + within[:, None] * noise[part]
            out[part] = mu[column].T + sigma[column].T * z
    return out
