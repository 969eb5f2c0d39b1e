"""Heavy work with bounded concurrency, and each request's admission as one step.

`WorkGate`: at most SURROGATE_MAX_HEAVY_REQUESTS heavy requests (service.prediction.
admission: above ~50 ms or 32 MiB) compute at once; another is a 503 with Retry-After at
once, never a queue that grows. Light requests (a 1,000-strain predict is ~5 ms) never
wait here.

`Work`: what a protocol hands the pipeline for one request (the budgets, the replica's
gate, the request's interrupt); `Work.admitted` checks the budget (413), takes a slot
(503) and watches the interrupt (504) around the computation and its encoding.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.errors import ClientClosedError, RequestInterruptedError, ServiceBusyError
from service.inference import interrupt
from service.inference.interrupt import Interrupt
from service.prediction.admission import Estimate, check_budget
from service.settings import Settings

# How the replica's measured speed follows its heavy requests: each one's measured /
# estimated time moves the slowdown this far towards it; estimates below MEASURED_FROM
# seconds are too short to tell.
SLOWDOWN_WEIGHT = 0.3
MEASURED_FROM = 0.2
MAX_SLOWDOWN = 20.0


class WorkGate:
    """At most `slots` heavy requests compute at once; the next is refused (503) with the
    time until the first running one should end as its Retry-After.

    It also learns how much slower than the reference machine the replica runs now (other
    processes on the node, both heavy slots busy): `slowdown`, a moving average of measured
    / estimated time over heavy requests, at least 1. Budgets are checked against the
    estimate times it, so on a loaded node the largest admissible request shrinks instead
    of running into the deadline."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.slowdown = 1.0
        self._lock = threading.Lock()
        self._running: dict[int, float] = {}  # ticket -> expected end (monotonic)
        self._tickets = 0

    def measured(self, estimate: Estimate, seconds: float) -> None:
        """A heavy request took `seconds` for its estimate."""
        if estimate.seconds < MEASURED_FROM:
            return
        ratio = min(MAX_SLOWDOWN, seconds / estimate.seconds)
        with self._lock:
            self.slowdown = max(1.0, (1 - SLOWDOWN_WEIGHT) * self.slowdown
                                + SLOWDOWN_WEIGHT * ratio)

    @contextmanager
    def admit(self, estimate: Estimate) -> Iterator[None]:
        if not estimate.heavy:
            yield
            return
        with self._lock:
            now = time.monotonic()
            if len(self._running) >= self.slots:
                wait = max(1, math.ceil(min(self._running.values()) - now))
                raise ServiceBusyError(
                    f"the replica is computing {len(self._running)} large requests (its "
                    f"limit); retry in about {wait} s, or send a smaller request",
                    wait, [{"field": "retry_after_s", "limit": wait}])
            self._tickets += 1
            ticket = self._tickets
            self._running[ticket] = now + estimate.seconds * self.slowdown
        try:
            yield
        except ClientClosedError:
            raise  # stopped early: its time says nothing about the replica's speed
        except RequestInterruptedError:
            self.measured(estimate, time.monotonic() - now)  # ran out of time: slow
            raise
        else:
            self.measured(estimate, time.monotonic() - now)
        finally:
            with self._lock:
                del self._running[ticket]

    @property
    def running(self) -> int:
        return len(self._running)


@dataclass(frozen=True)
class Work:
    """What a protocol hands the pipeline for one request: the budgets, the replica's
    gate for heavy work, and the request's interrupt (deadline, disconnect)."""

    settings: Settings
    gate: WorkGate
    interrupt: Interrupt | None = None

    @contextmanager
    def admitted(self, estimate_for: Callable[[int], Estimate], size: int, field: str,
                 unit: str = "strains") -> Iterator[Estimate]:
        """Within the budget (else 413), a heavy-work slot if needed (else 503), and the
        interrupt watched by every checkpoint below, for the block."""
        estimate = check_budget(estimate_for, size, field, self.settings, unit,
                                self.gate.slowdown)
        if self.interrupt is not None:
            self.interrupt.check()  # the deadline may have passed while the body arrived
        with self.gate.admit(estimate), interrupt.watching(self.interrupt):
            yield estimate
