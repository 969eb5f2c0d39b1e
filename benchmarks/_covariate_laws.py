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

T_REF = 296.15
MU_REF = 0.35  # MPa
E_OVER_R = 900.0  # K
ALPHA_REF = 2.5
TEMPERATURES = (253.15, 273.15, 296.15, 323.15, 353.15)
STRETCH_RANGE = (0.5, 1.5)


def ogden_stress(stretch: np.ndarray, mu: float, alpha: float) -> np.ndarray:
    return 2.0 * mu / alpha * (stretch ** (alpha - 1.0) - stretch ** (-alpha / 2.0 - 1.0))


def ogden_arrhenius_group(materials: int, points: int, seed: int,
                          temperatures: Sequence[float] = TEMPERATURES) -> pd.DataFrame:
    """Columns strain, stress, material, temperature: every material at every temperature."""
    rng = np.random.default_rng(seed)
    stretch = np.linspace(*STRETCH_RANGE, points)
    frames = []
    for material in range(materials):
        a, b, d = 0.2 * rng.standard_normal(), 300.0 * rng.standard_normal(), \
            0.08 * rng.standard_normal()
        for temperature in temperatures:
            mu = MU_REF * np.exp(a + (E_OVER_R + b) * (1 / temperature - 1 / T_REF)
                                 + 0.05 * rng.standard_normal())
            alpha = ALPHA_REF * (1 - 0.003 * (temperature - T_REF)) * np.exp(d)
            clean = ogden_stress(stretch, mu, alpha)
            noise = (0.01 + 0.02 * np.abs(clean)) * rng.standard_normal(points)
            frames.append(pd.DataFrame({"strain": stretch - 1.0, "stress": clean + noise,
                                        "material": material, "temperature": temperature}))
    return pd.concat(frames, ignore_index=True)
