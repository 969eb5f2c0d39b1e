"""Fit the curve model (service.inference.curves) to the training materials' standardised residuals.

z_m = (y_m - mu(x_m)) / sigma(x_m) per material m, with mu the posterior-mean curve and
sigma the aleatoric SD the service reports. The model: z_m ~ N(0, K_m),
K_m = Phi_m Sigma Phi_m^T + diag(exp(Phi_m gamma)), Phi_m the B-spline basis at the
material's strains. Sigma = L L^T and gamma maximise the exact Gaussian likelihood of all
materials' residual vectors (L-BFGS with the analytic gradient:
dNLL/dK_m = (K_m^-1 - alpha alpha^T)/2, alpha = K_m^-1 z_m, then the chain rule to L and
gamma). Materials that share their strains share K, so a group tested on one grid costs
one Cholesky factorisation per evaluation. A smoothness penalty on gamma (a random-walk
prior on the log test-noise spline, NOISE_SMOOTHING) keeps the noise from collapsing where
materials tested at scattered strains leave few points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

from service.inference.curves import design, normalise
from service.inference.posterior import Posterior
from service.manifest import CURVE_MODEL_KIND, LOG_VARIANCE_BOUND
from training.groupings import curve_labels

# Basis functions over the training domain: enough for the sharp change of the
# between-material share near zero strain; chosen by held-out likelihood (docs/curves.md).
DEFAULT_BASIS = 12
# Points per material entering the likelihood (evenly thinned beyond): bounds the cost
# of one evaluation at any test density; neighbouring points of a smooth curve add little.
MAX_POINTS_PER_MATERIAL = 60
MIN_MATERIALS = 3
# Penalty on the roughness of the log test-noise spline (second differences of gamma): a
# random-walk prior. Without it, materials tested at a few scattered strains each let the
# noise variance collapse where few points fall (the between-material part took it over):
# within-material SD 32-41% off the test noise on Gent/Ogden groups of 6-20 random strains
# per material, 23-29% with it, and held-out likelihood up 0.02-0.10 nats per point; on
# groups of 50 strains it costs <= 0.006 nats per point (docs/covariates.md).
NOISE_SMOOTHING = 10.0


def residual_curves(posterior: Posterior, x: np.ndarray, y: np.ndarray,
                    groups: np.ndarray, covariates: np.ndarray | None = None
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(strains, z) per material (per material and condition with covariates) with at
    least 2 points, strains sorted."""
    return [(strain, z) for strain, z, _, _ in
            material_residual_curves(posterior, x, y, groups, covariates)]


def material_residual_curves(posterior: Posterior, x: np.ndarray, y: np.ndarray,
                             groups: np.ndarray, covariates: np.ndarray | None = None
                             ) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """`residual_curves`, each with its material (index into the sorted group labels) and
    its condition (index into the distinct covariate rows; 0 without covariates)."""
    prediction = posterior.predict(x, covariates=covariates)
    z = (y - prediction.mean) / prediction.aleatoric_sd
    material = np.unique(groups, return_inverse=True)[1].reshape(-1)
    condition = (np.zeros(x.size, dtype=np.int64) if covariates is None
                 else np.unique(covariates, axis=0, return_inverse=True)[1].reshape(-1))
    curves = []
    for rows in curve_rows(groups, covariates):
        if rows.size < 2:
            continue
        rows = rows[np.argsort(x[rows], kind="stable")]
        if rows.size > MAX_POINTS_PER_MATERIAL:
            rows = rows[np.linspace(0, rows.size - 1, MAX_POINTS_PER_MATERIAL).round()
                        .astype(int)]
        curves.append((x[rows], z[rows], int(material[rows[0]]), int(condition[rows[0]])))
    return curves


class _Batch:
    """Materials measured at the same strains: one basis, residuals stacked (n_m, d)."""

    def __init__(self, basis: np.ndarray, z: np.ndarray) -> None:
        self.basis = basis
        self.z = z
        self.scatter = z.T @ z  # sum over materials of z z^T


