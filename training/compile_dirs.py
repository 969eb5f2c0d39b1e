"""A PyTensor compile directory of its own for every process that fits at the same time.

PyTensor's compilation cache is not safe to share between concurrent processes (its
module index can be corrupted: pymc-devs/pymc#7819). `fit-many` therefore gives each
worker process a numbered slot under one root (`slot-0`, `slot-1`, ...), claimed with an
exclusive lock for as long as the process runs. Slots are reused by later runs, so their
compiled modules stay warm; two runs sharing a root each take free slots.

A slot holds PyTensor's cache root (`base_compiledir`) and, in `slot/compiledir`, its
compiled C modules (`compiledir`, named here rather than after the machine's kernel
release as PyTensor would, so a cache built elsewhere, e.g. into the train image, fits
any node; each module's key records its compiler flags, so a module built for another
CPU is not reused). A new slot compiles everything from scratch (minutes on a busy
machine) unless it is seeded: a copy of a warm compiledir that no process writes to.
PyTensor accepts a copied cache: it finds each module by the name of its own folder and
corrects the recorded paths.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_FLAGS = "PYTENSOR_FLAGS"


@contextmanager
def claim_slot(root: Path, seed: Path | None = None) -> Iterator[Path]:
    """The first unlocked slot folder under `root`, locked until the block ends (its
    compiledir copied from `seed` if it has none yet). flock locks belong to the open
    file, so two threads of one process exclude each other too, and a killed process's
    lock is released by the kernel."""
    root.mkdir(parents=True, exist_ok=True)
    for number in itertools.count():
        folder = root / f"slot-{number}"
        folder.mkdir(exist_ok=True)
        handle = open(folder / ".lock", "w")  # noqa: SIM115  (held for the whole block)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            if seed is not None and not (folder / "compiledir").exists():
                # PyTensor's own lock folder is left out: a stale one would stall it.
                shutil.copytree(seed, folder / "compiledir",
                                ignore=shutil.ignore_patterns("lock_dir"))
            yield folder.resolve()
        finally:
            handle.close()  # releases the lock
        return


def flags_with_compile_dir(flags: str, folder: Path) -> str:
    """PYTENSOR_FLAGS with PyTensor's cache root in `folder` and its C modules in
    `folder/compiledir`; other flags (such as the BLAS link flags training/__init__.py
    sets) kept."""
    kept = [flag for flag in flags.split(",")
            if flag.strip() and flag.split("=", 1)[0].strip() not in ("compiledir",
                                                                       "base_compiledir")]
    return ",".join([*kept, f"base_compiledir={folder}", f"compiledir={folder / 'compiledir'}"])


def use_compile_dir(folder: Path) -> None:
    """Point this process's PyTensor at `folder`. PyTensor reads its flags once, at
    import, so this must run first in a fresh process."""
    if "pytensor" in sys.modules:
        raise RuntimeError("PyTensor is already imported; its compile directory can no "
                           "longer be chosen in this process")
    os.environ[_FLAGS] = flags_with_compile_dir(os.environ.get(_FLAGS, ""), folder)
