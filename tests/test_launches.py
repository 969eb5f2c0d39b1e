"""Parallel kernel launches take turns in arrival order and are sized by their work, so a
request of many launches lets another request's launch in between them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from service.inference import launches, quantile_kernel
from service.inference.launches import FairLock
from service.inference.posterior import Posterior
from tests.service_process import random_artifact


def wait_for_waiters(lock: FairLock, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(lock._waiters) < count:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_the_lock_goes_to_waiters_in_the_order_they_came() -> None:
    lock, order = FairLock(), []
    lock.acquire()

    def take(index: int) -> None:
        with lock:
            order.append(index)

    threads = []
    for index in range(5):
        threads.append(threading.Thread(target=take, args=(index,)))
        threads[-1].start()
        wait_for_waiters(lock, index + 1)
    lock.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_a_thread_that_takes_the_lock_again_at_once_does_not_overtake_a_waiter() -> None:
    lock = FairLock()
    rounds_before_waiter: list[int] = []
    rounds = 0
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), rounds_before_waiter.append(
        rounds), lock.release()))
    waiter.start()
    wait_for_waiters(lock, 1)
    for _ in range(1_000):  # release and ask again at once, as a long request's loop does
        lock.release()
        lock.acquire()
        rounds += 1
    lock.release()
    waiter.join(timeout=10)
    assert rounds_before_waiter == [0]  # it had the lock after the very first release


class RecordingLock(FairLock):
    """The launch lock, recording which thread held it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.holders: list[str] = []

    def acquire(self) -> None:
        super().acquire()
        self.holders.append(threading.current_thread().name)


def test_a_small_request_runs_between_the_launches_of_a_large_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    recording = RecordingLock()
    monkeypatch.setattr(launches, "parallel_lock", recording)
    posterior = Posterior(random_artifact(draws=1000, seed=5))
    fast = quantile_kernel.for_posterior(posterior)
    assert fast is not None
    levels = list(np.linspace(0.01, 0.99, 99))
    # 99 levels x 1,000 draws: a few dozen strains per launch, not 8,192.
    per_launch = launches.strains_per_launch(
        1000 * (fast.units * quantile_kernel.FORWARD_NS_PER_UNIT
                + 99 * quantile_kernel.LEVEL_NS), 16)
    assert per_launch < 200
    large = threading.Thread(target=fast.quantiles, name="large",
                             args=(np.linspace(-0.4, 0.4, 40 * per_launch), levels))
    large.start()
    deadline = time.monotonic() + 60
    while "large" not in recording.holders:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    small = threading.Thread(target=posterior.predict, name="small",
                             args=(np.linspace(-0.4, 0.4, 1_000),))
    small.start()
    small.join(timeout=60)
    large.join(timeout=120)
    first_small = recording.holders.index("small")
    assert "large" in recording.holders[first_small:]  # it did not wait for all of them
    assert recording.holders[:first_small].count("large") < 10
