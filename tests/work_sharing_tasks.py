"""Side tasks for tests/test_work_sharing.py, in a module of their own so that a spawned
worker process imports only this (not pytest, PyMC or the service) to run them."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square_where(index: int, folder: str, seconds: float) -> tuple[int, int]:
    """index squared and the id of the process that computed it; leaves a file behind so
    the test knows a task has run."""
    time.sleep(seconds)
    (Path(folder) / f"{index}.done").write_text(str(os.getpid()))
    return index * index, os.getpid()


def fail_on(index: int, bad: int) -> int:
    if index == bad:
        raise ValueError(f"task {index} failed")
    return index
