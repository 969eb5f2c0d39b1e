"""Fitting a strain-energy form to one exported curve, and choosing the form.

The error that matters is the largest one, in total SDs of the served answer, so the fit
minimises exactly that: a weighted minimax (Chebyshev) fit, solved as a linear programme
for the constants that enter the stress linearly (all of the polynomial family, Ogden's
mu_k, Arruda-Boyce's mu). Ogden's exponents and Arruda-Boyce's locking stretch are found
by a coarse grid of weighted least-squares fits, then a simplex search on the minimax
error from the best few starts.

A card is stable over the exported range when Drucker's condition holds in uniaxial,
equibiaxial and planar deformation at every nominal strain of that range in each mode.
`form=auto` takes the smallest-error stable form; when none is stable it takes the
smallest error and the card says so.
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
_FIT_POINTS = 241
# Ogden's exponents and Arruda-Boyce's locking stretch are searched on fewer.
_SEARCH_POINTS = 61
# Simplex steps (per shape constant) on the minimax error after the least-squares search.
_POLISH = 0
# The nominal strains scanned for the stable range reported per mode.
SCAN = (-0.95, 9.0)
_SCAN_POINTS = 1500
_OGDEN_EXPONENTS = (-8.0, -5.0, -3.0, -2.0, -1.0, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0)
_LOCKING_STRETCHES = tuple(np.geomspace(1.05, 60.0, 25))


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
    """Columns: the uniaxial stress of each linear constant set to one."""
    columns = []
    for k in range(form.linear):
        unit = np.zeros(form.linear)
        unit[k] = 1.0
        columns.append(forms.nominal_stress(form, _values(form, unit, shape), stretch))
    return np.column_stack(columns)


def _minimax(basis: np.ndarray, target: np.ndarray, weight: np.ndarray
             ) -> tuple[np.ndarray, float]:
    """Constants c minimising max |basis c - target| * weight (a linear programme)."""
    a = basis * weight[:, None]
    y = target * weight
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a = a / scale
    p = a.shape[1]
    ones = np.ones((a.shape[0], 1))
    result = linprog(np.r_[np.zeros(p), 1.0],
                     A_ub=np.block([[a, -ones], [-a, -ones]]), b_ub=np.r_[y, -y],
                     bounds=[(None, None)] * p + [(0, None)], method="highs")
    if result.status != 0:
        coefficients = np.linalg.lstsq(a, y, rcond=None)[0]
    else:
        coefficients = result.x[:p]
    return coefficients / scale, float(np.max(np.abs(a @ coefficients - y)))


def _least_squares_error(form: Form, shape: np.ndarray, curve: Curve) -> float:
    basis = _basis(form, shape, curve.stretch)
    weight = 1.0 / curve.sd
    with np.errstate(all="ignore"):
        coefficients = np.linalg.lstsq(basis * weight[:, None], curve.stress * weight,
                                       rcond=None)[0]
        residual = (basis @ coefficients - curve.stress) * weight
    value = float(np.sqrt(np.mean(residual ** 2)))
    return value if math.isfinite(value) else math.inf


def _starts(form: Form) -> list[np.ndarray]:
    if form.family == forms.ARRUDA_BOYCE:
        return [np.array([s]) for s in _LOCKING_STRETCHES]
    return [np.array(c) for c in itertools.combinations(_OGDEN_EXPONENTS, form.terms)]


def _shape_ok(form: Form, shape: np.ndarray) -> bool:
    if form.family == forms.ARRUDA_BOYCE:
        return bool(shape[0] > 1.0)
    return bool(np.all(np.abs(shape) > 0.05) and np.all(np.abs(shape) < 40))


def fit_form(form: Form, curve: Curve) -> np.ndarray:
    """The form's deviatoric constants (card order) with the smallest max error."""
    rows = _fit_rows(curve.stretch.size)
    sub = Curve(curve.column, curve.stretch[rows], curve.stress[rows], curve.sd[rows])
    weight = 1.0 / sub.sd
    if form.family == forms.POLYNOMIAL:
        return _minimax(_basis(form, np.zeros(0), sub.stretch), sub.stress, weight)[0]
    coarse_rows = _fit_rows(curve.stretch.size)[:: max(1, rows.size // _SEARCH_POINTS)]
    coarse = Curve(curve.column, curve.stretch[coarse_rows], curve.stress[coarse_rows],
                   curve.sd[coarse_rows])

    def spread(shape: np.ndarray) -> float:
        return _least_squares_error(form, shape, coarse) if _shape_ok(form, shape) \
            else math.inf

    def worst(shape: np.ndarray) -> float:
        if not _shape_ok(form, shape):
            return math.inf
        with np.errstate(all="ignore"):
            basis = _basis(form, shape, coarse.stretch)
        if not np.all(np.isfinite(basis)):
            return math.inf
        return _minimax(basis, coarse.stress, 1.0 / coarse.sd)[1]

    ranked = sorted(_starts(form), key=spread)
    best_shape, best = ranked[0], math.inf
    for start in ranked[:2]:
        result = minimize(spread, start, method="Nelder-Mead",
                          options={"xatol": 1e-4, "fatol": 1e-9, "maxiter": 200 * start.size})
        if result.fun < best:
            best_shape, best = result.x, float(result.fun)
    if _POLISH:
        best_shape = minimize(worst, best_shape, method="Nelder-Mead",
                              options={"maxiter": _POLISH * best_shape.size}).x
    linear, _ = _minimax(_basis(form, best_shape, sub.stretch), sub.stress, weight)
    return _values(form, linear, best_shape)


def stable_interval(form: Form, values: np.ndarray, mode: str
                    ) -> tuple[float, float] | None:
    """The interval of nominal strain around zero (within SCAN) where `mode` is Drucker
    stable, to the scan's resolution; None when it is unstable at zero strain."""
    low, high = SCAN
    strains = np.r_[np.linspace(low, 0.0, _SCAN_POINTS // 3)[:-1],
                    np.geomspace(1e-4, high, _SCAN_POINTS)]
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
            stretch = np.linspace(first, last, 401)
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


def make_card(curve: Curve, form_name: str, volumetric: Volumetric,
              stable_range: tuple[float, float] | None = None) -> Card:
    """The card of `curve`: the asked form, or with "auto" the best one stable over
    `stable_range` (nominal uniaxial strains; default the curve's own range)."""
    low, high = float(curve.stretch[0]), float(curve.stretch[-1])
    if stable_range is not None:
        low, high = min(low, 1.0 + stable_range[0]), max(high, 1.0 + stable_range[1])
    names = forms.AUTO_FORMS if form_name == "auto" else (form_name,)
    fitted: dict[str, tuple[np.ndarray, float, bool]] = {}
    for name in names:
        form = FORMS[name]
        values = fit_form(form, curve)
        with np.errstate(all="ignore"):
            error = _error(forms.nominal_stress(form, values, curve.stretch), curve)
        fitted[name] = (values, error, stable_over(form, values, low, high))
    pool = [n for n in names if fitted[n][2]] or list(names)
    name = min(pool, key=lambda n: fitted[n][1])
    # Everything below is computed from the constants as written to the file.
    form, values = FORMS[name], written(fitted[name][0])
    shear = forms.initial_shear_modulus(form, values)
    bulk = volumetric.bulk(shear)
    d = tuple(written(np.full(form.volumetric, 2.0 / bulk)))
    with np.errstate(all="ignore"):
        solver = forms.compressible_uniaxial_stress(form, values, np.array(d), curve.stretch)
    return Card(
        column=curve.column, form=form, values=tuple(float(v) for v in values), d=d,
        fit_error=_error(solver, curve), shear_modulus=shear, bulk_modulus=bulk,
        stable={mode: stable_interval(form, values, mode) for mode in forms.MODES},
        stable_over_range=fitted[name][2], stable_range=(low - 1.0, high - 1.0),
        chosen="auto" if form_name == "auto" else "asked",
        candidates={n: (fitted[n][1], fitted[n][2]) for n in names})
