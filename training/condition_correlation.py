"""Fit rho, the correlation of one material's random effects at two different conditions
(service.inference.curves_across), by maximum likelihood.

The curve model's L and gamma are fitted first on every (material, condition) curve as if
each were its own material (training.curves): each curve's own distribution does not
depend on rho, so that is a valid (composite) likelihood for them. rho then maximises the
exact joint likelihood of the materials with curves at two or more conditions, L and
gamma held fixed. For a material with curves z_d (d = 1..J), A_d = Phi_d L and
V_d = diag(exp(Phi_d gamma)):

    z = (z_1..z_J) ~ N(0, B + rho A A^T),   B = blockdiag(K_d),  K_d = (1 - rho) A_d A_d^T + V_d

and by the matrix determinant lemma and Woodbury, with M = sum_d A_d^T K_d^-1 A_d and
b = sum_d A_d^T K_d^-1 z_d (k x k and k, whatever J and the points per curve):

    log det = sum_d log det K_d + log det(I + rho M)
    z^T (..)^-1 z = sum_d z_d^T K_d^-1 z_d - rho b^T (I + rho M)^-1 b

Curves measured at the same strains share K_d, so each evaluation costs one Cholesky
factorisation per distinct strain grid.

Before rho is fitted, each condition's mean residual curve (a least-squares spline
through all materials' z at that condition) is taken out of its curves. That mean is the
network's own error at the condition, common to every material there and different at
each condition; left in, it reads as material variation that does not carry over between
conditions. On a make-data group (40 compounds x 5 temperatures) z correlates 0.95 across
temperatures at a strain; rho was 0.65 with the condition means left in and 0.98 without.

rho is found by bounded scalar minimisation on [0, 1], the ends included. With no material
tested at two conditions rho is not identified; it is then 0 (docs/covariates.md says why).

The richer laws - a correlation decaying with the condition distance, random slopes in
the covariates, one rho per component of the loadings - are fitted the same way, and
`fit_condition_law` keeps the one held-out materials predict best with.

Why one module of this size: the four correlation laws (one rho, decaying, random slopes,
one per component) share the likelihood's algebra and the choice between them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize, minimize_scalar

from service.inference.curves import design, normalise


class _Grid:
    """Curves measured at the same strains: their basis, loadings and noise variance."""

    def __init__(self, strain: np.ndarray, chol: np.ndarray, gamma: np.ndarray,
                 low: float, high: float) -> None:
        phi = design(normalise(strain, low, high), gamma.size)
        self.loadings = phi @ chol  # A (n, k)
        self.noise = np.exp(phi @ gamma)  # diag V (n,)


def _material_terms(rho: float, grids: dict[bytes, _Grid],
                    curves: list[tuple[bytes, np.ndarray, int]]
                    ) -> dict[int, list[Any]]:
    """Per material: [sum log det K_d, M, b, sum z^T K^-1 z, points]."""
    solved: dict[bytes, tuple[Any, float, np.ndarray]] = {}
    for key, grid in grids.items():
        a = grid.loadings
        cov = (1.0 - rho) * a @ a.T + np.diag(grid.noise)
        factor = cho_factor(cov, lower=True)
        solved[key] = (factor, 2.0 * float(np.sum(np.log(np.diag(factor[0])))),
                       cho_solve(factor, a))
    terms: dict[int, list[Any]] = {}
    for key, z, material in curves:
        factor, log_det, k_inv_a = solved[key]
        a = grids[key].loadings
        entry = terms.setdefault(material, [0.0, 0.0, 0.0, 0.0, 0])
        entry[0] += log_det
        entry[1] = entry[1] + a.T @ k_inv_a
        entry[2] = entry[2] + k_inv_a.T @ z
        entry[3] += float(z @ cho_solve(factor, z))
        entry[4] += z.size
    return terms


def joint_negative_log_likelihood(rho: float, grids: dict[bytes, _Grid],
                                  curves: list[tuple[bytes, np.ndarray, int]]) -> float:
    """NLL (without the 2 pi constant) of the materials' curves given rho."""
    total = 0.0
    for log_det, m, b, quad, _ in _material_terms(rho, grids, curves).values():
        inner = np.eye(m.shape[0]) + rho * m
        factor = cho_factor(inner, lower=True)
        total += 0.5 * (log_det + 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
                        + quad - rho * float(b @ cho_solve(factor, b)))
    return total


