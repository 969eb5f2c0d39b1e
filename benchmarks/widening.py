"""Few materials: the served band before and after the scatter widening
(training.widening), on new materials.

    .venv/bin/python benchmarks/widening.py [--groups lab,compounds] [--specimens 3,10]
                                            [--seeds 0,1] [--temperatures=-20,0,23,60]

lab: a lab-style file per (specimens, seed): one compound tested at -20, 0, 23 and 60 degC
(`--temperatures`; at one temperature the fit has no covariate), `specimens` specimens
at each, 300 points per curve in % strain, each specimen stopping
at its own strain (earlier when hot). The law (not the make-data generator's): a
two-term Mooney-Rivlin-like curve, modulus proportional to absolute temperature with a
glassy stiffening below about -18 degC, 5% log-normal scatter of each specimen's modulus
and 30% of its second constant, test noise 1% of the stress + 0.003 MPa.

Each file is fitted as a user would (`surrogate-train fit --group Specimen --covariate
Temp:degC` with its default held-out folds), and the served fit is scored on 30 new
specimens per temperature (another seed), each only up to the strain tested at its
temperature: NLPD and 95% coverage as served (widened where the fit chose to) and with
the widening taken back off, and the factor the new specimens themselves would ask for
on top of the served band (their NLPD-optimal sigma factor: 1 is ideal).

compounds: make-data covariate groups of 40 compounds x 5 temperatures (seeds 11-13),
the first 16 compounds fitted with defaults (`--covariate temperature:K --covariate
filler`, default held-out folds), scored on the other 24 as served and unwidened.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import training  # noqa: E402,F401  (BLAS settings before numpy/pytensor load)
from training import calibration  # noqa: E402
from training.config import BNNConfig  # noqa: E402
from training.covariate_data import make_covariate_group  # noqa: E402
from training.data import CovariateColumn, TrainingData  # noqa: E402
from training.pipeline import Units, fit_data, widened  # noqa: E402

TEMPERATURES = (-20, 0, 23, 60)
POINTS = 300
COVARIATE = (CovariateColumn("Temp", "degC"),)


def lab_file(specimens: int, seed: int,
             temperatures: tuple[float, ...] = TEMPERATURES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for temperature in temperatures:
        kelvin = temperature + 273.15
        modulus = 0.5 * kelvin / 296.0 * (1 + 0.8 / (1 + np.exp((kelvin - 255) / 8)))
        for _ in range(specimens):
            mu = modulus * np.exp(0.05 * rng.standard_normal())
            c2 = 0.05 * modulus * np.exp(0.3 * rng.standard_normal())
            stop = rng.uniform(1.6, 3.0) * (0.8 if temperature > 30 else 1.0)
            strain = np.linspace(0.0, stop, POINTS)
            stretch = 1 + strain
            invariant = stretch**2 + 2 / stretch
            stress = 2 * (stretch - stretch**-2) * (mu / 2 + c2 * (invariant - 3))
            stress += (0.01 * np.abs(stress) + 0.003) * rng.standard_normal(POINTS)
            frames.append(pd.DataFrame({
                "Specimen": f"S{len(frames) + 1}", "Temp": float(temperature),
                "Strain_pct": 100 * strain, "Stress_MPa": stress}))
    return pd.concat(frames, ignore_index=True)


def data_of(frame: pd.DataFrame) -> TrainingData:
    """The file as `--group Specimen --covariate Temp:degC` reads it (without the
    covariate when every specimen was tested at one temperature)."""
    one = frame["Temp"].nunique() == 1
    return TrainingData(frame["Strain_pct"].to_numpy(), frame["Stress_MPa"].to_numpy(),
                        frame["Specimen"].to_numpy(), "Strain_pct", "Stress_MPa", "-",
                        len(frame), None if one else frame[["Temp"]].to_numpy(dtype=float),
                        () if one else COVARIATE)


def scores(posterior, new: TrainingData) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """NLPD, 95% coverage, and the sigma factor the new specimens' NLPD asks for."""
    draws = calibration.predictive_draws(posterior, new.x, new.covariates)
    summary = calibration.summarise(calibration.pointwise(new.y, draws))
    factors = np.exp(np.linspace(-1.0, 2.0, 121))
    best = factors[np.argmin([calibration.nlpd(new.y, calibration.PredictiveDraws(
        draws.mu, draws.sigma * f)) for f in factors])]
    return summary["nlpd"], summary["coverage"]["0.95"], float(best)


def report(label: str, trained, new: TrainingData) -> None:  # type: ignore[no-untyped-def]
    """The fit's held-out figures and widening, and its new materials' scores as served
    and with the widening taken back off."""
    metrics = trained.artifact.spec.metrics
    widening = metrics["scatter_widening"]
    factor = float(widening["factor"])
    held = metrics["held_out"]
    print(f"{label}: {held['spread']['folds']} folds, held-out 95% coverage "
          f"{held['coverage']['0.95']:.3f}; the folds asked for "
          f"x{widening['asked_factor']:.3f}, the fit took x{factor:.3f}", flush=True)
    after = widening.get("held_out_after")
    if after:
        print(f"    held-out cross-fitted: NLPD {after['nlpd']:.3f} widened, "
              f"{widening['held_out_before']['nlpd']:.3f} as fitted; 95% coverage "
              f"{after['coverage']['0.95']:.3f}", flush=True)
    for name, posterior in (("served", trained.posterior),
                            ("unwidened", widened(trained, 1 / factor).posterior)):
        nlpd, coverage, best = scores(posterior, new)
        print(f"    new materials, {name}: NLPD {nlpd:.3f}, 95% coverage {coverage:.3f}, "
              f"their own factor x{best:.2f}", flush=True)


def lab(specimens: int, seed: int, temperatures: tuple[float, ...]) -> None:
    frame = lab_file(specimens, seed, temperatures)
    trained = fit_data(data_of(frame), BNNConfig(), Units("%", "MPa"))
    new_frame = lab_file(30, seed + 1000, temperatures)
    tested = frame.groupby("Temp")["Strain_pct"].max()
    new = data_of(new_frame[new_frame["Strain_pct"]
                            <= new_frame["Temp"].map(tested)].reset_index(drop=True))
    report(f"{specimens} specimens x {len(temperatures)} temperature(s), seed {seed}",
           trained, new)


COMPOUND_COLUMNS = (CovariateColumn("temperature", "K"), CovariateColumn("filler"))


def compounds_of(frame: pd.DataFrame) -> TrainingData:
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame),
                        frame[["temperature", "filler"]].to_numpy(dtype=float),
                        COMPOUND_COLUMNS)


def compounds(seed: int, fitted: int = 16) -> None:
    frame = make_covariate_group(materials=40, points=25, seed=seed)
    trained = fit_data(compounds_of(frame[frame["material"] < fitted]), BNNConfig())
    report(f"{fitted} compounds x 5 temperatures, seed {seed}", trained,
           compounds_of(frame[frame["material"] >= fitted]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="lab,compounds")
    parser.add_argument("--specimens", default="3,10")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--temperatures", default=",".join(str(t) for t in TEMPERATURES))
    args = parser.parse_args()
    groups = args.groups.split(",")
    if "lab" in groups:
        for specimens in (int(v) for v in args.specimens.split(",")):
            for seed in (int(v) for v in args.seeds.split(",")):
                lab(specimens, seed,
                    tuple(float(t) for t in args.temperatures.split(",")))
    if "compounds" in groups:
        for seed in (11, 12, 13):
            compounds(seed)


if __name__ == "__main__":
    main()
