"""One group of a fit-many run, fitted and registered in its own worker process: what
the process is given (`GroupJob`), what it returns (`GroupOutcome`), and the fit and the
registration themselves, made exactly as `surrogate-train fit` makes them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.compile_dirs import use_compile_dir
from training.data import TrainingData
from training.plan import fit_config


@dataclass(frozen=True)
class RegistryTarget:
    """Where versions go: a database URL, or a service's admin API (URL and token)."""

    database_url: str | None = None
    register_url: str | None = None
    token: str | None = field(default=None, repr=False)  # never in a log or a repr


@dataclass(frozen=True)
class GroupJob:
    """What a worker process needs to fit and register one group (picklable)."""

    index: int
    name: str
    options: dict[str, Any]
    data: TrainingData
    tags: dict[str, str]
    target: RegistryTarget
    parallel_holdout: bool = False


@dataclass(frozen=True)
class GroupOutcome:
    index: int
    name: str
    status: str  # "registered", "skipped" or "failed"
    version: int | None = None
    fit_time_s: float | None = None  # the served fit (as the manifest records it)
    total_time_s: float | None = None  # everything the group's process did
    held_out: dict[str, float] | None = None  # nlpd, crps, coverage_95
    message: str = ""  # the error, or why the group was skipped


# The parent's status queue, set once per worker process by start_worker (a queue can
# only reach a process when the process starts, not as a task argument).
_status_queue: Any = None


def start_worker(compile_dir: str, status_queue: Any) -> None:
    """First thing in a fresh worker process: its own compile directory (before anything
    imports PyTensor) and the queue its status changes go to."""
    global _status_queue
    use_compile_dir(Path(compile_dir))
    _status_queue = status_queue


def _status(index: int, status: str) -> None:
    if _status_queue is not None:
        _status_queue.put((index, status))


def fit_group(job: GroupJob) -> GroupOutcome:
    """Fit and register one group in this (worker) process; any error is the outcome."""
    started = time.perf_counter()
    try:
        import pytensor  # the first import in this process: it reads start_worker's flags

        _status(job.index, f"fitting (PyTensor cache {pytensor.config.compiledir})")
        trained = _fit(job)
        _status(job.index, "registering")
        version = _register(job, trained)
    except Exception as exc:  # noqa: BLE001  (a group's failure must not end the run)
        message = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return GroupOutcome(job.index, job.name, "failed", message=message,
                            total_time_s=round(time.perf_counter() - started, 1))
    spec = trained.artifact.spec
    held = spec.metrics.get("held_out")
    return GroupOutcome(
        job.index, job.name, "registered", version=version,
        fit_time_s=spec.inference.wall_time_s,
        total_time_s=round(time.perf_counter() - started, 1),
        held_out=None if not held else {"nlpd": held["nlpd"], "crps": held["crps"],
                                        "coverage_95": held["coverage"]["0.95"]})


def _fit(job: GroupJob) -> Any:
    """The group's fit, exactly as `fit` makes it from the same options."""
    from training.fit_outputs import default_report_dir
    from training.pipeline import Units, fit_data

    options = job.options
    trained = fit_data(job.data, fit_config(options), Units(options["x_unit"], options["y_unit"]),
                       options["holdout"], options["report"] or default_report_dir(job.name),
                       parallel=job.parallel_holdout, folds=options["folds"])
    if options["artifact_out"]:
        Path(options["artifact_out"]).write_bytes(trained.artifact.to_bytes())
    if options["idata_out"]:
        trained.result.inference_data.to_netcdf(str(options["idata_out"]))
    return trained


def _register(job: GroupJob, trained: Any) -> int:
    """Register as `fit` does (the same registration, the same two paths), with the
    fingerprint as the version's tags."""
    from training.fit_outputs import inference_data_bytes
    from training.registration import FitRegistration, register_in_database, report_files
    from training.registry_client import register_via_api

    registration = FitRegistration(
        job.name, trained.artifact.to_bytes(), job.options["alias"],
        inference_data=inference_data_bytes(trained.result, job.options["idata_out"]),
        files=report_files(trained.artifact.manifest), tags=job.tags)
    target = job.target
    if target.register_url:
        return register_via_api(target.register_url, target.token or "", registration).version
    return register_in_database(target.database_url or "", registration)
