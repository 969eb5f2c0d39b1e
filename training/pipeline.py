"""CSV -> normalised data -> BNN fit -> artifact (physical units); `training.registration`
stores it.

Each fit builds its posterior once, right after the network is fitted, and everything
after it - the curve model, the calibration scores, the report - uses that one object.
What they add to the manifest makes a new artifact from the typed `Manifest` (never a
dict changed in place), and the posterior takes the new manifest without being rebuilt.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from service.artifact import SCHEMA_VERSION, Artifact
from service.manifest import (
    Architecture,
    CurveModelSection,
    Inference,
    Manifest,
    Normalisation,
    TrainingDomain,
)
from training.data import TrainingData, load_csv
from training.model import BNNConfig, FitResult, HeteroskedasticBNN

if TYPE_CHECKING:
    from service.inference.posterior import Posterior


@dataclass(frozen=True)
class Units:
    x: str = "1"
    y: str = "MPa"


@dataclass(frozen=True)
class TrainedFit:
    artifact: Artifact
    result: FitResult
    posterior: Posterior  # the artifact's, built once per fit

    def updated(self, **sections: Any) -> TrainedFit:
        """The same fit with these manifest sections replaced (metrics, diagnostics,
        curve model, report): a new artifact, the same posterior under its manifest."""
        artifact = Artifact.from_spec(self.artifact.spec.model_copy(update=sections),
                                      self.artifact.arrays)
        return TrainedFit(artifact, self.result, self.posterior.described_by(artifact.spec))


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


_held_out_pool: ProcessPoolExecutor | None = None


def _submit_held_out(*args: Any) -> Future:
    """`held_out_fit(*args)` in the process that runs held-out fits, started by the first
    and kept for the next: its imports (PyMC, PyTensor: seconds of CPU) are paid once per
    process rather than once per fit wherever one process fits several times (the tests,
    a batch of fits). A process that died is replaced."""
    global _held_out_pool
    for _ in range(2):
        if _held_out_pool is None:
            # spawn, not fork: the parent may already run numba's OpenMP threads, which a
            # forked child would inherit in an undefined state.
            _held_out_pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent, initargs=(os.getpid(),))
        try:
            return _held_out_pool.submit(held_out_fit, *args)
        except BrokenProcessPool:
            _held_out_pool = None
    raise BrokenProcessPool("the held-out fit's process could not be started")


def _exit_with_parent(parent: int) -> None:
    """In the held-out fit's process: exit once the process that started it is gone
    (killed, say), rather than wait for work forever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _result(future: Future) -> Any:
    """The held-out fit's result; a crashed process is replaced at the next fit."""
    global _held_out_pool
    try:
        return future.result()
    except BrokenProcessPool:
        _held_out_pool = None
        raise


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
            future = _submit_held_out(data, split, config, units)
            trained = fit_model(data, config, units)
            held_out = _result(future)
        else:
            held_out = held_out_fit(data, split, config, units)
            trained = fit_model(data, config, units)
    else:
        trained = fit_model(data, config, units)
    posterior, spec = trained.posterior, trained.artifact.spec
    y_scale = spec.normalisation.y_scale
    metrics: dict[str, Any] = {
        "split": {"by": split.by, "fraction": holdout, "seed": config.model.seed,
                  "train_rows": int(split.train.size), "test_rows": int(split.test.size),
                  "held_out_groups": [str(g) for g in split.held_out_groups]},
        "refit_on_all_data": True,
    }
    if held_out is not None:
        metrics["held_out"] = held_out["metrics"]
        metrics["held_out_fit"] = held_out["fit"]
    metrics["training"] = calibration.evaluate(posterior, data.x, data.y, y_scale)
    strains, empirical = calibration.empirical_sd_by_strain(data.x, data.y)
    metrics["aleatoric_sd_error"] = calibration.aleatoric_sd_error(posterior, strains,
                                                                   empirical)
    metrics["aleatoric_sd_error_strains"] = int(strains.size)
    metrics["epistemic_extrapolation"] = calibration.epistemic_extrapolation(posterior)
    diagnostics = dict(spec.diagnostics)
    function_space = calibration.function_space_diagnostics(
        posterior, trained.result.chains, float(np.min(data.x)), float(np.max(data.x)))
    if function_space:
        diagnostics["function_space"] = function_space
        diagnostics["converged"] = bool(diagnostics.get("converged", True)
                                        and function_space["r_hat_max"] < 1.05)
    trained = trained.updated(metrics=metrics, diagnostics=diagnostics)
    if report_dir is not None:
        from training.report import write_report

        files = write_report(trained.posterior, trained.result, data, report_dir,
                             None if held_out is None else held_out["conditioning"])
        trained = trained.updated(report={"dir": str(Path(report_dir).resolve()),
                                          "files": files})
    trained.artifact.validate()
    return trained


