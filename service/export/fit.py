"""Fitting a strain-energy form to one exported curve, and choosing the form.

The error that matters is the largest one, in total SDs of the served answer, so the fit
minimises exactly that: a weighted minimax (Chebyshev) fit, solved as a linear programme
for the constants that enter the stress linearly (all of the polynomial family, Ogden's
mu_k, Arruda-Boyce's mu). Ogden's exponents and Arruda-Boyce's locking stretch are found
by a grid of weighted least-squares fits and a simplex search from the best two starts.

Stability: Drucker's matrix is linear in those same constants, so `form=auto` fits each
form under Drucker's condition over the range by cutting planes: where the minimax card is
unstable, v^T M v >= 0 (v the eigenvector of M's smallest eigenvalue) is added at the
least stable states of each mode and the programme solved again, for a few rounds. A card
is stable over the range when the condition holds in uniaxial, equibiaxial and planar
deformation for every state whose principal stretches stay within those of the range
(forms.stretch_box). `form=auto` takes the smallest-error stable form; when none is, the
smallest error, and the card says so (`choose`; over a covariate, the smallest largest
error over the rows of a card, service.export.card_rows). A form asked for by name is
fitted free.

Why one module of this size: the fit, the stability it is held to and the choice between
forms are one procedure; split, each part would need the others' internals. Its cost per
card (`fitting_seconds`, for admission) is measured on that procedure, so it lives here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, minimize

from service.export import forms
from service.export.forms import FORMS, Form

# The fit error the export aims at (total SDs); a card above it says so.
TARGET_ERROR = 0.25
# Initial bulk modulus / initial shear modulus when the caller sets neither: Poisson's
# ratio 0.4995 at small strain, a usual near-incompressibility for filled rubber.
DEFAULT_BULK_RATIO = 1000.0
# At most this many strains enter the fit (the error is then measured on every strain).
_FIT_POINTS = 121
# Ogden's exponents and Arruda-Boyce's locking stretch are searched on fewer.
_SEARCH_POINTS = 61
# form=auto: rounds of Drucker cuts and cuts per mode and round. A cut asks the smallest
# eigenvalue of Drucker's matrix to stay above _CUT_MARGIN x its largest over the mode,
# so that the card is stable between the checked states too, not only at them.
_CUT_ROUNDS, _CUTS_PER_MODE, _CUT_MARGIN = 12, 4, 1e-4
_CHECK_POINTS = 801
# The nominal strains scanned for the stable range reported per mode.
SCAN = (-0.95, 9.0)
_SCAN_POINTS = 1500
# Seconds of the reference machine to fit one card, for admission
# (service.prediction.admission; benchmarks/admission.py measures them). form=auto fits
# every form and holds each to Drucker's condition: 93-102 ms a card on the test model,
# 154 ms on the demo fit. A form by name is one fit; Ogden's exponents are searched (N=3:
# 25-47 ms on the test model at 41-2,001 points), the others are one linear programme
# (at most 11 ms).
FIT_SECONDS = {"auto": 0.16, "ogden_n3": 0.05, "ogden_n2": 0.02}
FIT_SECONDS_OF_ANY_OTHER_FORM = 0.012
_OGDEN_EXPONENTS = (-6.0, -3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.5, 6.5, 9.0)
_LOCKING_STRETCHES = tuple(np.geomspace(1.05, 60.0, 25))


# A card over a covariate (service.export.card_rows) costs its rows' fits and the checks
# between them: 21 auto cards over 3 temperatures took 3.8x the CPU of the same cards at
# one condition (docs/export.md).
BETWEEN_ROWS_FACTOR = 1.3


def fitting_seconds(form: str, columns: int, rows: int = 1) -> float:
    """Admission's estimate of fitting `columns` cards of `form` (a name or "auto"), each
    over `rows` values of a covariate (1: at one condition), in seconds of the reference
    machine."""
    seconds = columns * rows * FIT_SECONDS.get(form, FIT_SECONDS_OF_ANY_OTHER_FORM)
    return seconds * BETWEEN_ROWS_FACTOR if rows > 1 else seconds


@dataclass(frozen=True)
class Curve:
    """One exported column as nominal stress against stretch, with its scale."""

    column: str
    stretch: np.ndarray
    stress: np.ndarray
    sd: np.ndarray  # total SD of the served answer, in the same (nominal) measure


@dataclass(frozen=True)
class Volumetric:
    """How the D terms are set: an absolute initial bulk modulus, or K0 = ratio x mu0."""

    bulk_modulus: float | None = None
    bulk_ratio: float = DEFAULT_BULK_RATIO

    def bulk(self, shear_modulus: float) -> float:
        if self.bulk_modulus is not None:
            return self.bulk_modulus
        return self.bulk_ratio * abs(shear_modulus)

    def describe(self) -> str:
        if self.bulk_modulus is not None:
            return f"initial bulk modulus K0 = {self.bulk_modulus:g} (set by the request)"
        return f"K0 = {self.bulk_ratio:g} x mu0 (bulk_ratio)"


@dataclass(frozen=True)
class Card:
    column: str
    form: Form
    values: tuple[float, ...]  # deviatoric constants, card order
    d: tuple[float, ...]
    fit_error: float  # total SDs, the card as a solver has it (with its D terms)
    shear_modulus: float
    bulk_modulus: float
    # Per mode: (lowest, highest) nominal strain of the stable interval around zero within
    # SCAN, or None when the card is unstable at zero strain.
    stable: dict[str, tuple[float, float] | None]
    stable_over_range: bool  # over the stability range asked (default: the exported one)
    stable_range: tuple[float, float]  # that range, nominal uniaxial strains
    chosen: str  # "auto" or "asked"
    candidates: dict[str, tuple[float, bool]]  # form -> (error, stable over range)

    @property
    def meets_target(self) -> bool:
        return self.fit_error <= TARGET_ERROR


def _fit_rows(size: int) -> np.ndarray:
    if size <= _FIT_POINTS:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, _FIT_POINTS).round().astype(int))


def _values(form: Form, linear: np.ndarray, shape: np.ndarray) -> np.ndarray:
    if form.family == forms.OGDEN:
        return np.ravel(np.column_stack([linear, shape]))
    if form.family == forms.ARRUDA_BOYCE:
        return np.array([linear[0], shape[0]])
    return np.asarray(linear, dtype=float)


def _basis(form: Form, shape: np.ndarray, stretch: np.ndarray) -> np.ndarray:
    """Columns: the uniaxial stress of each linear constant set to one (closed forms for
    Ogden and Arruda-Boyce, which the search evaluates thousands of times; they equal
    forms.nominal_stress, which tests check)."""
    column = stretch[:, None]
    if form.family == forms.OGDEN:
        alpha = np.asarray(shape)[None, :]
        return 2.0 / alpha * (column ** (alpha - 1.0) - column ** (-0.5 * alpha - 1.0))
    if form.family == forms.ARRUDA_BOYCE:
        i1 = stretch ** 2 + 2.0 / stretch
        w1 = sum(k * c / shape[0] ** (2 * k - 2) * i1 ** (k - 1)
                 for k, c in enumerate(forms.AB_SERIES, start=1))
        return (2.0 * (stretch - stretch ** -2.0) * w1)[:, None]
    columns = []
    for k in range(form.linear):
        unit = np.zeros(form.linear)
        unit[k] = 1.0
        columns.append(forms.nominal_stress(form, _values(form, unit, shape), stretch))
    return np.column_stack(columns)


def _minimax(basis: np.ndarray, target: np.ndarray, weight: np.ndarray,
             cuts: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """Constants c minimising max |basis c - target| * weight (a linear programme), with
    rows @ c >= floors for `cuts` = (rows, floors) (Drucker's condition at chosen
    states)."""
    a = basis * weight[:, None]
    y = target * weight
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a = a / scale
    p = a.shape[1]
    ones = np.ones((a.shape[0], 1))
    rows, bounds = np.block([[a, -ones], [-a, -ones]]), np.r_[y, -y]
    if cuts is not None and len(cuts[0]):
        scaled = cuts[0] / scale
        norm = np.linalg.norm(scaled, axis=1)
        rows = np.vstack([rows, np.column_stack([-scaled / norm[:, None],
                                                 np.zeros(len(norm))])])
        bounds = np.r_[bounds, -cuts[1] / norm]
    result = linprog(np.r_[np.zeros(p), 1.0], A_ub=rows, b_ub=bounds,
                     bounds=[(None, None)] * p + [(0, None)], method="highs")
    if result.status != 0:
        coefficients = np.linalg.lstsq(a, y, rcond=None)[0]
    else:
        coefficients = result.x[:p]
    return coefficients / scale, float(np.max(np.abs(a @ coefficients - y)))


def _weighted_rms(basis: np.ndarray, curve: Curve) -> float:
    weight = 1.0 / curve.sd
    with np.errstate(all="ignore"):
        a = basis * weight[:, None]
        if not np.all(np.isfinite(a)):
            return math.inf
        coefficients = np.linalg.lstsq(a, curve.stress * weight, rcond=None)[0]
        value = float(np.sqrt(np.mean((a @ coefficients - curve.stress * weight) ** 2)))
    return value if math.isfinite(value) else math.inf


def _ranked_starts(form: Form, curve: Curve) -> list[np.ndarray]:
    """Starting shape constants, best weighted least-squares fit first. Ogden's starts are
    combinations of a grid of exponents, whose basis columns are computed once."""
    if form.family == forms.ARRUDA_BOYCE:
        starts = [np.array([s]) for s in _LOCKING_STRETCHES]
        return sorted(starts, key=lambda s: _weighted_rms(_basis(form, s, curve.stretch),
                                                          curve))
    grid = np.array(_OGDEN_EXPONENTS)
    with np.errstate(all="ignore"):
        columns = _basis(form, grid, curve.stretch)
    combos = list(itertools.combinations(range(grid.size), form.terms))
    scores = [_weighted_rms(columns[:, list(c)], curve) for c in combos]
    return [grid[list(combos[k])] for k in np.argsort(scores)]


def _shape_ok(form: Form, shape: np.ndarray) -> bool:
    if form.family == forms.ARRUDA_BOYCE:
        return bool(shape[0] > 1.0)
    return bool(np.all(np.abs(shape) > 0.05) and np.all(np.abs(shape) < 40))


def _cuts(form: Form, linear: np.ndarray, shape: np.ndarray,
          box: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Linear constraints (rows r and floors f: r @ linear >= f) at the least stable states
    of each mode within `box` where Drucker's matrix M is not safely positive definite:
    v^T M v >= margin for the eigenvector v of M's smallest eigenvalue (M is linear in the
    constants)."""
    rows, floors = [], []
    with np.errstate(all="ignore"):
        for mode in forms.MODES:
            stretch = np.linspace(*forms.mode_range(mode, box), _CHECK_POINTS)
            m = forms.drucker_matrix(form, _values(form, linear, shape), stretch, mode)
            if not np.all(np.isfinite(m)):
                continue
            eigenvalues, eigenvectors = np.linalg.eigh(m)
            margin = _CUT_MARGIN * float(np.max(np.abs(eigenvalues)))
            bad = np.flatnonzero(eigenvalues[:, 0] <= margin)
            if not bad.size:
                continue
            picks = bad[np.unique(np.linspace(0, bad.size - 1, _CUTS_PER_MODE).astype(int))]
            per_unit = [forms.drucker_matrix(form, _values(form, u, shape), stretch[picks],
                                             mode) for u in np.eye(linear.size)]
            for k, point in enumerate(picks):
                v = eigenvectors[point, :, 0]
                rows.append([v @ unit[k] @ v for unit in per_unit])
                floors.append(margin)
    return np.array(rows).reshape(-1, linear.size), np.array(floors)