def _batches(curves: list[tuple[np.ndarray, np.ndarray]], low: float, high: float,
             basis_size: int) -> list[_Batch]:
    grouped: dict[bytes, list[int]] = {}
    for i, (x, _) in enumerate(curves):
        grouped.setdefault(x.tobytes(), []).append(i)
    batches = []
    for members in grouped.values():
        x = curves[members[0]][0]
        basis = design(normalise(x, low, high), basis_size)
        batches.append(_Batch(basis, np.stack([curves[i][1] for i in members])))
    return batches


def _unpack(theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.tril_indices(k)
    chol = np.zeros((k, k))
    chol[rows, cols] = theta[: rows.size]
    return chol, theta[rows.size:]


def negative_log_likelihood(theta: np.ndarray, batches: list[_Batch], k: int,
                            smoothing: float = NOISE_SMOOTHING) -> tuple[float, np.ndarray]:
    """Penalised NLL of all residual curves (without the 2 pi constant) and its gradient:
    the Gaussian NLL plus smoothing/2 |D2 gamma|^2, D2 the second differences of the
    log-noise coefficients."""
    chol, gamma = _unpack(theta, k)
    sigma = chol @ chol.T
    second = np.diff(gamma, 2)
    total = 0.5 * smoothing * float(second @ second)
    d_gamma = smoothing * _second_difference_transpose(second, k)
    d_sigma = np.zeros((k, k))
    for batch in batches:
        phi = batch.basis
        noise = np.exp(phi @ gamma)
        cov = phi @ sigma @ phi.T + np.diag(noise)
        try:
            factor = cho_factor(cov, lower=True)
        except np.linalg.LinAlgError:
            return 1e300, np.zeros_like(theta)
        count = batch.z.shape[0]
        inverse = cho_solve(factor, np.eye(cov.shape[0]))
        weighted = inverse @ batch.scatter @ inverse
        total += 0.5 * (np.sum(inverse * batch.scatter)
                        + count * 2.0 * np.sum(np.log(np.diag(factor[0]))))
        grad_cov = 0.5 * (count * inverse - weighted)
        d_sigma += phi.T @ grad_cov @ phi
        d_gamma += phi.T @ (np.diag(grad_cov) * noise)
    d_chol = 2.0 * d_sigma @ chol
    rows, cols = np.tril_indices(k)
    return total, np.concatenate([d_chol[rows, cols], d_gamma])


def _second_difference_transpose(second: np.ndarray, k: int) -> np.ndarray:
    """D^T v for the second-difference operator D (k-2 x k)."""
    out = np.zeros(k)
    out[:-2] += second
    out[1:-1] -= 2.0 * second
    out[2:] += second
    return out


def _start(batches: list[_Batch], k: int) -> np.ndarray:
    """Least-squares spline coefficients of every curve: their covariance starts Sigma,
    the mean squared misfit starts the noise."""
    coefficients, misfit, points = [], 0.0, 0
    for batch in batches:
        phi = batch.basis
        gram = phi.T @ phi + 1e-3 * np.eye(k)
        c = np.linalg.solve(gram, phi.T @ batch.z.T).T  # (n_m, k)
        coefficients.append(c)
        misfit += float(np.sum((batch.z - c @ phi.T) ** 2))
        points += batch.z.size
    c = np.concatenate(coefficients)
    cov = np.cov(c, rowvar=False) if c.shape[0] > 1 else np.eye(k)
    chol = np.linalg.cholesky(cov + 1e-3 * np.eye(k))
    rows, cols = np.tril_indices(k)
    noise = max(misfit / max(points, 1), 1e-3)
    return np.concatenate([chol[rows, cols], np.full(k, np.log(noise))])


def fit_curve_model(curves: list[tuple[np.ndarray, np.ndarray]], low: float, high: float,
                    basis_size: int = DEFAULT_BASIS, max_iterations: int = 1000,
                    smoothing: float = NOISE_SMOOTHING) -> dict[str, Any] | None:
    """The manifest's `curve_model` section, or None with fewer than MIN_MATERIALS."""
    if len(curves) < MIN_MATERIALS:
        return None
    batches = _batches(curves, low, high, basis_size)
    theta0 = _start(batches, basis_size)
    # The manifest accepts log variances within +-LOG_VARIANCE_BOUND: a basis function
    # that no curve of a small fold reaches would otherwise run off towards -inf.
    chol_entries = theta0.size - basis_size
    bounds = ([(None, None)] * chol_entries
              + [(-LOG_VARIANCE_BOUND, LOG_VARIANCE_BOUND)] * basis_size)
    theta0[chol_entries:] = np.clip(theta0[chol_entries:], -LOG_VARIANCE_BOUND,
                                    LOG_VARIANCE_BOUND)
    result = minimize(negative_log_likelihood, theta0, args=(batches, basis_size, smoothing),
                      jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": max_iterations, "ftol": 1e-10})
    chol, gamma = _unpack(result.x, basis_size)
    points = sum(b.z.size for b in batches)
    return {
        "kind": CURVE_MODEL_KIND,
        "domain": {"min": float(low), "max": float(high)},
        "degree": 3,
        "between_cholesky": chol.tolist(),
        "within_log_variance": gamma.tolist(),
        "fit": {"materials": len(curves), "points": int(points),
                "log_likelihood_per_point": round(
                    -negative_log_likelihood(result.x, batches, basis_size, 0.0)[0] / points
                    - 0.5 * np.log(2 * np.pi), 5),
                "iterations": int(result.nit), "converged": bool(result.success)},
    }


def curve_rows(groups: np.ndarray, covariates: np.ndarray | None = None
               ) -> list[np.ndarray]:
    """Row indices of each curve: a material's rows, or with covariates a material's rows
    at one condition."""
    curve = curve_labels(groups, covariates)
    return [np.flatnonzero(curve == index) for index in range(int(curve.max()) + 1)]


def fit_for_posterior(posterior: Posterior, x: np.ndarray, y: np.ndarray,
                      groups: np.ndarray | None, basis_size: int = DEFAULT_BASIS,
                      covariates: np.ndarray | None = None) -> dict[str, Any] | None:
    """Fit the curve model to a fitted posterior's training data (None without groups)."""
    if groups is None:
        return None
    curves = material_residual_curves(posterior, x, y, np.asarray(groups), covariates)
    low, high = float(np.min(x)), float(np.max(x))
    section = fit_curve_model([(strain, z) for strain, z, _, _ in curves], low, high,
                              basis_size)
    if section is not None and covariates is not None:
        from training.condition_correlation import fit_condition_law

        conditions = posterior.conditions
        assert conditions is not None  # a posterior fitted with covariates has them
        law = fit_condition_law(curves, section, basis_size,
                                conditions.normalise(np.unique(covariates, axis=0)))
        section["condition_correlation"] = law.rho
        if law.length_scale is not None:  # standardised units -> each covariate's own
            section["condition_length_scales"] = [law.length_scale * float(s)
                                                  for s in conditions.scale]
        if law.slope_scales is not None and law.slope_centre is not None:
            section["condition_slope_scales"] = [v * float(s) for v, s in
                                                 zip(law.slope_scales, conditions.scale,
                                                     strict=True)]
            section["condition_slope_centre"] = [float(m) + v * float(s) for v, m, s in
                                                 zip(law.slope_centre, conditions.mean,
                                                     conditions.scale, strict=True)]
        if law.rhos is not None:
            section["condition_correlations"] = law.rhos
        summary = law.summary
        section["fit"]["condition_correlation"] = summary
    return section
