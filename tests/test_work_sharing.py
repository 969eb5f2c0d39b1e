"""The served fit here, the held-out fits in worker processes and here: results in order,
work shared with this process once its own task is done, and errors raised."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.work_sharing_tasks import fail_on, square_where
from training.work_sharing import run_beside, side_workers


def wait_for_a_side_task(folder: Path) -> str:
    """The main task: returns once a worker has finished a side task."""
    deadline = time.monotonic() + 120
    while not any(folder.glob("*.done")):
        assert time.monotonic() < deadline, "no worker process ran a side task"
        time.sleep(0.05)
    return "main done"


def test_side_tasks_come_back_in_order_from_workers_and_from_this_process(
        tmp_path: Path) -> None:
    arguments = [(index, str(tmp_path), 0.3) for index in range(8)]
    outcome, results = run_beside(lambda: wait_for_a_side_task(tmp_path), square_where,
                                  arguments)
    assert outcome == "main done"
    assert [value for value, _ in results] == [index * index for index in range(8)]
    processes = {pid for _, pid in results}
    assert os.getpid() in processes and len(processes) >= 2


def test_an_error_in_a_side_task_is_raised_after_the_others_end() -> None:
    with pytest.raises(ValueError, match="task 2 failed"):
        run_beside(lambda: "main", fail_on, [(index, 2) for index in range(4)])


def test_one_worker_per_core_beside_this_process_unless_capped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cores = os.cpu_count() or 1
    monkeypatch.delenv("SURROGATE_FIT_WORKERS", raising=False)
    assert side_workers(1) == 1
    assert side_workers(50) == cores
    monkeypatch.setenv("SURROGATE_FIT_WORKERS", "3")
    assert side_workers(50) == 3 and side_workers(2) == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("SURROGATE_FIT_WORKERS", bad)
        with pytest.raises(ValueError, match="SURROGATE_FIT_WORKERS must be a whole number"):
            side_workers(50)
