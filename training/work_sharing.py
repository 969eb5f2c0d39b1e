"""One main task in this process, several side tasks shared with worker processes.

The served fit runs here while the held-out fits go to worker processes, one per core: one
process more than cores, so every core stays busy until the last fit ends. (With one
worker fewer the served fit had a core to itself, but on two cores a fit of 40 x 5 curves
and its two held-out fits took 109 s instead of 86 s: the worker fitted both folds one
after the other while this process waited; docs/covariates.md, "Cost".) The served fit's
wall time then includes sharing a core; its CPU time is recorded beside it
(`diagnostics.cpu_time_s`). Each worker takes one side task at a time from a shared
queue, and when the main task is done this process takes side tasks from the same queue:
the cores stay busy until the queue is empty and no process holds tasks it has not
started.
(ProcessPoolExecutor alone would queue one task ahead per worker where this process could
not take it back.)

The worker processes are started by the first call and kept for the next: each one's
imports (PyMC, PyTensor: seconds of CPU) are paid once per process, not once per fit,
wherever one process fits several times (the tests, notebooks). They exit with this
process, also when it is killed. A process that multiprocessing started (a fit-many job)
starts and stops its workers within each call instead.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

Main = TypeVar("Main")
Side = TypeVar("Side")


# Operators sharing a machine may cap the worker processes of held-out fits; by default
# there is one per core.
WORKERS_VARIABLE = "SURROGATE_FIT_WORKERS"


def side_workers(tasks: int) -> int:
    """Worker processes for `tasks` side tasks beside the main one: one per core, or
    SURROGATE_FIT_WORKERS (a whole number >= 1) where it is set."""
    text = os.environ.get(WORKERS_VARIABLE, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{WORKERS_VARIABLE} must be a whole number >= 1, got {text!r}")
        cap = int(text)
    else:
        cap = os.cpu_count() or 1
    return max(1, min(tasks, cap))


def run_beside(main: Callable[[], Main], side: Callable[..., Side],
               arguments: Sequence[tuple[Any, ...]]) -> tuple[Main, list[Side]]:
    """`main()` here and `side(*arguments[i])` for every i, in worker processes and, once
    `main` returns, here too; the side results in the order of `arguments`. The first
    error of any task is raised after every started task has ended."""
    results: list[Any] = [None] * len(arguments)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(arguments)):
        todo.put(index)
    errors: list[BaseException] = []

    def take() -> int | None:
        if errors:  # a task failed: start nothing more
            return None
        try:
            return todo.get_nowait()
        except queue.Empty:
            return None

    workers = side_workers(len(arguments))
    # A process started by multiprocessing (a fit-many job) joins its children when it
    # ends, before anything would stop a kept pool: it and its workers would wait for each
    # other forever. Such a process gets its own pool for this call.
    kept = multiprocessing.parent_process() is None
    pool = _worker_pool() if kept else _new_pool()

    def drive() -> None:
        while (index := take()) is not None:
            try:
                results[index] = pool.submit(side, *arguments[index]).result()
            except BrokenProcessPool as error:  # a worker died: start afresh next time
                _forget(pool)
                errors.append(error)
            except BaseException as error:  # noqa: BLE001  (re-raised by the caller)
                errors.append(error)

    drivers = [threading.Thread(target=drive, daemon=True) for _ in range(workers)]
    for driver in drivers:
        driver.start()
    try:
        outcome = main()
        while (index := take()) is not None:
            results[index] = side(*arguments[index])
    except BaseException as error:
        errors.append(error)
    for driver in drivers:
        driver.join()
    if not kept:
        pool.shutdown()
    if errors:
        raise errors[0]
    return outcome, results


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker_pool() -> ProcessPoolExecutor:
    """The kept worker processes (one per core; started as tasks need them)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _new_pool()
        return _pool


def _new_pool() -> ProcessPoolExecutor:
    # spawn, not fork: this process may already run numba's OpenMP threads, which a forked
    # child would inherit in an undefined state.
    return ProcessPoolExecutor(side_workers(os.cpu_count() or 1),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _forget(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None


def _exit_with_parent(parent: int) -> None:
    """In a worker process: exit once the process that started it is gone (killed, say),
    rather than wait for tasks forever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