def _stable_minimax(form: Form, shape: np.ndarray, curve: Curve,
                    box: tuple[float, float] | None) -> np.ndarray:
    """The minimax constants at fixed shape constants; with `box`, kept Drucker-stable
    over it by rounds of cutting planes (an unstable result when they do not suffice)."""
    basis = _basis(form, shape, curve.stretch)
    weight = 1.0 / curve.sd
    linear, _ = _minimax(basis, curve.stress, weight)
    if box is None:
        return linear
    rows, floors = np.zeros((0, linear.size)), np.zeros(0)
    for _ in range(_CUT_ROUNDS):
        new_rows, new_floors = _cuts(form, linear, shape, box)
        if not new_floors.size:
            break
        rows, floors = np.vstack([rows, new_rows]), np.r_[floors, new_floors]
        linear, _ = _minimax(basis, curve.stress, weight, (rows, floors))
    return linear


def fit_form(form: Form, curve: Curve,
             box: tuple[float, float] | None = None) -> np.ndarray:
    """The form's deviatoric constants (card order) with the smallest max error; with a
    stretch `box` (forms.stretch_box), the smallest among those Drucker-stable in it."""
    rows = _fit_rows(curve.stretch.size)
    sub = Curve(curve.column, curve.stretch[rows], curve.stress[rows], curve.sd[rows])
    if form.family == forms.POLYNOMIAL:
        return _stable_minimax(form, np.zeros(0), sub, box)
    coarse_rows = _fit_rows(curve.stretch.size)[:: max(1, rows.size // _SEARCH_POINTS)]
    coarse = Curve(curve.column, curve.stretch[coarse_rows], curve.stress[coarse_rows],
                   curve.sd[coarse_rows])

    def spread(shape: np.ndarray) -> float:
        if not _shape_ok(form, shape):
            return math.inf
        with np.errstate(all="ignore"):
            return _weighted_rms(_basis(form, shape, coarse.stretch), coarse)

    ranked = _ranked_starts(form, coarse)
    best_shape, best = ranked[0], math.inf
    for start in ranked[:2]:
        result = minimize(spread, start, method="Nelder-Mead",
                          options={"xatol": 1e-3, "fatol": 1e-7, "maxiter": 120 * start.size})
        if result.fun < best:
            best_shape, best = result.x, float(result.fun)
    return _values(form, _stable_minimax(form, best_shape, sub, box), best_shape)


def stable_interval(form: Form, values: np.ndarray, mode: str,
                    also: tuple[float, ...] = ()) -> tuple[float, float] | None:
    """The interval of nominal strain around zero (within SCAN) where `mode` is Drucker
    stable, to the scan's resolution (strains `also` are scanned too); None when it is
    unstable at zero strain."""
    low, high = SCAN
    strains = np.unique(np.r_[np.linspace(low, 0.0, _SCAN_POINTS // 3)[:-1],
                              np.geomspace(1e-4, high, _SCAN_POINTS),
                              [a for a in also if low <= a <= high and a != 0.0]])
    with np.errstate(all="ignore"):
        stable = forms.drucker_stable(form, values, 1.0 + strains, mode)
    small = forms.drucker_stable(form, values, np.array([1.0 - 1e-4, 1.0 + 1e-4]), mode)
    if not small.all():
        return None
    zero = int(np.searchsorted(strains, 0.0))
    below = np.flatnonzero(~stable[:zero])
    above = np.flatnonzero(~stable[zero:])
    lowest = float(strains[below[-1] + 1]) if below.size else low
    highest = float(strains[zero + above[0] - 1]) if above.size else high
    return lowest, highest


def stable_over(form: Form, values: np.ndarray, low: float, high: float) -> bool:
    """Drucker-stable in every mode over the deformations within the exported stretch
    range [low, high] (forms.stretch_box: every principal stretch inside what the
    uniaxial range reaches)."""
    box = forms.stretch_box(low, high)
    with np.errstate(all="ignore"):
        for mode in forms.MODES:
            first, last = forms.mode_range(mode, box)
            stretch = np.linspace(first, last, _CHECK_POINTS)
            if not forms.drucker_stable(form, values, stretch, mode).all():
                return False
    return True


def _error(stress: np.ndarray, curve: Curve) -> float:
    with np.errstate(all="ignore"):
        value = float(np.max(np.abs(stress - curve.stress) / curve.sd))
    return value if math.isfinite(value) else math.inf


def written(values: np.ndarray) -> np.ndarray:
    """`values` as the card files write them: 9 significant digits."""
    return np.array([float(f"{v:.8e}") for v in values])


@dataclass(frozen=True)
class Fitted:
    """One candidate form fitted to one curve: its constants (card order), its error in
    total SDs (incompressible) and whether it is stable over the range checked."""

    values: np.ndarray
    error: float
    stable: bool


def checked_range(curve: Curve, stable_range: tuple[float, float] | None
                   ) -> tuple[float, float]:
    """The stretches stability is checked over: the curve's, widened by `stable_range`."""
    low, high = float(curve.stretch[0]), float(curve.stretch[-1])
    if stable_range is not None:
        low, high = min(low, 1.0 + stable_range[0]), max(high, 1.0 + stable_range[1])
    return low, high


def fit_candidates(curve: Curve, form_name: str,
                   stable_range: tuple[float, float] | None = None) -> dict[str, Fitted]:
    """The asked form, or with "auto" every form of forms.AUTO_FORMS, fitted to `curve`:
    auto's each under Drucker's condition over the range, an asked form free."""
    low, high = checked_range(curve, stable_range)
    names = forms.AUTO_FORMS if form_name == "auto" else (form_name,)
    box = forms.stretch_box(low, high) if form_name == "auto" else None
    fitted: dict[str, Fitted] = {}
    for name in names:
        form = FORMS[name]
        values = fit_form(form, curve, box)
        with np.errstate(all="ignore"):
            error = _error(forms.nominal_stress(form, values, curve.stretch), curve)
        fitted[name] = Fitted(values, error, stable_over(form, values, low, high))
    return fitted


def make_card(curve: Curve, form_name: str, volumetric: Volumetric,
              stable_range: tuple[float, float] | None = None) -> Card:
    """The card of `curve`: the asked form, or with "auto" the best one stable over
    `stable_range` (nominal uniaxial strains; default the curve's own range)."""
    fitted = fit_candidates(curve, form_name, stable_range)
    name, _ = choose([fitted])
    return card_of(curve, name, fitted, form_name, volumetric, stable_range)


def choose(rows: list[dict[str, Fitted]], between: dict[str, bool] | None = None
           ) -> tuple[str, dict[str, tuple[float, bool]]]:
    """The form of a card whose rows (one per condition; a single condition is one row)
    share it, and each candidate's (largest error over the rows, stable): the smallest
    largest error among the forms stable at every row (and `between` them, where the
    solver interpolates the constants); failing that, among those stable at every row;
    failing that, among all."""
    at_rows = {name: all(row[name].stable for row in rows) for name in rows[0]}
    summary = {name: (max(row[name].error for row in rows),
                      at_rows[name] and (between is None or between[name]))
               for name in rows[0]}
    pool = ([n for n, (_, stable) in summary.items() if stable]
            or [n for n, stable in at_rows.items() if stable] or list(summary))
    return min(pool, key=lambda n: summary[n][0]), summary


def secant_shear(curve: Curve) -> float:
    """The shear modulus of the curve's largest secant, max |stress| / (3 max |strain|)
    (nominal, incompressible: E = 3 mu); 1 for a curve that is zero everywhere."""
    scale = float(np.max(np.abs(curve.stress)) / (3.0 * np.max(np.abs(curve.stretch - 1.0))))
    return scale if scale > 0 and math.isfinite(scale) else 1.0


def card_of(curve: Curve, name: str, fitted: dict[str, Fitted], form_name: str,
            volumetric: Volumetric, stable_range: tuple[float, float] | None) -> Card:
    """The card of form `name` among the `fitted` candidates of `curve`."""
    low, high = checked_range(curve, stable_range)
    # Everything below is computed from the constants as written to the file.
    form, values = FORMS[name], written(fitted[name].values)
    shear = forms.initial_shear_modulus(form, values)
    bulk = volumetric.bulk(shear)
    if not bulk > 0:
        # A card with no initial stiffness (a curve whose best card is zero, e.g. one the
        # noise dominates): D scaled to the curve's own stiffness instead.
        bulk = volumetric.bulk(secant_shear(curve))
    d = tuple(written(np.full(form.volumetric, 2.0 / bulk)))
    with np.errstate(all="ignore"):
        solver = forms.compressible_uniaxial_stress(form, values, np.array(d), curve.stretch)
    # Stable over the range: on the check grid, and by the reported scan, which includes
    # the range's ends (never a card that says "yes" next to an interval ending inside).
    box = forms.stretch_box(low, high)
    ends = {mode: tuple(float(e) - 1.0 for e in forms.mode_range(mode, box))
            for mode in forms.MODES}
    stable = {mode: stable_interval(form, values, mode, ends[mode]) for mode in forms.MODES}
    scanned = all(span is not None and span[0] <= ends[mode][0] and ends[mode][1] <= span[1]
                  for mode, span in stable.items())
    return Card(
        column=curve.column, form=form, values=tuple(float(v) for v in values), d=d,
        fit_error=_error(solver, curve), shear_modulus=shear, bulk_modulus=bulk,
        stable=stable, stable_over_range=fitted[name].stable and scanned,
        stable_range=(low - 1.0, high - 1.0),
        chosen="auto" if form_name == "auto" else "asked",
        candidates={n: (f.error, f.stable) for n, f in fitted.items()})
