"""The strain-energy forms CalculiX 2.20 and Abaqus read under *HYPERELASTIC, their
stresses in the three homogeneous test modes, and their Drucker stability.

Every form is W = W_dev(isochoric stretches) + U(J) (docs/export.md lists the formulas):
- polynomial family (NEO HOOKE, MOONEY-RIVLIN, POLYNOMIAL N=1..3, REDUCED POLYNOMIAL
  N=1..3, YEOH): W_dev = sum C_ij (I1 - 3)^i (I2 - 3)^j;
- OGDEN N=1..3: W_dev = sum 2 mu_k / alpha_k^2 (l1^a_k + l2^a_k + l3^a_k - 3);
- ARRUDA-BOYCE: W_dev = mu sum_{k=1..5} c_k / lambda_m^(2k-2) (I1^k - 3^k), with
  c = 1/2, 1/20, 11/1050, 19/7000, 519/673750;
- U = sum_i (J - 1)^(2i) / D_i, and (1/D) ((J^2 - 1)/2 - ln J) for ARRUDA-BOYCE.

All of them are computed through one quantity, the Kirchhoff stress of the isochoric part
in principal directions, tau_a = l_a dW_dev/dl_a (stretches l with J = 1):
- the nominal stress of an incompressible mode is (tau_loaded - tau_free) / l, the free
  direction carrying no traction;
- Drucker stability (the check Abaqus' evaluation reports) asks d tau : d eps > 0 for
  every log-strain change d eps with trace 0 (the pressure drops out), i.e. the 2 x 2
  matrix of d tau along two such directions is positive definite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLYNOMIAL, OGDEN, ARRUDA_BOYCE = "polynomial", "ogden", "arruda-boyce"
MODES = ("uniaxial", "equibiaxial", "planar")
AB_SERIES = (1 / 2, 1 / 20, 11 / 1050, 19 / 7000, 519 / 673750)


@dataclass(frozen=True)
class Form:
    """One *HYPERELASTIC option: `name` is the query value, `keyword` the card's
    parameters, `coefficients` the deviatoric constants in card order, `volumetric` the
    number of D terms."""

    name: str
    keyword: str
    family: str
    coefficients: tuple[str, ...]
    volumetric: int
    # Polynomial family: the (i, j) of each coefficient, in card order.
    powers: tuple[tuple[int, int], ...] = ()
    terms: int = 1  # Ogden: the number of (mu, alpha) pairs

    @property
    def uses_i2(self) -> bool:
        """Whether W depends on the second invariant (beyond what I1 gives)."""
        return self.family == OGDEN or any(j for _, j in self.powers)

    @property
    def linear(self) -> int:
        """How many constants enter the stress linearly (the rest are shape constants:
        Ogden's exponents, Arruda-Boyce's locking stretch)."""
        return len(self.powers) if self.family == POLYNOMIAL else self.terms


def _polynomial(name: str, keyword: str, order: int, reduced: bool) -> Form:
    powers = [(i, n - i) for n in range(1, order + 1) for i in range(n, -1, -1)]
    if reduced:
        powers = [(i, j) for i, j in powers if j == 0]
    return Form(name, keyword, POLYNOMIAL, tuple(f"C{i}{j}" for i, j in powers), order,
                tuple(powers))


def _ogden(n: int) -> Form:
    names = tuple(f"{kind}{k}" for k in range(1, n + 1) for kind in ("mu", "alpha"))
    return Form(f"ogden_n{n}", f"OGDEN, N={n}", OGDEN, names, n, terms=n)


# Every form CalculiX 2.20 accepts; the aliases (MOONEY-RIVLIN is POLYNOMIAL N=1,
# NEO HOOKE is REDUCED POLYNOMIAL N=1, YEOH is REDUCED POLYNOMIAL N=3) are kept so a
# user can ask for the keyword they know.
FORMS: dict[str, Form] = {form.name: form for form in (
    _polynomial("neo_hooke", "NEO HOOKE", 1, reduced=True),
    _polynomial("mooney_rivlin", "MOONEY-RIVLIN", 1, reduced=False),
    _polynomial("polynomial_n1", "POLYNOMIAL, N=1", 1, reduced=False),
    _polynomial("polynomial_n2", "POLYNOMIAL, N=2", 2, reduced=False),
    _polynomial("polynomial_n3", "POLYNOMIAL, N=3", 3, reduced=False),
    _polynomial("reduced_polynomial_n1", "REDUCED POLYNOMIAL, N=1", 1, reduced=True),
    _polynomial("reduced_polynomial_n2", "REDUCED POLYNOMIAL, N=2", 2, reduced=True),
    _polynomial("reduced_polynomial_n3", "REDUCED POLYNOMIAL, N=3", 3, reduced=True),
    _polynomial("yeoh", "YEOH", 3, reduced=True),
    _ogden(1), _ogden(2), _ogden(3),
    Form("arruda_boyce", "ARRUDA-BOYCE", ARRUDA_BOYCE, ("mu", "lambda_m"), 1),
)}
# The distinct forms `form=auto` chooses from (an alias would only tie with its twin).
AUTO_FORMS = ("neo_hooke", "mooney_rivlin", "polynomial_n2", "polynomial_n3",
              "reduced_polynomial_n2", "yeoh", "ogden_n1", "ogden_n2", "ogden_n3",
              "arruda_boyce")


def mode_stretches(mode: str, stretch: np.ndarray) -> tuple[np.ndarray, int]:
    """Principal stretches (3, n) of an incompressible mode at loaded stretch `stretch`,
    and the index of its traction-free direction."""
    ones = np.ones_like(stretch)
    if mode == "uniaxial":
        lateral = stretch ** -0.5
        return np.stack([stretch, lateral, lateral]), 2
    if mode == "equibiaxial":
        return np.stack([stretch, stretch, stretch ** -2.0]), 2
    if mode == "planar":
        return np.stack([stretch, ones, 1.0 / stretch]), 2
    raise ValueError(f"unknown mode {mode!r}")


def kirchhoff(form: Form, values: np.ndarray, stretches: np.ndarray) -> np.ndarray:
    """tau_a = l_a dW_dev/dl_a for stretches (3, n) with J = 1; `values` in card order
    (without the D terms). Shape (3, n)."""
    values = np.asarray(values, dtype=float)
    if form.family == OGDEN:
        mu, alpha = values[0::2], values[1::2]
        return sum(2.0 * m / a * stretches ** a for m, a in zip(mu, alpha, strict=True))
    squares = stretches ** 2
    i1 = squares.sum(axis=0)
    if form.family == ARRUDA_BOYCE:
        mu, locking = values
        w1 = mu * sum(k * c / locking ** (2 * k - 2) * i1 ** (k - 1)
                      for k, c in enumerate(AB_SERIES, start=1))
        return 2.0 * squares * w1
    i2 = 0.5 * (i1 ** 2 - (squares ** 2).sum(axis=0))
    a, b = i1 - 3.0, i2 - 3.0
    w1 = sum(c * i * a ** (i - 1) * b ** j
             for c, (i, j) in zip(values, form.powers, strict=True) if i)
    w2 = sum(c * j * a ** i * b ** (j - 1)
             for c, (i, j) in zip(values, form.powers, strict=True) if j)
    return 2.0 * squares * (w1 + (i1 - squares) * w2)


def nominal_stress(form: Form, values: np.ndarray, stretch: np.ndarray,
                   mode: str = "uniaxial") -> np.ndarray:
    """Nominal stress of the incompressible material in `mode` at loaded stretch
    `stretch` (uniaxial: along the load; equibiaxial and planar: in a loaded direction)."""
    stretch = np.asarray(stretch, dtype=float)
    stretches, free = mode_stretches(mode, stretch)
    tau = kirchhoff(form, values, stretches)
    return (tau[0] - tau[free]) / stretch


def initial_shear_modulus(form: Form, values: np.ndarray) -> float:
    """mu0: the small-strain shear modulus (what the D terms are scaled to)."""
    values = np.asarray(values, dtype=float)
    if form.family == OGDEN:
        return float(values[0::2].sum())
    if form.family == ARRUDA_BOYCE:
        mu, locking = values
        return float(mu * sum(k * c * 2.0 * 3.0 ** (k - 1) / locking ** (2 * k - 2)
                              for k, c in enumerate(AB_SERIES, start=1)))
    by_power = dict(zip(form.powers, values, strict=True))
    return float(2.0 * (by_power.get((1, 0), 0.0) + by_power.get((0, 1), 0.0)))


# Two log-strain directions of trace zero: every isochoric change is a combination.
_DIRECTIONS = np.array([[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]])
_STEP = 1e-5


def drucker_matrix(form: Form, values: np.ndarray, stretch: np.ndarray,
                   mode: str) -> np.ndarray:
    """The symmetric 2 x 2 matrix of d tau : d eps over two isochoric directions d eps, in
    `mode` at loaded stretch `stretch`: shape (n, 2, 2), linear in `values` for fixed
    shape constants (tau is)."""
    stretches, _ = mode_stretches(mode, np.asarray(stretch, dtype=float))
    log = np.log(stretches)
    changes = []
    for direction in _DIRECTIONS:
        shift = _STEP * direction[:, None]
        changes.append((kirchhoff(form, values, np.exp(log + shift))
                        - kirchhoff(form, values, np.exp(log - shift))) / (2 * _STEP))
    matrix = np.empty((log.shape[1], 2, 2))
    for a, other in enumerate(_DIRECTIONS):
        for b, change in enumerate(changes):
            matrix[:, a, b] = (other[:, None] * change).sum(axis=0)
    return 0.5 * (matrix + matrix.transpose(0, 2, 1))


def drucker_stable(form: Form, values: np.ndarray, stretch: np.ndarray,
                   mode: str) -> np.ndarray:
    """True where d tau : d eps > 0 for every isochoric d eps (Drucker), in `mode` at
    loaded stretch `stretch`."""
    m = drucker_matrix(form, values, stretch, mode)
    return (m[:, 0, 0] > 0) & (m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] ** 2 > 0)


def volumetric_pressure(form: Form, d: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """J dU/dJ, the Kirchhoff pressure of the volumetric term at volume ratio J."""
    if form.family == ARRUDA_BOYCE:
        return (volume ** 2 - 1.0) / d[0]
    change = volume - 1.0
    return volume * sum(2 * i / di * change ** (2 * i - 1)
                        for i, di in enumerate(d, start=1))


def compressible_uniaxial_stress(form: Form, values: np.ndarray, d: np.ndarray,
                                 stretch: np.ndarray) -> np.ndarray:
    """Nominal stress of the card as a solver has it (with its D terms) under uniaxial
    load with free lateral faces: the lateral stretch makes the lateral stress zero."""
    stretch = np.asarray(stretch, dtype=float)
    d = np.asarray(d, dtype=float)

    def lateral_stress(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lateral = np.sqrt(volume / stretch)
        isochoric = volume ** (-1.0 / 3.0) * np.stack([stretch, lateral, lateral])
        tau = kirchhoff(form, values, isochoric)
        deviatoric = tau - tau.mean(axis=0)
        pressure = volumetric_pressure(form, d, volume)
        return deviatoric[0] + pressure, deviatoric[2] + pressure

    volume = np.ones_like(stretch)
    for _ in range(50):  # Newton on J; converges in a few steps when K >> mu
        _, residual = lateral_stress(volume)
        step = 1e-7
        slope = (lateral_stress(volume + step)[1] - lateral_stress(volume - step)[1]) / (
            2 * step)
        change = residual / slope
        volume = volume - change
        if np.max(np.abs(change)) < 1e-14:
            break
    axial, _ = lateral_stress(volume)
    # Kirchhoff -> nominal: P = tau / l along the load.
    return axial / stretch


def stretch_box(low: float, high: float) -> tuple[float, float]:
    """The principal stretches a uniaxial test from stretch `low` to `high` reaches
    (loaded direction l, lateral l^-1/2, and the undeformed state): the deformations
    "within the exported range" are those whose principal stretches all lie in this."""
    low, high = min(low, 1.0), max(high, 1.0)
    return min(low, high ** -0.5), max(high, low ** -0.5)


def mode_range(mode: str, box: tuple[float, float]) -> tuple[float, float]:
    """The loaded stretches of `mode` whose principal stretches all lie in `box`."""
    low, high = box
    if mode == "uniaxial":  # (l, l^-1/2, l^-1/2)
        return max(low, high ** -2.0), min(high, low ** -2.0)
    if mode == "equibiaxial":  # (l, l, l^-2)
        return max(low, high ** -0.5), min(high, low ** -0.5)
    if mode == "planar":  # (l, 1, 1/l)
        return max(low, 1.0 / high), min(high, 1.0 / low)
    raise ValueError(f"unknown mode {mode!r}")
