"""`surrogate-train fit-many`: fit the groups of a plan (training/plan.py), each as
`surrogate-train fit` fits one, in parallel worker processes, and register every version
with a fingerprint of its data and options.

- Each group runs in a fresh (spawned) process with a PyTensor compile directory of its
  own (training/compile_dirs.py); at most `workers` at a time. A group's failure, even
  its process dying, is that group's outcome: the others go on.
- A group's data is hashed (sha256 of the bytes fitted) and its fit options too; both go
  into the version's tags at registration (`fit_data_sha256`, `fit_options_sha256`). A
  re-run skips a group whose newest ready version carries the same two, unless `force`.
- A group's held-out fits (its folds) run beside its served fit in worker processes, as
  in `fit`, only when the cores allow two processes per group in flight; otherwise one
  after the other in the group's process, so that groups, not folds, fill the cores.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.compile_dirs import claim_slot
from training.config import config_from_fit_options
from training.data import load_csv
from training.data_source import DataSourceError, fetch
from training.fit_group import GroupJob, GroupOutcome, RegistryTarget, fit_group, start_worker
from training.plan import PlanEntry, covariate_columns, problems_of

DATA_TAG, OPTIONS_TAG = "fit_data_sha256", "fit_options_sha256"
# Options that say where a fit's inputs and outputs are, not what is fitted: moving the
# data file or the report folder does not make a new fit.
LOCATION_OPTIONS = ("csv", "report", "artifact_out", "idata_out")
# Every `fit` option a group's fit reads (the config's own, through fit_config). An
# option `fit` gains is refused in a plan entry until the fit below reads it too.
APPLIED_OPTIONS = frozenset({
    *LOCATION_OPTIONS, "name", "x", "y", "group", "x_unit", "y_unit", "alias", "holdout",
    "folds", "covariate",
    *inspect.signature(config_from_fit_options).parameters,
})

StatusCallback = Callable[[int, str], None]


def usable_cores() -> int:
    """The cores this process may run on (a container's or a taskset's, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


@dataclass(frozen=True)
class CompileDirs:
    """Where worker processes get their PyTensor compile directories
    (training/compile_dirs.py): slots under `root`, new ones copied from `seed`."""

    root: Path
    seed: Path | None = None


def fingerprint(options: dict[str, Any], data_sha256: str) -> dict[str, str]:
    """The tags that identify a fit: the data's sha256 and a hash of the options that
    shape it (unset options left out, so an option `fit` gains with no value changes no
    fingerprint)."""
    shaping = {key: value if isinstance(value, int | float | str | bool) else str(value)
               for key, value in sorted(options.items())
               if key not in LOCATION_OPTIONS and value not in (None, [], ())}
    encoded = json.dumps(shaping, sort_keys=True).encode()
    return {DATA_TAG: data_sha256, OPTIONS_TAG: hashlib.sha256(encoded).hexdigest()}


def newest_ready(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest ready version in a model's detail (as the registry and the API list it)."""
    ready = [v for v in (detail or {}).get("versions", []) if v["status"] == "ready"]
    return max(ready, key=lambda v: v["version"]) if ready else None


def registered_detail(target: RegistryTarget, name: str) -> dict[str, Any] | None:
    """The model's versions and tags, read where the run registers."""
    if target.register_url:
        from training.registry_client import model_detail

        return model_detail(target.register_url, name)
    from service.errors import NotFoundError
    from service.registry.db import make_engine, make_session_factory
    from service.registry.reads import model_detail as read_detail

    engine = make_engine(target.database_url or "")
    try:
        with make_session_factory(engine)() as session:
            return read_detail(session, name)
    except NotFoundError:
        return None
    finally:
        engine.dispose()


def prepare(entry: PlanEntry, target: RegistryTarget, force: bool,
            work: Path) -> GroupJob | GroupOutcome:
    """Check an entry, fetch and hash its data, and skip it if its newest version was
    fitted from the same data and options: a job to run, or the entry's outcome."""
    def failed(message: str) -> GroupOutcome:
        return GroupOutcome(entry.index, entry.name, "failed", message=message)

    problems = problems_of(entry)
    unapplied = sorted(key for key, value in entry.options.items()
                       if key not in APPLIED_OPTIONS and value not in (None, [], ()))
    if unapplied:
        problems.append(f"fit-many does not apply option(s) {unapplied} yet")
    if problems:
        return failed("; ".join(problems))
    folder = work / str(entry.index)
    folder.mkdir(exist_ok=True)
    options = entry.options
    path = None
    try:  # read as `fit` reads it, so bad data fails here, before a process is started
        path = fetch(options["csv"], folder)
        data = load_csv(path, options["x"], options["y"], options["group"],
                        covariate_columns(options))
    except (DataSourceError, ValueError) as exc:  # named by the plan's source, not a copy
        return failed(str(exc).replace(str(path), options["csv"]) if path else str(exc))
    tags = fingerprint(options, data.sha256)
    if not force:
        try:
            newest = newest_ready(registered_detail(target, entry.name))
        except Exception as exc:  # noqa: BLE001  (an unreadable registry fails this group)
            return failed(f"cannot read the registry's versions of {entry.name!r}: {exc}")
        if newest and all(newest["tags"].get(key) == value for key, value in tags.items()):
            return GroupOutcome(entry.index, entry.name, "skipped", version=newest["version"],
                                message=f"data and options unchanged since version "
                                        f"{newest['version']}")
    return GroupJob(entry.index, entry.name, options, data, tags, target)


def _in_own_process(job: GroupJob, compile_dirs: CompileDirs,
                    status_queue: Any) -> GroupOutcome:
    """One fresh process for one group: its compile directory is set before PyTensor is
    imported, its memory is returned when it ends, and its crash fails only this group."""
    context = multiprocessing.get_context("spawn")
    with claim_slot(compile_dirs.root, compile_dirs.seed) as compile_dir:
        status_queue.put((job.index, "starting"))
        with ProcessPoolExecutor(1, mp_context=context, initializer=start_worker,
                                 initargs=(str(compile_dir), status_queue)) as pool:
            try:
                return pool.submit(fit_group, job).result()
            except BrokenProcessPool:
                message = "the worker process died (killed, or out of memory?)"
            except Exception as exc:  # noqa: BLE001  (the others go on)
                message = f"the worker process failed: {type(exc).__name__}: {exc}"
    return GroupOutcome(job.index, job.name, "failed", message=message)


def run_jobs(jobs: list[GroupJob], workers: int, compile_dirs: CompileDirs,
             on_status: StatusCallback,
             on_outcome: Callable[[GroupOutcome], None]) -> list[GroupOutcome]:
    """Run the jobs, at most `workers` at a time, reporting each status change and
    outcome (on this thread) as it happens."""
    if not jobs:
        return []
    status_queue = multiprocessing.get_context("spawn").Queue()
    outcomes: list[GroupOutcome] = []

    def relay_statuses() -> None:
        while not status_queue.empty():
            on_status(*status_queue.get())

    with ThreadPoolExecutor(workers) as threads:
        pending = {threads.submit(_in_own_process, job, compile_dirs, status_queue)
                   for job in jobs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            relay_statuses()
            for future in done:
                outcomes.append(future.result())
                on_outcome(outcomes[-1])
    status_queue.close()
    return outcomes


def fit_entries(entries: list[PlanEntry], target: RegistryTarget, workers: int,
                force: bool, compile_dirs: CompileDirs, on_status: StatusCallback,
                on_outcome: Callable[[GroupOutcome], None]) -> list[GroupOutcome]:
    """Prepare every entry (check, fetch, hash, skip), then fit the rest in parallel."""
    outcomes: list[GroupOutcome] = []
    jobs: list[GroupJob] = []
    with tempfile.TemporaryDirectory(prefix="fit-many-") as work:
        for entry in entries:
            on_status(entry.index, "checking")
            prepared = prepare(entry, target, force, Path(work))
            if isinstance(prepared, GroupJob):
                jobs.append(prepared)
                on_status(entry.index, "queued")
            else:
                outcomes.append(prepared)
                on_outcome(prepared)
        in_flight = max(1, min(workers, len(jobs)))
        side_by_side = 2 * in_flight <= usable_cores()
        jobs = [replace(job, parallel_holdout=side_by_side) for job in jobs]
        outcomes += run_jobs(jobs, workers, compile_dirs, on_status, on_outcome)
    return sorted(outcomes, key=lambda outcome: outcome.index)