def fit_model(data: TrainingData, config: BNNConfig, units: Units = Units(),
              full_data: TrainingData | None = None) -> TrainedFit:
    """The BNN on `data`, plus the curve model of its materials when it has groups."""
    from training.curves import fit_for_posterior

    trained = fit_training_rows(data, config, units, full_data)
    started = time.perf_counter()
    section = fit_for_posterior(trained.posterior, data.x, data.y, data.groups)
    if section is None:
        return trained
    section["fit"]["wall_time_s"] = round(time.perf_counter() - started, 3)
    return trained.updated(curve_model=CurveModelSection.model_validate(section))


def held_out_fit(data: TrainingData, split: Split, config: BNNConfig,
                 units: Units) -> dict[str, Any]:
    """Fit the training split and score it on the held-out rows: the version's held-out
    metrics, and the report's conditioning example (one held-out material given 3 of its
    points), computed here with this fit's posterior. Runs in a worker process;
    everything it takes and returns is picklable."""
    import training  # noqa: F401  (one BLAS thread in the worker too)
    from training import calibration, curve_metrics

    train, test = subset(data, split.train), subset(data, split.test)
    started = time.perf_counter()
    posterior = fit_model(train, config, units, full_data=data).posterior
    metrics = calibration.evaluate(posterior, test.x, test.y, posterior.y_scale)
    conditioning = None
    if posterior.curve is not None and test.groups is not None:
        metrics["curves"] = curve_metrics.evaluate(posterior, posterior.curve, test.x,
                                                   test.y, test.groups, seed=config.model.seed)
        conditioning = curve_metrics.conditioning_example(posterior, posterior.curve, test.x,
                                                          test.y, test.groups)
    return {"metrics": metrics,
            "fit": {"train_rows": train.rows, "wall_time_s": round(
                time.perf_counter() - started, 3)},
            "conditioning": conditioning}


def fit_training_rows(data: TrainingData, config: BNNConfig, units: Units = Units(),
                      full_data: TrainingData | None = None) -> TrainedFit:
    """Fit on standardised data; record the constants so the artifact speaks physical units.
    The fit's posterior is built here, once."""
    from service.inference.posterior import Posterior

    full = full_data or data
    x_mean, x_scale = float(np.mean(data.x)), float(np.std(data.x)) or 1.0
    y_mean, y_scale = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    result = HeteroskedasticBNN(config).fit((data.x - x_mean) / x_scale,
                                            (data.y - y_mean) / y_scale, data.groups)
    spec = Manifest(
        schema_version=SCHEMA_VERSION,
        architecture=Architecture(
            input_name=data.x_name, input_unit=units.x,
            output_name=data.y_name, output_unit=units.y,
            hidden_sizes=list(config.model.hidden_sizes), activation="tanh",
            noise=config.model.noise, noise_link=config.model.noise_link),
        normalisation=Normalisation(x_mean=x_mean, x_scale=x_scale, y_mean=y_mean,
                                    y_scale=y_scale),
        training_domain=TrainingDomain(min=float(np.min(data.x)), max=float(np.max(data.x))),
        inference=Inference(method=config.method, draws=config.stored_draws,
                            seed=config.model.seed, wall_time_s=round(result.wall_time_s, 3)),
        diagnostics=result.diagnostics,
        config=config.to_dict(),
        data={"rows": full.rows, "training_rows": data.rows, "sha256": full.sha256,
              "groups": None if full.groups is None else int(len(np.unique(full.groups)))},
        library_versions=library_versions(),
        metrics={},
    )
    artifact = Artifact.from_spec(spec, result.arrays)
    artifact.validate()
    return TrainedFit(artifact, result, Posterior(artifact))


def fit_csv(path: Path, config: BNNConfig, x: str = "strain", y: str = "stress",
            group: str | None = "material", units: Units = Units(), holdout: float = 0.2,
            report_dir: Path | None = None) -> TrainedFit:
    return fit_data(load_csv(path, x, y, group), config, units, holdout, report_dir)
