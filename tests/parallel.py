"""What running the suite in pytest-xdist worker processes (`make test`) needs beyond
per-worker temporary directories (pytest's own) and ports (tests/service_process.py).

- PyTensor's compile cache, which concurrent processes must not share: each worker claims
  a compile slot of its own (training/compile_dirs.py, as `fit-many`'s processes do) for
  its whole life, so neither the other worker nor a test run in another checkout on the
  same machine writes to it. Slots stay between runs, so later runs start warm.
- Numba's kernel cache: the controller fills it once, in the background while the workers
  import and collect, so that the workers and the servers they start load the prediction
  kernel instead of each compiling it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.compile_dirs import claim_slot, use_compile_dir

COMPILE_SLOTS = Path.home() / ".pytensor" / "test-slots"
_held = contextlib.ExitStack()  # the worker's slot, released when the process ends


def pytensor_compiledir_per_worker() -> None:
    """In a pytest-xdist worker, point PyTensor at a compile slot of the worker's own; a
    no-op elsewhere or when the user named a compile directory. Call before anything
    imports PyTensor."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if "compiledir" in os.environ.get("PYTENSOR_FLAGS", ""):
        return
    use_compile_dir(_held.enter_context(claim_slot(COMPILE_SLOTS)))


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
