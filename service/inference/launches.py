"""Parallel kernel launches: one at a time, in arrival order, each a bounded amount of work.

A parallel launch (numba prange over both cores) holds every core, so launches take turns
under one lock (some numba threading layers also must not be entered by two threads at
once). Two things keep a large request from holding the kernels while small ones wait:

- Each launch is sized by its work, not by a fixed number of strains: strains x draws x
  network size (x levels for quantiles) adds up to about `LAUNCH_NS` of work on the
  reference machine (docs/performance.md), so a launch of any request ends within
  milliseconds.
- The lock is handed to waiters in the order they came (`FairLock`). threading.Lock is
  not fair: the thread that releases it usually takes it straight back (it holds the GIL;
  the woken waiter must first get the GIL), so a request of a thousand launches would run
  them all before a waiting one-launch request got its turn.

Between launches the long loops call `service.inference.interrupt.checkpoint()`, so a
request whose deadline passed or whose client left stops there.
"""

from __future__ import annotations

import threading
from collections import deque

# Work per parallel launch, in nanoseconds of the reference machine: a launch of another
# request waits at most about this long (plus its own).
LAUNCH_NS = 10_000_000


class FairLock:
    """A mutex handed over to waiting threads in the order they asked for it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder when it hands the lock over

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by the first waiter
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


parallel_lock = FairLock()


def strains_per_launch(ns_per_strain: float, minimum: int) -> int:
    """How many strains one launch takes: about LAUNCH_NS of work, at least `minimum`."""
    return max(minimum, int(LAUNCH_NS / max(ns_per_strain, 1e-3)))