def without_condition_means(curves: list[tuple[np.ndarray, np.ndarray, int, int]],
                            low: float, high: float, basis_size: int
                            ) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """The curves less their condition's mean residual curve, where at least two
    materials were tested at the condition (a single curve is its own mean)."""
    by_condition: dict[int, list[int]] = defaultdict(list)
    for index, (_, _, _, condition) in enumerate(curves):
        by_condition[condition].append(index)
    out = list(curves)
    for members in by_condition.values():
        if len(members) < 2:
            continue
        bases = [design(normalise(curves[i][0], low, high), basis_size) for i in members]
        stacked = np.concatenate(bases)
        gram = stacked.T @ stacked + 1e-6 * np.eye(basis_size)
        coefficients = np.linalg.solve(gram, stacked.T @ np.concatenate(
            [curves[i][1] for i in members]))
        for i, basis in zip(members, bases, strict=True):
            strain, z, material, condition = curves[i]
            out[i] = (strain, z - basis @ coefficients, material, condition)
    return out


def fit_condition_correlation(curves: list[tuple[np.ndarray, np.ndarray, int, int]],
                              section: dict[str, Any], basis_size: int
                              ) -> tuple[float, dict[str, Any]]:
    """rho and a summary for `curve_model.fit`, from (strains, z, material, condition)
    curves and the fitted curve-model section (its L, gamma and domain)."""
    several = materials_at_several_conditions(curves)
    if not several:
        return 0.0, {"identified": False, "materials_at_several_conditions": 0,
                     "rho": 0.0}
    chol = np.tril(np.asarray(section["between_cholesky"], dtype=float))
    gamma = np.asarray(section["within_log_variance"], dtype=float)
    grids, curves_kept = _curves_at_several_conditions(curves, section, basis_size, chol,
                                                       gamma)
    kept = [(key, z, material) for key, z, material, _ in curves_kept]
    points = sum(z.size for _, z, _ in kept)

    def objective(rho: float) -> float:
        return joint_negative_log_likelihood(rho, grids, kept)

    search = minimize_scalar(objective, bounds=(0.0, 1.0), method="bounded",
                             options={"xatol": 1e-4})
    candidates = {0.0: objective(0.0), 1.0: objective(1.0), float(search.x): search.fun}
    rho = min(candidates, key=lambda r: candidates[r])
    return round(float(rho), 6), {
        "identified": True, "materials_at_several_conditions": len(several),
        "curves": len(kept), "points": int(points), "rho": round(float(rho), 6),
        "gain_over_independent_nats_per_point": round(
            float(candidates[0.0] - candidates[rho]) / points, 5),
    }


# The decaying law's length scale (standardised covariate units) is searched in
# [_SHORTEST, _LONGEST]; beyond _LONGEST it is the one-rho law (l = infinity) to within
# exp(-d^2 / 2 l^2) > 0.99 over the span of any standardised training data.
_SHORTEST, _LONGEST = 0.05, 30.0


