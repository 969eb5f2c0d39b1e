"""A family of covariate laws that `make-data --covariates` does not use, for
benchmarks/covariates.py: one-term Ogden rubbers whose modulus follows an Arrhenius law in
temperature, whose exponent falls as they warm, and whose own temperature sensitivity
differs from material to material.

Per material m at temperature T (K), stretch lambda:

    P = 2 mu / alpha (lambda^(alpha - 1) - lambda^(-alpha/2 - 1))
    mu = MU_REF exp(a_m) exp((E / R + b_m) (1/T - 1/T_REF)) exp(c_mT)   Arrhenius stiffening
    alpha = ALPHA_REF (1 - 0.003 (T - T_REF)) exp(d_m)                 softer strain-stiffening

a_m (log modulus, SD 0.2), b_m (activation energy / R, SD 300 K) and d_m (SD 0.08) are
the material's own, shared by its temperatures; c_mT (SD 0.05) is a new specimen's. Because
b_m differs, materials cross over as temperature changes: a material's deviation at one
temperature says less about another the farther apart they are (the generator's
materials keep their rank at every temperature). Test noise: SD 0.01 MPa + 2% of |P|.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import logsumexp

T_REF = 296.15
MU_REF = 0.35  # MPa
E_OVER_R = 900.0  # K
ALPHA_REF = 2.5
TEMPERATURES = (253.15, 273.15, 296.15, 323.15, 353.15)
STRETCH_RANGE = (0.5, 1.5)
# SDs of a material's own a_m, b_m, d_m and of a specimen's c_mT.
A_SD, B_SD, D_SD, C_SD = 0.2, 300.0, 0.08, 0.05
# Draws of the family's own law in `bayes_optimal_gain`.
ORACLE_DRAWS = 100_000


def ogden_stress(stretch: np.ndarray, mu: float | np.ndarray,
                 alpha: float | np.ndarray) -> np.ndarray:
    return 2.0 * mu / alpha * (stretch ** (alpha - 1.0) - stretch ** (-alpha / 2.0 - 1.0))


def clean_stress(stretch: np.ndarray, temperature: float, a, b, d, c) -> np.ndarray:
    """P of materials (a, b, d) and specimens c at one temperature: broadcasting arrays."""
    mu = MU_REF * np.exp(a + (E_OVER_R + b) * (1 / temperature - 1 / T_REF) + c)
    alpha = ALPHA_REF * (1 - 0.003 * (temperature - T_REF)) * np.exp(d)
    return ogden_stress(stretch, mu, alpha)


def noise_sd(clean: np.ndarray) -> np.ndarray:
    return 0.01 + 0.02 * np.abs(clean)


def ogden_arrhenius_group(materials: int, points: int, seed: int,
                          temperatures: Sequence[float] = TEMPERATURES) -> pd.DataFrame:
    """Columns strain, stress, material, temperature: every material at every temperature."""
    rng = np.random.default_rng(seed)
    stretch = np.linspace(*STRETCH_RANGE, points)
    frames = []
    for material in range(materials):
        a, b, d = A_SD * rng.standard_normal(), B_SD * rng.standard_normal(), \
            D_SD * rng.standard_normal()
        for temperature in temperatures:
            clean = clean_stress(stretch, temperature, a, b, d, C_SD * rng.standard_normal())
            noise = noise_sd(clean) * rng.standard_normal(points)
            frames.append(pd.DataFrame({"strain": stretch - 1.0, "stress": clean + noise,
                                        "material": material, "temperature": temperature}))
    return pd.concat(frames, ignore_index=True)


def bayes_optimal_gain(given: list[tuple[float, np.ndarray, np.ndarray]],
                       targets: list[list[tuple[float, np.ndarray, np.ndarray]]],
                       seed: int = 0) -> float:
    """The most any model can gain, in nats per target point, from each material's given
    points: the family's own law conditioned exactly, by importance sampling over
    `ORACLE_DRAWS` draws of (a, b, d) from their prior. given[i] = (temperature, strain,
    stress) of material i's given points; targets[i] its curves to predict, each
    (temperature, strain, stress); a target curve is a new specimen (fresh c_mT)."""
    rng = np.random.default_rng(seed)
    a, b, d = (sd * rng.standard_normal((ORACLE_DRAWS, 1)) for sd in (A_SD, B_SD, D_SD))
    gains = []
    for (temperature, strain, stress), curves in zip(given, targets, strict=True):
        clean = clean_stress(strain[None] + 1.0, temperature, a, b, d,
                             C_SD * rng.standard_normal((ORACLE_DRAWS, 1)))
        log_weight = _log_normal(stress[None], clean, noise_sd(clean)).sum(axis=1)
        log_weight -= logsumexp(log_weight)
        for target_temperature, target_strain, target_stress in curves:
            clean = clean_stress(target_strain[None] + 1.0, target_temperature, a, b, d,
                                 C_SD * rng.standard_normal((ORACLE_DRAWS, 1)))
            density = _log_normal(target_stress[None], clean, noise_sd(clean))
            given_lp = logsumexp(density + log_weight[:, None], axis=0)
            plain_lp = logsumexp(density, axis=0) - np.log(ORACLE_DRAWS)
            gains.append(given_lp - plain_lp)
    return float(np.mean(np.concatenate(gains)))


def _log_normal(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((y - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2.0 * np.pi)
