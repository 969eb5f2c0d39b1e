"""Families of covariate laws that `make-data --covariates` does not use, for
benchmarks/covariates.py, each a `Law`: its material and specimen random effects, its
clean stress and its test noise, so the same code makes its groups and conditions it
exactly (`conditioned_exactly`).

`OGDEN_ARRHENIUS`: one-term Ogden rubbers whose modulus follows an Arrhenius law in
temperature, whose exponent falls as they warm, and whose own temperature sensitivity
differs from material to material. Per material m at temperature T (K), stretch lambda:

    P = 2 mu / alpha (lambda^(alpha - 1) - lambda^(-alpha/2 - 1))
    mu = MU_REF exp(a_m) exp((E / R + b_m) (1/T - 1/T_REF)) exp(c_mT)   Arrhenius stiffening
    alpha = ALPHA_REF (1 - 0.003 (T - T_REF)) exp(d_m)                 softer strain-stiffening

a_m (log modulus, SD 0.2), b_m (activation energy / R, SD 300 K) and d_m (SD 0.08) are
the material's own, shared by its temperatures; c_mT (SD 0.05) is a new specimen's. Because
b_m differs, materials cross over as temperature changes: a material's deviation at one
temperature says less about another the farther apart they are (the generator's
materials keep their rank at every temperature). Test noise: SD 0.01 MPa + 2% of |P|.

`GENT_GLASS`: Gent rubbers (finite extensibility) near their glass transition: the
modulus rises along a logistic step as the temperature falls towards each material's own
transition temperature, and the chains' extensibility grows as they warm:

    P = mu J / (J - I1 + 3) (lambda - lambda^-2),  I1 = lambda^2 + 2 / lambda
    mu = MU_RUBBER exp(a_m + c_mT) (T / T_REF) (1 + STEP / (1 + exp((T - Tg_m) / WIDTH)))
    J = J_REF exp(d_m) (T / T_REF)^2

a_m (SD 0.15), Tg_m = TG + g_m (g_m SD 8 K) and d_m (SD 0.1) are the material's own, c_mT
(SD 0.03) a new specimen's. Materials keep their rank except near their transitions.
Test noise: SD 0.005 MPa + 1.5% of |P|.

`YEOH_RATE`: filled rubbers (Yeoh's three-term law) tested at strain rates over four
decades, 0.001-10/s. Filled rubbers stiffen by roughly a tenth per decade of rate, as a
power law of the rate (a broad relaxation spectrum), each compound with its own exponent;
the strain-stiffening (C3) term, set by the filler network, rises twice as fast:

    P = 2 (lambda - lambda^-2) (C1 + 2 C2 (I1 - 3) + 3 C3 (I1 - 3)^2)
    C1 = C1_REF exp(a_m + c_mR) (R / R_REF)^n_m,  C2 = C2_REF C1 / C1_REF
    C3 = C3_REF exp(d_m) (R / R_REF)^(2 n_m)
    n_m = N_RATE + e_m

a_m (SD 0.15), d_m (SD 0.2) and e_m (SD 0.02 around N_RATE 0.05) are the compound's own,
shared by its rates; c_mR (SD 0.03) is a new specimen's. The covariate is named `rate`
(1/s); the laws above vary the `temperature`. Test noise: SD 0.005 MPa + 1.5% of |P|.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import norm

from training.spread import fraction_interval

TEMPERATURES = (253.15, 273.15, 296.15, 323.15, 353.15)
T_REF = 296.15
RATES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # 1/s
# Draws of a family's own law in `conditioned_exactly`.
ORACLE_DRAWS = 100_000

Effects = dict[str, np.ndarray]


@dataclass(frozen=True)
class Law:
    """A family: the SDs of its material effects (drawn in this order), of a specimen's
    c, its stress (of stretch, condition, effects, c) and its test noise, and the
    covariate its condition is a value of, with the values a group is tested at."""

    name: str
    stretch_range: tuple[float, float]
    material_sds: dict[str, float]
    specimen_sd: float
    stress: Callable[[np.ndarray, float, Effects, np.ndarray], np.ndarray]
    noise_sd: Callable[[np.ndarray], np.ndarray]
    covariate: str = "temperature"
    conditions: tuple[float, ...] = TEMPERATURES

    def group(self, materials: int, points: int, seed: int,
              conditions: Sequence[float] | None = None) -> pd.DataFrame:
        """Columns strain, stress, material and the covariate: every material at every
        condition (default: `conditions`)."""
        rng = np.random.default_rng(seed)
        stretch = np.linspace(*self.stretch_range, points)
        frames = []
        for material in range(materials):
            effects = {name: sd * rng.standard_normal()
                       for name, sd in self.material_sds.items()}
            for condition in self.conditions if conditions is None else conditions:
                c = self.specimen_sd * rng.standard_normal()
                clean = self.stress(stretch, condition, effects, np.asarray(c))
                noise = self.noise_sd(clean) * rng.standard_normal(points)
                frames.append(pd.DataFrame({
                    "strain": stretch - 1.0, "stress": clean + noise, "material": material,
                    self.covariate: condition}))
        return pd.concat(frames, ignore_index=True)


# --- Ogden, Arrhenius -------------------------------------------------------------------

MU_REF = 0.35  # MPa
E_OVER_R = 900.0  # K
ALPHA_REF = 2.5


def ogden_stress(stretch: np.ndarray, mu: float | np.ndarray,
                 alpha: float | np.ndarray) -> np.ndarray:
    return 2.0 * mu / alpha * (stretch ** (alpha - 1.0) - stretch ** (-alpha / 2.0 - 1.0))


def _ogden_arrhenius(stretch: np.ndarray, temperature: float, m: Effects,
                     c: np.ndarray) -> np.ndarray:
    mu = MU_REF * np.exp(m["a"] + (E_OVER_R + m["b"]) * (1 / temperature - 1 / T_REF) + c)
    alpha = ALPHA_REF * (1 - 0.003 * (temperature - T_REF)) * np.exp(m["d"])
    return ogden_stress(stretch, mu, alpha)


OGDEN_ARRHENIUS = Law("ogden-arrhenius", (0.5, 1.5), {"a": 0.2, "b": 300.0, "d": 0.08},
                      0.05, _ogden_arrhenius, lambda clean: 0.01 + 0.02 * np.abs(clean))


# --- Gent, glass transition -------------------------------------------------------------

MU_RUBBER = 0.4  # MPa
TG, STEP, WIDTH = 240.0, 3.0, 10.0  # K, modulus rise, K
J_REF = 30.0


def _gent_glass(stretch: np.ndarray, temperature: float, m: Effects,
                c: np.ndarray) -> np.ndarray:
    glassy = STEP / (1.0 + np.exp((temperature - TG - m["g"]) / WIDTH))
    mu = MU_RUBBER * np.exp(m["a"] + c) * (temperature / T_REF) * (1.0 + glassy)
    extensibility = J_REF * np.exp(m["d"]) * (temperature / T_REF) ** 2
    first = stretch ** 2 + 2.0 / stretch
    return mu * extensibility / (extensibility - first + 3.0) * (stretch - stretch ** -2)


GENT_GLASS = Law("gent-glass", (0.6, 2.2), {"a": 0.15, "g": 8.0, "d": 0.1}, 0.03,
                 _gent_glass, lambda clean: 0.005 + 0.015 * np.abs(clean))


# --- Yeoh, strain rate ------------------------------------------------------------------

C1_REF, C2_REF, C3_REF = 0.4, -0.015, 0.0015  # MPa
R_REF = 0.01  # 1/s
N_RATE = 0.05


def _yeoh_rate(stretch: np.ndarray, rate: float, m: Effects, c: np.ndarray) -> np.ndarray:
    exponent = N_RATE + m["e"]
    c1 = C1_REF * np.exp(m["a"] + c) * (rate / R_REF) ** exponent
    c2 = C2_REF * c1 / C1_REF
    c3 = C3_REF * np.exp(m["d"]) * (rate / R_REF) ** (2.0 * exponent)
    stretched = stretch ** 2 + 2.0 / stretch - 3.0
    return 2.0 * (stretch - stretch ** -2) * (c1 + 2.0 * c2 * stretched
                                              + 3.0 * c3 * stretched ** 2)


YEOH_RATE = Law("yeoh-rate", (0.7, 2.5), {"a": 0.15, "d": 0.2, "e": 0.02}, 0.03,
                _yeoh_rate, lambda clean: 0.005 + 0.015 * np.abs(clean), "rate", RATES)


def ogden_arrhenius_group(materials: int, points: int, seed: int,
                          temperatures: Sequence[float] = TEMPERATURES) -> pd.DataFrame:
    return OGDEN_ARRHENIUS.group(materials, points, seed, temperatures)


# --- the most any model can gain --------------------------------------------------------

# A family's curves under its own law, for one material: (material, condition, strain)
# -> (clean stress of every draw of its effects (ORACLE_DRAWS, n), test-noise SD (.., n)),
# each call with a new specimen of every draw.
DrawnCurves = Callable[[int, float, np.ndarray], tuple[np.ndarray, np.ndarray]]


def law_curves(law: Law, rng: np.random.Generator) -> DrawnCurves:
    """`law`'s curves over ORACLE_DRAWS draws of the material effects from their prior (a
    new material's are unknown: every material draws from the same ones)."""
    effects = {name: sd * rng.standard_normal((ORACLE_DRAWS, 1))
               for name, sd in law.material_sds.items()}

    def curves(material: int, condition: float, strain: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        c = law.specimen_sd * rng.standard_normal((ORACLE_DRAWS, 1))
        clean = law.stress(strain[None] + 1.0, condition, effects, c)
        return clean, law.noise_sd(clean)
    return curves


def coverage_over_materials(pits: np.ndarray, materials: np.ndarray
                            ) -> tuple[float, float, float]:
    """The 95% central coverage of these PIT values and its 95% interval counting the
    materials, not the points, as the evidence (a material's points move together)."""
    inside = np.abs(pits - 0.5) <= 0.475
    return (float(np.mean(inside)), *fraction_interval(inside, materials))


def conditioned_exactly(curves: DrawnCurves,
                        given: list[tuple[float, np.ndarray, np.ndarray]],
                        targets: list[list[tuple[float, np.ndarray, np.ndarray]]]
                        ) -> tuple[float, tuple[float, float, float]]:
    """The family's own law conditioned exactly on each material's given points, by
    importance sampling over its draws: (the gain over the law's unconditioned answer in
    nats per target point - the most any model can gain - and the 95% coverage of its
    conditioned answer - what a perfectly calibrated one gets on these curves - with its
    interval over materials, `coverage_over_materials`). given[i] =
    (condition, strain, stress) of material i's given points; targets[i] its curves to
    predict, each (condition, strain, stress); a target curve is a new specimen."""

    def densities(material: int, condition: float, strain: np.ndarray,
                  stress: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        clean, sd = curves(material, condition, strain)
        standard = (stress[None] - clean) / sd
        return norm.logpdf(standard) - np.log(sd), norm.cdf(standard)

    gains, pits, materials = [], [], []
    for material, ((condition, strain, stress), targeted) in enumerate(
            zip(given, targets, strict=True)):
        log_weight = densities(material, condition, strain, stress)[0].sum(axis=1)
        log_weight -= logsumexp(log_weight)
        for curve in targeted:
            density, cdf = densities(material, *curve)
            given_lp = logsumexp(density + log_weight[:, None], axis=0)
            plain_lp = logsumexp(density, axis=0) - np.log(ORACLE_DRAWS)
            gains.append(given_lp - plain_lp)
            pits.append(np.exp(log_weight) @ cdf)
            materials.append(np.full(pits[-1].size, material))
    coverage = coverage_over_materials(np.concatenate(pits), np.concatenate(materials))
    return float(np.mean(np.concatenate(gains))), coverage


def generator_curves(fillers: Sequence[float], rng: np.random.Generator) -> DrawnCurves:
    """The `make-data --covariates` generator's own law (compound design, reference rate)
    as `DrawnCurves`: each material's compound offset and C01/C10 ratio drawn from their
    priors, its filler fraction known (fillers[material]: a covariate the request gives)."""
    from training import covariate_data as generator

    offset = generator.COMPOUND_SD * rng.standard_normal((ORACLE_DRAWS, 1))
    ratio = generator.RATIO_MEDIAN * np.exp(
        generator.RATIO_LOG_SD * rng.standard_normal((ORACLE_DRAWS, 1)))
    rate = np.float64(generator.RATE0)

    def curves(material: int, temperature: float, strain: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        specimen = generator.SPECIMEN_SD * rng.standard_normal((ORACLE_DRAWS, 1))
        modulus = float(generator.shear_modulus(np.float64(temperature), rate,
                                                np.float64(fillers[material])))
        clean = generator.curve(strain[None] + 1.0, modulus * np.exp(offset + specimen), ratio)
        sd = float(generator.noise_sd(np.float64(temperature), rate))
        return clean, np.full_like(clean, sd)
    return curves