class _Stack:
    """Materials tested at the same number J of conditions, stacked for batched algebra.

    With R = G G^T (eigendecomposition, J x J) and B = blockdiag(A_d) (G (x) I_k), a
    material's Cov z = B B^T + V, so by the determinant lemma and Woodbury

        log det = sum log V + log det(I + B^T V^-1 B)
        z^T (..)^-1 z = z^T V^-1 z - b^T (I + B^T V^-1 B)^-1 b,   b = B^T V^-1 z

    where B^T V^-1 B and b need only P_d = A_d^T V_d^-1 A_d and q_d = A_d^T V_d^-1 z_d,
    computed once: an evaluation costs one kJ x kJ Cholesky per material, whatever its
    points."""

    def __init__(self, precision: np.ndarray, projected: np.ndarray, where: np.ndarray,
                 constant: np.ndarray) -> None:
        self.precision = precision  # (M, J, k, k) P_d
        self.projected = projected  # (M, J, k) q_d
        self.where = where  # (M, J, covariates) each material's conditions, standardised
        gap = where[:, :, None, :] - where[:, None, :, :]
        self.squared_distance = np.sum(gap * gap, axis=3)  # (M, J, J)
        self.constant = float(np.sum(constant))  # sum over materials of log det V + z V^-1 z

    def negative_log_likelihood(self, rho: float, length_scale: float) -> float:
        """Under the decaying law (l = inf: one rho)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            decay = np.exp(-0.5 * self.squared_distance / length_scale**2)
        return self.correlated(np.where(self.squared_distance == 0.0, 1.0, rho * decay))

    def slope_negative_log_likelihood(self, rho: float, scales: np.ndarray,
                                      centre: np.ndarray) -> float:
        """Under the random-slope law."""
        from service.inference.curves_across import slope_correlation

        return self.correlated(slope_correlation(self.where, self.where, rho, scales, centre))

    def correlated(self, r: np.ndarray) -> float:
        """The NLL with R (M, J, J) the correlation of each material's effects."""
        values, vectors = np.linalg.eigh(r)
        root = vectors * np.sqrt(np.maximum(values, 0.0))[:, None, :]  # G (M, J, J)
        m, j, k = self.projected.shape
        inner = np.einsum("mda,mdb,mdij->maibj", root, root, self.precision).reshape(
            m, j * k, j * k)
        inner += np.eye(j * k)
        b = np.einsum("mda,mdi->mai", root, self.projected).reshape(m, j * k)
        lower = np.linalg.cholesky(inner)
        white = np.linalg.solve(lower, b[..., None])[..., 0]
        log_det = 2.0 * np.sum(np.log(np.diagonal(lower, axis1=1, axis2=2)))
        return 0.5 * (self.constant + float(log_det - np.sum(white * white)))


def _stacks(kept: list[tuple[bytes, np.ndarray, int, int]], grids: dict[bytes, _Grid],
            coordinates: np.ndarray) -> list[_Stack]:
    parts: dict[int, list[tuple[bytes, np.ndarray, int]]] = defaultdict(list)
    for key, z, material, condition in kept:
        parts[material].append((key, z, condition))
    by_count: dict[int, list[tuple[np.ndarray, ...]]] = defaultdict(list)
    for members in parts.values():
        scaled = [(grids[key].loadings / grids[key].noise[:, None], grids[key], z)
                  for key, z, _ in members]
        by_count[len(members)].append((
            np.stack([grid.loadings.T @ s for s, grid, _ in scaled]),
            np.stack([s.T @ z for s, _, z in scaled]),
            coordinates[[c for _, _, c in members]],
            np.array(sum(float(np.sum(np.log(grid.noise)) + z @ (z / grid.noise))
                         for _, grid, z in scaled))))
    return [_Stack(*(np.stack(column) for column in zip(*group, strict=True)))
            for group in by_count.values()]


def materials_at_several_conditions(curves: list[tuple[np.ndarray, np.ndarray, int, int]]
                                    ) -> set[int]:
    """The materials with curves at two or more conditions."""
    per_material: dict[int, int] = defaultdict(int)
    for _, _, material, _ in curves:
        per_material[material] += 1
    return {material for material, count in per_material.items() if count >= 2}


def _curves_at_several_conditions(
        curves: list[tuple[np.ndarray, np.ndarray, int, int]], section: dict[str, Any],
        basis_size: int, chol: np.ndarray, gamma: np.ndarray
) -> tuple[dict[bytes, _Grid], list[tuple[bytes, np.ndarray, int, int]]]:
    """The curves of materials tested at two or more conditions, condition means taken
    out, each as (its strain grid's key, z, material, condition), and one _Grid per
    distinct strain grid (with loadings `chol`)."""
    several = materials_at_several_conditions(curves)
    low, high = section["domain"]["min"], section["domain"]["max"]
    grids: dict[bytes, _Grid] = {}
    kept = []
    for strain, z, material, condition in without_condition_means(curves, low, high,
                                                                  basis_size):
        if material not in several:
            continue
        key = strain.tobytes()
        if key not in grids:
            grids[key] = _Grid(strain, chol, gamma, low, high)
        kept.append((key, z, material, condition))
    return grids, kept


