"""What running the suite in pytest-xdist worker processes (`make test`) needs beyond
per-worker temporary directories (pytest's own) and ports (tests/service_process.py).

- PyTensor's compile cache: each worker compiles into a directory of its own, so two
  workers never wait on, or trip over, each other's compile locks. The directories stay
  between runs (under PyTensor's default base directory), so later runs start warm.
- Numba's kernel cache: the controller fills it once, in the background while the workers
  import and collect, so that the workers and the servers they start load the prediction
  kernel instead of each compiling it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def pytensor_compiledir_per_worker() -> None:
    """Point PyTensor at a compile directory of this worker's own (no-op outside xdist or
    when the user named a compile directory). Call before PyTensor is imported."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if not worker or "compiledir" in flags:
        return
    base = Path.home() / ".pytensor" / f"pytest-{worker}"
    os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={base}"]))


def start_kernel_warmup(config: pytest.Config) -> None:
    """In the xdist controller only: `surrogate-serve warmup` in the background; waited for
    at the end of the session."""
    if not getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
        return
    process = subprocess.Popen([str(Path(sys.executable).parent / "surrogate-serve"),
                                "warmup"], stdout=subprocess.DEVNULL)
    config.add_cleanup(lambda: process.wait(timeout=600))
