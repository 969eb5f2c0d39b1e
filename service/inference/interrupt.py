"""Stopping work whose answer nobody will read: the request's deadline passed, or its
client went away.

The protocol layer creates an `Interrupt` per request (its deadline, and a flag it sets
when the client disconnects) and runs the computation inside `watching(interrupt)`. The
long loops below it (kernel launches, numpy chunks, export grids) call `checkpoint()`
between pieces of work, a few milliseconds apart, which raises RequestInterruptedError
once the interrupt is due. Without an active interrupt `checkpoint()` costs one context
variable read. The context variable follows the request into the thread pool
(run_in_threadpool copies the context).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import ClientClosedError, RequestInterruptedError


class Interrupt:
    """One request's deadline (monotonic seconds) and whether its client left."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.client_gone = False

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.client_gone:
            raise ClientClosedError("the client closed the connection; the work stopped")
        if time.monotonic() > self.deadline:
            raise RequestInterruptedError("the request's deadline passed before its answer "
                                          "was computed; the work stopped")


_current: contextvars.ContextVar[Interrupt | None] = contextvars.ContextVar(
    "surrogate_interrupt", default=None)


@contextmanager
def watching(interrupt: Interrupt | None) -> Iterator[None]:
    """Make `interrupt` the one `checkpoint()` consults within the block."""
    token = _current.set(interrupt)
    try:
        yield
    finally:
        _current.reset(token)


def checkpoint() -> None:
    """Raise RequestInterruptedError if the current request's work should stop."""
    interrupt = _current.get()
    if interrupt is not None:
        interrupt.check()