# Stopping rule of the decaying and random-slope searches: a relative change of the summed
# NLL below 1e-7 is a few thousandths of a nat on groups whose laws differ by nats, and it
# halves the evaluations of scipy's default (2.2e-9), each of them a finite-difference
# gradient step over every material.
_SEARCH_OPTIONS = {"ftol": 1e-7}


def _fit_decaying(stacks: list[_Stack], rho: float,
                  starts: list[np.ndarray] | None = None) -> tuple[float, float, float]:
    """(NLL, rho0, l) of the decaying law maximising the likelihood of `stacks`, started
    from the one-rho law (`rho`, l infinite) and `starts` ((rho0, log l) each; by default
    three finite length scales); l is inf where no finite one does better."""
    def objective(params: np.ndarray) -> float:
        return sum(s.negative_log_likelihood(float(params[0]), float(np.exp(params[1])))
                   for s in stacks)

    best = (objective(np.array([rho, np.inf])), rho, np.inf)
    bounds = [(0.0, 1.0), (np.log(_SHORTEST), np.log(_LONGEST))]
    if starts is None:
        starts = [np.array(start) for start in ((max(rho, 0.5), np.log(1.0)),
                                                (0.9, np.log(0.3)), (0.95, np.log(3.0)))]
    for start in starts:
        found = minimize(objective, start, method="L-BFGS-B", bounds=bounds,
                         options=_SEARCH_OPTIONS)
        if found.fun < best[0]:
            best = (float(found.fun), float(found.x[0]), float(np.exp(found.x[1])))
    return best


# The random slopes' scales (standardised covariate units) are searched in
# [_SHORTEST, _LONGEST] like the decaying law's length scale (scale -> inf is one rho); their
# centre within _CENTRE_RANGE of the covariates' mean.
_CENTRE_RANGE = 3.0


