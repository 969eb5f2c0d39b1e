"""Synthetic rubber groups whose curves depend on covariates: temperature, strain rate and
filler fraction (`surrogate-train make-data --covariates`; docs/covariates.md has the laws).

Every curve is an incompressible Mooney-Rivlin solid in uniaxial tension/compression,
  P(lambda) = 2 (lambda - lambda^-2) (C10 + C01 / lambda),  G = 2 (C10 + C01),
whose small-strain shear modulus G depends on the test condition and the compound:

  G = [G_E T/T0 + G_F exp(-(T - T0)/T_S)]            entropic part ~ absolute temperature,
                                                       plus a filler-network part that
                                                       softens as temperature rises
      x (1 + 2.5 phi + 14.1 phi^2)                   Guth-Gold hydrodynamic amplification
      x (1 + K_R log10(rate / RATE0))                stiffening with log strain rate
      x exp(e_m + e_mc)                              the compound's own offset e_m (shared
                                                       by all its conditions) and a smaller
                                                       specimen offset e_mc per condition

C01 / C10 = r_m is the compound's own (log-normal around 0.2), shared by its conditions.
Test noise is Normal with an SD that depends on the condition: larger when hot and at
rates far from the reference (noise_sd below).

Two designs of test programme:
- `compound`: every compound is tested at every condition of a grid (temperatures x
  rates); its filler fraction is its own. A compound's curves share e_m and r_m, so they
  are correlated across conditions.
- `specimen`: one curve per specimen, each at its own condition (temperature uniform,
  rate log-uniform, filler uniform over their ranges).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from training.data import mooney_rivlin_stress

T0 = 296.15  # K, reference temperature (23 C)
G_E = 0.45  # MPa, entropic modulus at T0
G_F = 0.15  # MPa, filler-network modulus at T0
T_S = 40.0  # K, softening temperature scale of the filler network
K_R = 0.06  # stiffening per decade of strain rate
RATE0 = 0.01  # 1/s, reference rate
COMPOUND_SD = 0.2  # SD of e_m (log modulus), the compound's own offset
SPECIMEN_SD = 0.07  # SD of e_mc (log modulus), per compound and condition
RATIO_MEDIAN, RATIO_LOG_SD = 0.2, 0.4  # C01/C10 per compound
NOISE_SD0 = 0.015  # MPa, test noise at T0 and RATE0

TEMPERATURES = (253.15, 273.15, 296.15, 323.15, 353.15)  # K: -20, 0, 23, 50, 80 C
RATES = (RATE0,)
FILLER_RANGE = (0.05, 0.30)
TEMPERATURE_RANGE = (TEMPERATURES[0], TEMPERATURES[-1])
RATE_RANGE = (1e-3, 1e-1)
STRETCH_RANGE = (0.5, 1.5)
# Strains per curve by default: a fit's cost grows with its rows, and 25 strains resolve
# a smooth hyperelastic curve (40 compounds x 5 temperatures = 5,000 rows; the curve
# model thins longer curves to 60 points anyway).
POINTS = 25
DESIGNS = ("compound", "specimen")
COLUMNS = ("temperature", "rate", "filler")
UNITS = {"temperature": "K", "rate": "1/s", "filler": "1"}


def shear_modulus(temperature: np.ndarray, rate: np.ndarray, filler: np.ndarray
                  ) -> np.ndarray:
    """The population's median small-strain shear modulus G (MPa) at a condition."""
    thermal = G_E * temperature / T0 + G_F * np.exp(-(temperature - T0) / T_S)
    guth_gold = 1.0 + 2.5 * filler + 14.1 * filler**2
    return thermal * guth_gold * (1.0 + K_R * np.log10(rate / RATE0))


def noise_sd(temperature: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Test-noise SD (MPa): grows with temperature and with the distance of the rate from
    the reference rate (in decades)."""
    return NOISE_SD0 * (temperature / T0) ** 1.5 * (1.0 + 0.15 * np.abs(np.log10(rate / RATE0)))


def curve(stretch: np.ndarray, modulus: float, ratio: float) -> np.ndarray:
    """Mooney-Rivlin nominal stress with small-strain shear modulus `modulus` and
    C01/C10 = `ratio`."""
    c10 = modulus / (2.0 * (1.0 + ratio))
    return mooney_rivlin_stress(stretch, c10, ratio * c10)


def make_covariate_group(
    materials: int = 40,
    points: int = POINTS,
    seed: int = 0,
    design: str = "compound",
    temperatures: Sequence[float] = TEMPERATURES,
    rates: Sequence[float] = RATES,
) -> pd.DataFrame:
    """Columns strain, stress, material, temperature [K], rate [1/s], filler [1].

    `compound`: `materials` compounds, each tested at every (temperature, rate) of the grid
    (`points` strains per curve). `specimen`: `materials` specimens, one curve each at its
    own random condition (the grid arguments are not used).
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose from {list(DESIGNS)}")
    rng = np.random.default_rng(seed)
    stretch = np.linspace(*STRETCH_RANGE, points)
    frames = []
    for material in range(materials):
        filler = rng.uniform(*FILLER_RANGE)
        offset = COMPOUND_SD * rng.standard_normal()
        ratio = RATIO_MEDIAN * np.exp(RATIO_LOG_SD * rng.standard_normal())
        if design == "compound":
            conditions = [(t, r) for t in temperatures for r in rates]
        else:
            conditions = [(rng.uniform(*TEMPERATURE_RANGE),
                           float(np.exp(rng.uniform(*np.log(RATE_RANGE)))))]
        for temperature, rate in conditions:
            specimen = SPECIMEN_SD * rng.standard_normal()
            modulus = float(shear_modulus(np.float64(temperature), np.float64(rate),
                                          np.float64(filler))) * np.exp(offset + specimen)
            scatter = float(noise_sd(np.float64(temperature), np.float64(rate)))
            stress = curve(stretch, modulus, ratio) + scatter * rng.standard_normal(points)
            frames.append(pd.DataFrame({
                "strain": stretch - 1.0, "stress": stress, "material": material,
                "temperature": temperature, "rate": rate, "filler": round(filler, 4)}))
    return pd.concat(frames, ignore_index=True)


def population_curves(strain: np.ndarray, temperature: float, rate: float, filler: float,
                      count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` fresh compounds at one condition: (noise-free curves, measured curves),
    each (count, len(strain)): the generating process, for scoring fits."""
    rng = np.random.default_rng(seed)
    stretch = np.asarray(strain, dtype=float) + 1.0
    modulus = shear_modulus(np.float64(temperature), np.float64(rate), np.float64(filler))
    offsets = (COMPOUND_SD * rng.standard_normal(count)
               + SPECIMEN_SD * rng.standard_normal(count))
    ratios = RATIO_MEDIAN * np.exp(RATIO_LOG_SD * rng.standard_normal(count))
    curves = np.array([curve(stretch, modulus * np.exp(o), r)
                       for o, r in zip(offsets, ratios, strict=True)])
    scatter = noise_sd(np.float64(temperature), np.float64(rate))
    return curves, curves + scatter * rng.standard_normal(curves.shape)
