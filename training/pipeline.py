"""CSV -> normalised data -> BNN fit -> artifact (physical units) -> registry."""

from __future__ import annotations

import getpass
import platform
import shlex
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact, sha256_hex
from service.registry.db import check_schema_at_head, make_engine, make_session_factory
from service.registry.repository import register
from training.data import TrainingData, load_csv
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
    return TrainingData(data.x[rows], data.y[rows], groups, data.x_name, data.y_name,
                        data.sha256, int(rows.size))


def fit_data(data: TrainingData, config: BNNConfig, units: Units = Units(),
             holdout: float = 0.2, report_dir: Path | None = None) -> TrainedFit:
    """Hold out part of the data, fit on the rest (standardised), score the held-out part,
    and return the artifact in physical units with its diagnostics, metrics and report.

    The registered version is the fit on the training split, not a refit on all rows:
    its stored metrics then describe exactly the posterior the service answers with (a
    refit would double the fit time and serve a posterior nobody scored). `holdout=0`
    trains on everything and stores no held-out metrics.
    """
    from training import calibration

    split = holdout_split(data, holdout, config.seed)
    train = subset(data, split.train)
    trained = fit_training_rows(train, config, units, full_data=data)
    artifact, result = trained.artifact, trained.result
    manifest = artifact.manifest
    y_scale = artifact.spec.normalisation.y_scale
    metrics: dict[str, Any] = {
        "split": {"by": split.by, "fraction": holdout, "seed": config.seed,
                  "train_rows": int(split.train.size), "test_rows": int(split.test.size),
                  "held_out_groups": [str(g) for g in split.held_out_groups]},
        "refit_on_all_data": False,
    }
    if split.test.size:
        metrics["held_out"] = calibration.evaluate(artifact, data.x[split.test],
                                                   data.y[split.test], y_scale)
    metrics["training"] = calibration.evaluate(artifact, train.x, train.y, y_scale)
    strains, empirical = calibration.empirical_sd_by_strain(train.x, train.y)
    metrics["aleatoric_sd_error"] = calibration.aleatoric_sd_error(artifact, strains,
                                                                   empirical)
    metrics["aleatoric_sd_error_strains"] = int(strains.size)
    metrics["epistemic_extrapolation"] = calibration.epistemic_extrapolation(artifact)
    manifest["metrics"] = metrics
    function_space = calibration.function_space_diagnostics(
        artifact, result.chains, float(np.min(train.x)), float(np.max(train.x)))
    if function_space:
        manifest["diagnostics"]["function_space"] = function_space
        manifest["diagnostics"]["converged"] = bool(
            manifest["diagnostics"].get("converged", True)
            and function_space["r_hat_max"] < 1.05)
    if report_dir is not None:
        from training.report import write_report

        files = write_report(artifact, result, train, data, split, report_dir)
        manifest["report"] = {"dir": str(Path(report_dir).resolve()), "files": files}
    artifact.validate()
    return trained


def fit_training_rows(data: TrainingData, config: BNNConfig, units: Units = Units(),
                      full_data: TrainingData | None = None) -> TrainedFit:
    """Fit on standardised data; record the constants so the artifact speaks physical units."""
    full = full_data or data
    x_mean, x_scale = float(np.mean(data.x)), float(np.std(data.x)) or 1.0
    y_mean, y_scale = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    result = HeteroskedasticBNN(config).fit((data.x - x_mean) / x_scale,
                                            (data.y - y_mean) / y_scale)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "architecture": {
            "input_name": data.x_name, "input_unit": units.x,
            "output_name": data.y_name, "output_unit": units.y,
            "hidden_sizes": list(config.hidden_sizes), "activation": "tanh",
            "noise": config.noise, "noise_link": config.noise_link,
        },
        "normalisation": {"x_mean": x_mean, "x_scale": x_scale,
                          "y_mean": y_mean, "y_scale": y_scale},
        "training_domain": {"min": float(np.min(data.x)), "max": float(np.max(data.x))},
        "inference": {"method": config.method, "draws": config.stored_draws, "seed": config.seed,
                      "wall_time_s": round(result.wall_time_s, 3)},
        "diagnostics": result.diagnostics,
        "config": config.to_dict(),
        "data": {"rows": full.rows, "training_rows": data.rows, "sha256": full.sha256,
                 "groups": None if full.groups is None else int(len(np.unique(full.groups)))},
        "library_versions": library_versions(),
        "metrics": {},
    }
    artifact = Artifact(manifest=manifest, arrays=result.arrays)
    artifact.validate()
    return TrainedFit(artifact, result)


def fit_csv(path: Path, config: BNNConfig, x: str = "strain", y: str = "stress",
            group: str | None = "material", units: Units = Units(), holdout: float = 0.2,
            report_dir: Path | None = None) -> TrainedFit:
    return fit_data(load_csv(path, x, y, group), config, units, holdout, report_dir)


def report_files(manifest: dict[str, Any]) -> dict[str, bytes]:
    """The report figures the manifest records, read back from its folder and keyed by
    their path in the registry ("report/fit.png"); a figure changed since the fit (its
    sha256 no longer matches) is refused rather than stored under the fit's name."""
    report = manifest.get("report")
    if not report:
        return {}
    folder = Path(report["dir"])
    files = {}
    for entry in report["files"]:
        data = (folder / entry["file"]).read_bytes()
        if sha256_hex(data) != entry["sha256"]:
            raise ValueError(f"report figure {folder / entry['file']} changed since the fit "
                             "(its sha256 differs from the manifest's)")
        files[f"report/{entry['file']}"] = data
    return files


def register_artifact(database_url: str, name: str, artifact_bytes: bytes,
                      alias: str | None = None, files: dict[str, bytes] | None = None) -> int:
    """Store the artifact (and `files`, e.g. its report figures) as the next version of
    `name` and optionally move `alias` to it, in one transaction (a failure leaves the
    registry as it was)."""
    engine = make_engine(database_url)
    try:
        check_schema_at_head(engine)
        with make_session_factory(engine).begin() as session:
            return register(session, name, artifact_bytes,
                            actor=f"{getpass.getuser()} (surrogate-train)",
                            alias=alias, source=shlex.join(sys.argv), files=files)
    finally:
        engine.dispose()
