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


def keep_module_fixtures_on_one_worker(items: list[pytest.Item]) -> None:
    """Tests that share a module-scoped fixture (a live server, a fit, a browser) go to one
    worker together (`--dist loadgroup`): split across workers, each would build it."""
    for item in items:
        definitions = item._fixtureinfo.name2fixturedefs.values()
        if any(defs[-1].scope == "module" for defs in definitions if defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def slow_first(items: list[pytest.Item]) -> None:
    """Tests marked slow (real fits, live topologies) first: the workers then end on many
    short tests, which share out evenly, instead of one waiting for the other's long one.
    (A group still runs as one batch, its slow tests first.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
