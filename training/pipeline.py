"""CSV -> normalised data -> BNN fit -> artifact (physical units); `training.registration`
stores it."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact
from service.manifest import MAX_TESTED_CONDITIONS
from training.data import CovariateColumn, TrainingData, load_csv
from training.model import BNNConfig, FitResult, HeteroskedasticBNN


@dataclass(frozen=True)
class Units:
    x: str = "1"
    y: str = "MPa"


@dataclass
class TrainedFit:
    artifact: Artifact
    result: FitResult


def library_versions() -> dict[str, str]:
    names = ("pymc", "pytensor", "arviz", "numpy", "scipy", "scoringrules", "nutpie")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = package_version(name)
        except PackageNotFoundError:  # nutpie is needed only for --method nuts
            continue
    return versions


@dataclass(frozen=True)
class Split:
    """Which rows trained the registered fit and which were held out to score it."""

    train: np.ndarray
    test: np.ndarray
    by: str  # "group", "rows" or "none"
    held_out_groups: list[Any]


def holdout_split(data: TrainingData, fraction: float, seed: int) -> Split:
    """Hold out whole groups (materials) when the data has a group column, else rows.

    A material the fit has seen leaks its own curve into the test set; a new material is
    what a user will ask about, so groups are held out whole. Fewer than 3 groups (or 10
    rows) leave nothing sensible to hold out: then everything trains and nothing is scored.
    """
    everything = np.arange(data.rows)
    if fraction <= 0:
        return Split(everything, everything[:0], "none", [])
    rng = np.random.default_rng(seed)
    if data.groups is not None:
        groups = np.unique(data.groups)
        if groups.size >= 3:
            count = min(groups.size - 2, max(1, round(fraction * groups.size)))
            held = rng.choice(groups, size=count, replace=False)
            test = np.isin(data.groups, held)
            return Split(everything[~test], everything[test], "group",
                         sorted(v.item() if hasattr(v, "item") else v for v in held))
    if data.rows < 10:
        return Split(everything, everything[:0], "none", [])
    test = np.zeros(data.rows, dtype=bool)
    test[rng.choice(data.rows, size=max(1, round(fraction * data.rows)), replace=False)] = True
    return Split(everything[~test], everything[test], "rows", [])


def subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    groups = None if data.groups is None else data.groups[rows]
    covariates = None if data.covariates is None else data.covariates[rows]
    return TrainingData(data.x[rows], data.y[rows], groups, data.x_name, data.y_name,
                        data.sha256, int(rows.size), covariates, data.covariate_columns)


def fit_data(data: TrainingData, config: BNNConfig, units: Units = Units(),
             holdout: float = 0.2, report_dir: Path | None = None,
             parallel: bool = True) -> TrainedFit:
    """Fit the served version on ALL the data, and score a separate fit on a split.

    The served posterior uses every material. Its held-out metrics come from a second,
    independent fit of the same configuration on the training split (whole materials held
    out), scored on the held-out part: they estimate how a fit of this kind does on new
    materials. The two fits run at the same time in two processes (`parallel`), so the
    command takes about as long as one fit on two cores. `holdout=0` runs only the
    served fit and stores no held-out metrics.
    """
    from training import calibration

    split = holdout_split(data, holdout, config.model.seed)
    held_out: dict[str, Any] | None = None
    if split.test.size:
        if parallel:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may already run numba's OpenMP threads, which a
            # forked child would inherit in an undefined state.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                future = pool.submit(held_out_fit, data, split, config, units)
                trained = fit_model(data, config, units)
                held_out = future.result()
        else:
            held_out = held_out_fit(data, split, config, units)
            trained = fit_model(data, config, units)
    else:
        trained = fit_model(data, config, units)
    artifact, result = trained.artifact, trained.result
    manifest = artifact.manifest
    y_scale = artifact.spec.normalisation.y_scale
    metrics: dict[str, Any] = {
        "split": {"by": split.by, "fraction": holdout, "seed": config.model.seed,
                  "train_rows": int(split.train.size), "test_rows": int(split.test.size),
                  "held_out_groups": [str(g) for g in split.held_out_groups]},
        "refit_on_all_data": True,
    }
    if held_out is not None:
        metrics["held_out"] = held_out["metrics"]
        metrics["held_out_fit"] = held_out["fit"]
    metrics["training"] = calibration.evaluate(artifact, data.x, data.y, y_scale,
                                               data.covariates)
    strains, empirical, at = calibration.empirical_sd_by_condition(data.x, data.y,
                                                                   data.covariates)
    metrics["aleatoric_sd_error"] = calibration.aleatoric_sd_error(artifact, strains,
                                                                   empirical, at)
    metrics["aleatoric_sd_error_strains"] = int(strains.size)
    metrics["epistemic_extrapolation"] = calibration.epistemic_extrapolation(artifact)
    manifest["metrics"] = metrics
    function_space = calibration.function_space_diagnostics(
        artifact, result.chains, float(np.min(data.x)), float(np.max(data.x)))
    if function_space:
        manifest["diagnostics"]["function_space"] = function_space
        manifest["diagnostics"]["converged"] = bool(
            manifest["diagnostics"].get("converged", True)
            and function_space["r_hat_max"] < 1.05)
    if report_dir is not None:
        from training.report import write_report

        held_artifact = (None if held_out is None or held_out["artifact"] is None
                         else Artifact.from_bytes(held_out["artifact"]))
        files = write_report(artifact, result, data, data, split, report_dir,
                             held_artifact)
        manifest["report"] = {"dir": str(Path(report_dir).resolve()), "files": files}
    artifact.validate()
    return trained


def fit_model(data: TrainingData, config: BNNConfig, units: Units = Units(),
              full_data: TrainingData | None = None) -> TrainedFit:
    """The BNN on `data`, plus the curve model of its materials when it has groups."""
    from service.inference.posterior import Posterior
    from training.curves import fit_for_posterior

    trained = fit_training_rows(data, config, units, full_data)
    started = time.perf_counter()
    section = fit_for_posterior(Posterior(trained.artifact), data.x, data.y, data.groups,
                                covariates=data.covariates)
    if section is not None:
        section["fit"]["wall_time_s"] = round(time.perf_counter() - started, 3)
        trained.artifact.manifest["curve_model"] = section
        trained.artifact.validate()
    return trained


def held_out_fit(data: TrainingData, split: Split, config: BNNConfig,
                 units: Units) -> dict[str, Any]:
    """Fit the training split and score it on the held-out rows: the version's held-out
    metrics (and that fit's artifact bytes, for the report's conditioning figure). Runs
    in a worker process; everything it takes and returns is picklable."""
    import training  # noqa: F401  (one BLAS thread in the worker too)
    from service.inference.posterior import Posterior
    from training import calibration, curve_metrics

    train, test = subset(data, split.train), subset(data, split.test)
    started = time.perf_counter()
    trained = fit_model(train, config, units, full_data=data)
    artifact = trained.artifact
    y_scale = artifact.spec.normalisation.y_scale
    metrics = calibration.evaluate(artifact, test.x, test.y, y_scale, test.covariates)
    posterior = Posterior(artifact)
    if posterior.curve is not None and test.groups is not None:
        metrics["curves"] = curve_metrics.evaluate(posterior, posterior.curve, test.x,
                                                   test.y, test.groups, seed=config.model.seed,
                                                   covariates=test.covariates)
    return {"metrics": metrics,
            "fit": {"train_rows": train.rows, "wall_time_s": round(
                time.perf_counter() - started, 3)},
            "artifact": artifact.to_bytes()}


def fit_training_rows(data: TrainingData, config: BNNConfig, units: Units = Units(),
                      full_data: TrainingData | None = None) -> TrainedFit:
    """Fit on standardised data; record the constants so the artifact speaks physical units."""
    full = full_data or data
    x_mean, x_scale = float(np.mean(data.x)), float(np.std(data.x)) or 1.0
    y_mean, y_scale = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    inputs = (data.x - x_mean) / x_scale
    sections: dict[str, Any] = {}  # none for strain-only data: its manifest is as it was
    if data.covariates is not None:
        inputs, sections = covariate_inputs(data, inputs)
    result = HeteroskedasticBNN(config).fit(inputs, (data.y - y_mean) / y_scale, data.groups)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "architecture": {
            "input_name": data.x_name, "input_unit": units.x,
            "output_name": data.y_name, "output_unit": units.y,
            "hidden_sizes": list(config.model.hidden_sizes), "activation": "tanh",
            "noise": config.model.noise, "noise_link": config.model.noise_link,
        },
        "normalisation": {"x_mean": x_mean, "x_scale": x_scale,
                          "y_mean": y_mean, "y_scale": y_scale},
        "training_domain": {"min": float(np.min(data.x)), "max": float(np.max(data.x))},
        "inference": {"method": config.method, "draws": config.stored_draws,
                      "seed": config.model.seed,
                      "wall_time_s": round(result.wall_time_s, 3)},
        "diagnostics": result.diagnostics,
        "config": config.to_dict(),
        "data": {"rows": full.rows, "training_rows": data.rows, "sha256": full.sha256,
                 "groups": None if full.groups is None else int(len(np.unique(full.groups)))},
        "library_versions": library_versions(),
        "metrics": {},
        **sections,
    }
    artifact = Artifact(manifest=manifest, arrays=result.arrays)
    artifact.validate()
    return TrainedFit(artifact, result)


def covariate_inputs(data: TrainingData, strain: np.ndarray
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """The network's input (rows, 1 + k): the standardised strain, then each covariate
    standardised by its own mean and SD; and the manifest's `covariates` and
    `tested_conditions` sections."""
    assert data.covariates is not None
    values = data.covariates
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale == 0] = 1.0  # a constant column: standardising would divide by zero
    tested = np.unique(values, axis=0)
    if tested.shape[0] > MAX_TESTED_CONDITIONS:
        raise ValueError(f"the data hold {tested.shape[0]} distinct covariate conditions; a "
                         f"model lists at most {MAX_TESTED_CONDITIONS} (round the "
                         "covariates to the precision they were controlled to)")
    sections = {
        "covariates": [
            {"name": column.name, "unit": column.unit, "mean": float(mean[j]),
             "scale": float(scale[j]), "min": float(values[:, j].min()),
             "max": float(values[:, j].max())}
            for j, column in enumerate(data.covariate_columns)],
        "tested_conditions": tested.tolist(),
    }
    return np.column_stack([strain, (values - mean) / scale]), sections


def fit_csv(path: Path, config: BNNConfig, x: str = "strain", y: str = "stress",
            group: str | None = "material", units: Units = Units(), holdout: float = 0.2,
            report_dir: Path | None = None,
            covariates: Sequence[CovariateColumn] = ()) -> TrainedFit:
    return fit_data(load_csv(path, x, y, group, covariates), config, units, holdout,
                    report_dir)