def _fit_slopes(stacks: list[_Stack], rho: float, covariates: int,
                starts: list[np.ndarray] | None = None
                ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(NLL, rho0, scales, centre) of the random-slope law maximising the likelihood of
    `stacks` (standardised units), started from `starts` ((rho0, log scales, centre)
    each; by default at the covariates' mean with three scales); the scales are inf where
    no finite ones do better than one rho."""
    def objective(params: np.ndarray) -> float:
        scales = np.exp(params[1:1 + covariates])
        centre = params[1 + covariates:]
        return sum(s.slope_negative_log_likelihood(float(params[0]), scales, centre)
                   for s in stacks)

    none = np.full(covariates, np.inf)
    best = (sum(s.negative_log_likelihood(rho, np.inf) for s in stacks), rho, none,
            np.zeros(covariates))
    bounds = ([(0.0, 1.0)] + [(np.log(_SHORTEST), np.log(_LONGEST))] * covariates
              + [(-_CENTRE_RANGE, _CENTRE_RANGE)] * covariates)
    if starts is None:
        starts = [np.concatenate([[rho0], np.full(covariates, np.log(scale)),
                                  np.zeros(covariates)])
                  for rho0, scale in ((max(rho, 0.5), 1.0), (0.95, 0.5), (0.95, 3.0))]
    for start in starts:
        found = minimize(objective, start, method="L-BFGS-B", bounds=bounds,
                         options=_SEARCH_OPTIONS)
        if found.fun < best[0]:
            best = (float(found.fun), float(found.x[0]),
                    np.exp(found.x[1:1 + covariates]), found.x[1 + covariates:].copy())
    return best


def fit_decaying_correlation(curves: list[tuple[np.ndarray, np.ndarray, int, int]],
                             section: dict[str, Any], basis_size: int,
                             coordinates: np.ndarray
                             ) -> tuple[float, float | None, dict[str, Any]]:
    """(rho0, l, summary) of R[c, c'] = rho0 exp(-|c - c'|^2 / 2 l^2) (c != c'), by the
    exact joint likelihood of all the materials tested at two or more conditions (in
    sample: `fit_condition_law` decides whether the law is kept), L and gamma held fixed
    and the condition means taken out as for rho. `coordinates` are the conditions (rows
    indexed as the curves' condition) in standardised covariate units. l is None where
    the one-rho law (l = infinity) is as likely.

    Cost per likelihood evaluation: one J x J eigendecomposition and one kJ x kJ Cholesky
    per material (J its conditions, k the basis size), batched over materials with as
    many conditions, independent of the points; the search takes a few hundred."""
    rho, summary = fit_condition_correlation(curves, section, basis_size)
    if not summary["identified"]:
        return rho, None, {**summary, "length_scale": None}
    chol = np.tril(np.asarray(section["between_cholesky"], dtype=float))
    gamma = np.asarray(section["within_log_variance"], dtype=float)
    grids, kept = _curves_at_several_conditions(curves, section, basis_size, chol, gamma)
    stacks = _stacks(kept, grids, np.asarray(coordinates, dtype=float))
    points = sum(z.size for _, z, _, _ in kept)
    one_rho = sum(s.negative_log_likelihood(rho, np.inf) for s in stacks)
    value, rho0, length = _fit_decaying(stacks, rho)
    decays = bool(np.isfinite(length))
    return (round(rho0, 6) if decays else rho), (round(length, 6) if decays else None), {
        **summary, "rho0": round(rho0, 6) if decays else rho,
        "length_scale": round(length, 6) if decays else None,
        "gain_over_one_rho_nats_per_point": round(float(one_rho - value) / points, 5),
    }


class _Components:
    """A `_Stack` for the law with l infinite and one rho per component of its (rotated)
    loadings: component j's effects at the J conditions are N(0, rho_j 1 1^T +
    (1 - rho_j) I), independent of the other components. Those J x J matrices share their
    eigenvectors Q (the constant vector and its complement) whatever rho_j, with
    eigenvalues 1 + (J - 1) rho_j and 1 - rho_j, so Q is applied to P_d and q_d once and an
    evaluation only scales them: one kJ x kJ Cholesky per material."""

    def __init__(self, stack: _Stack) -> None:
        m, j, k = stack.projected.shape
        ones, vectors = np.linalg.eigh(np.ones((j, j)))  # eigenvalues J (once) and 0
        self.ones = np.round(ones)  # (J,)
        self.precision = np.einsum("da,db,mdij->maibj", vectors, vectors,
                                   stack.precision).reshape(m, j * k, j * k)
        self.projected = np.einsum("da,mdi->mai", vectors, stack.projected).reshape(m, j * k)
        self.constant = stack.constant

    def _scale(self, rhos: np.ndarray) -> np.ndarray:
        """The root of R's eigenvalues, (J k,) ordered as the stacked eta."""
        return np.sqrt(np.maximum(1.0 - rhos[None, :] + rhos[None, :] * self.ones[:, None],
                                  0.0)).ravel()

    def negative_log_likelihood(self, rhos: np.ndarray, gradient: bool = False
                                ) -> Any:
        """NLL at rho_j (and its gradient in rho_j with `gradient`). With s the scale,
        A = I + S P S, b = S q, X = A^-1, alpha = X b:
        dNLL/ds_p = (P S X)_pp - alpha_p q_p + alpha_p (P S alpha)_p per material."""
        scale = self._scale(rhos)
        inner = scale[:, None] * self.precision * scale[None, :]
        inner += np.eye(scale.size)
        lower = np.linalg.cholesky(inner)
        white = np.linalg.solve(lower, (scale * self.projected)[..., None])[..., 0]
        log_det = 2.0 * np.sum(np.log(np.diagonal(lower, axis1=1, axis2=2)))
        value = 0.5 * (self.constant + float(log_det - np.sum(white * white)))
        if not gradient:
            return value
        inverse = np.linalg.inv(inner)  # (M, n, n)
        alpha = np.einsum("mab,mb->ma", inverse, scale * self.projected)
        weighted = self.precision * scale[None, None, :]  # P S
        by_scale = (np.einsum("mpb,mbp->p", weighted, inverse)
                    + np.sum(alpha * (np.einsum("mpb,mb->mp", weighted, alpha)
                                      - self.projected), axis=0))
        j, k = self.ones.size, rhos.size
        # ds/drho_j = (e_a - 1) / (2 s) for the entry (a, j); rho_j < 1 keeps s > 0.
        chain = (self.ones[:, None] - 1.0) / (2.0 * np.maximum(scale.reshape(j, k), 1e-12))
        return value, np.sum(by_scale.reshape(j, k) * chain, axis=0)


# Folds of the training materials over which the correlation laws are compared by held-out
# likelihood: the decaying law has one parameter more than one rho, one rho per component
# k - 1 more, so in sample they always fit at least as well.
LAW_FOLDS = 4
_NEAR_ONE = 1.0 - 1e-6
LAWS = ("one rho", "decaying", "slopes", "per component")
# Fewer materials tested at several conditions than two per fold: a held-out choice among
# four laws would rest on one or two materials per fold, noise rather than evidence, so
# one rho is kept.
MIN_MATERIALS_FOR_LAW_CHOICE = 2 * LAW_FOLDS


def _fit_components(stacks: list[_Components], k: int, start: float
                    ) -> tuple[np.ndarray, float]:
    """(rho_j, NLL) maximising the likelihood of `stacks`, from every rho_j = start."""
    def objective(rhos: np.ndarray) -> tuple[float, np.ndarray]:
        parts = [s.negative_log_likelihood(rhos, gradient=True) for s in stacks]
        return sum(p[0] for p in parts), np.sum([p[1] for p in parts], axis=0)

    # rho_j = 1 exactly puts a zero under the square root of R's eigenvalues (the gradient
    # there is infinite); 1 - 1e-6 is full sharing to the precision stored.
    found = minimize(objective, np.full(k, min(start, _NEAR_ONE)), jac=True,
                     method="L-BFGS-B", bounds=[(0.0, _NEAR_ONE)] * k)
    return found.x, float(found.fun)


def _fit_one(stacks: list[_Components], k: int) -> float:
    """The one rho (every rho_j equal) maximising the likelihood of `stacks`."""
    found = minimize_scalar(lambda r: sum(s.negative_log_likelihood(np.full(k, r))
                                          for s in stacks),
                            bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-4})
    return float(np.clip(found.x, 0.0, 1.0))


@dataclass(frozen=True)
class ConditionLaw:
    """How one material's random effects correlate across conditions (the curve model's
    `condition_correlation`, and `condition_length_scales` or `condition_correlations`)."""

    rho: float  # one rho; rho0 of the decaying and random-slope laws
    length_scale: float | None  # standardised covariate units; None: no decay
    rhos: list[float] | None  # one per component of the loadings; None: one for all
    summary: dict[str, Any]
    # The random slopes' scale and centre per covariate (standardised units); None: none.
    slope_scales: list[float] | None = None
    slope_centre: list[float] | None = None


def fit_condition_law(curves: list[tuple[np.ndarray, np.ndarray, int, int]],
                      section: dict[str, Any], basis_size: int, coordinates: np.ndarray
                      ) -> ConditionLaw:
    """The correlation law across conditions that predicts held-out materials best: one
    rho for every pair of conditions and every direction of a material's deviation, a
    correlation decaying with the condition distance (`coordinates`: the conditions in
    standardised covariate units, rows indexed as the curves' condition), a material's
    effect linear in the covariates (random slopes: service.inference.curves_across.
    slope_correlation), or one rho per principal component of the loadings
    (service.inference.curves_across.component_basis).
    L and gamma are held fixed and the condition means taken out as for rho. The
    materials tested at several conditions (at least MIN_MATERIALS_FOR_LAW_CHOICE; with
    fewer, one rho is kept) are split in LAW_FOLDS folds; each fold's
    curves are scored under every law fitted on the other folds' materials, and the law
    with the best summed held-out likelihood is fitted again on them all (one rho unless
    another does strictly better).

    Why held out, for every law: the three richer ones always fit the training materials
    at least as well as one rho. A penalty on the in-sample gain (BIC) kept a decaying law
    whose length scale was twice the tested span (a hair's breadth from one rho) and so
    never tried one rho per component, which predicted held-out materials better
    (docs/covariates.md).
    One rho per component suits deviations whose parts carry over to different degrees
    (the make-data generator: a compound's modulus offset shared, a specimen's not); the
    decaying law, materials whose likeness fades with the condition distance; random
    slopes, materials whose own sensitivities to a covariate differ, so they cross over
    (conditions on either side of the crossing correlate weakly or negatively, which no
    decaying law can say)."""
    rho, summary = fit_condition_correlation(curves, section, basis_size)
    several = sorted(materials_at_several_conditions(curves))
    folds = LAW_FOLDS
    if not summary["identified"] or len(several) < MIN_MATERIALS_FOR_LAW_CHOICE:
        return ConditionLaw(rho, None, None, {**summary, "law": "one rho"})
    from service.inference.curves import CurveModel
    from service.inference.curves_across import component_basis
    from service.manifest import CurveModelSection

    curve = CurveModel.from_section(CurveModelSection.model_validate(
        {key: section[key] for key in ("kind", "domain", "degree", "between_cholesky",
                                       "within_log_variance")}))
    # The loadings rotated to their principal components: the one-rho and decaying
    # likelihoods do not change under the rotation; one rho per component is defined in it.
    chol = (np.tril(np.asarray(section["between_cholesky"], dtype=float))
            @ component_basis(curve.table_loadings))
    gamma = np.asarray(section["within_log_variance"], dtype=float)
    grids, kept = _curves_at_several_conditions(curves, section, basis_size, chol, gamma)
    coordinates = np.asarray(coordinates, dtype=float)
    k = gamma.size
    kc = coordinates.shape[1]
    # Every law fitted on all the materials first (from several starts); each fold's fits
    # start from those optima, once: the cost of the comparison is a few single-start
    # searches, not the full search per fold.
    every = _stacks(kept, grids, coordinates)
    _, rho0, length = _fit_decaying(every, rho)
    _, slope_rho, scales, centre = _fit_slopes(every, rho, kc)
    decaying_start = (np.array([rho0, np.log(length)]) if np.isfinite(length)
                      else np.array([max(rho, 0.5), 0.0]))
    slope_start = (np.concatenate([[slope_rho], np.log(scales), centre])
                   if np.all(np.isfinite(scales))
                   else np.concatenate([[max(rho, 0.5)], np.zeros(kc), np.zeros(kc)]))
    fold_of = {m: i % folds for i, m in enumerate(several)}
    held = dict.fromkeys(LAWS, 0.0)
    for fold in range(folds):
        train = _stacks([c for c in kept if fold_of[c[2]] != fold], grids, coordinates)
        test = _stacks([c for c in kept if fold_of[c[2]] == fold], grids, coordinates)
        train_components = [_Components(s) for s in train]
        test_components = [_Components(s) for s in test]
        one = _fit_one(train_components, k)
        rhos, _ = _fit_components(train_components, k, one)
        _, fold_rho0, fold_length = _fit_decaying(train, one, [decaying_start])
        _, fold_slope_rho, fold_scales, fold_centre = _fit_slopes(train, one, kc,
                                                                  [slope_start])
        held["one rho"] += sum(s.negative_log_likelihood(np.full(k, one))
                               for s in test_components)
        held["per component"] += sum(s.negative_log_likelihood(rhos) for s in test_components)
        held["decaying"] += sum(s.negative_log_likelihood(fold_rho0, fold_length)
                                for s in test)
        held["slopes"] += sum(s.slope_negative_log_likelihood(fold_slope_rho, fold_scales,
                                                              fold_centre) for s in test)
    points = sum(z.size for _, z, _, _ in kept)
    law = min(LAWS, key=lambda name: (held[name], LAWS.index(name)))
    summary = {**summary, "law": law, "folds": folds,
               "held_out_gain_over_one_rho_nats_per_point": {
                   name: round((held["one rho"] - held[name]) / points, 5)
                   for name in LAWS[1:]}}
    if law == "decaying" and np.isfinite(length):
        return ConditionLaw(round(rho0, 6), round(length, 6), None,
                            {**summary, "rho0": round(rho0, 6),
                             "length_scale": round(length, 6)})
    if law == "slopes" and np.all(np.isfinite(scales)):
        return ConditionLaw(round(slope_rho, 6), None, None,
                            {**summary, "rho0": round(slope_rho, 6),
                             "slope_scales": [round(float(v), 6) for v in scales],
                             "slope_centre": [round(float(v), 6) for v in centre]},
                            [round(float(v), 6) for v in scales],
                            [round(float(v), 6) for v in centre])
    if law == "per component":
        fitted, _ = _fit_components([_Components(s) for s in every], k, rho)
        values = [round(float(v), 6) for v in fitted]
        return ConditionLaw(rho, None, values, {**summary, "rhos": values})
    return ConditionLaw(rho, None, None, {**summary, "law": "one rho"})
