"""Posterior-predictive quantiles: the numba kernel against the numpy reference, in one run.

    .venv/bin/python benchmarks/quantiles.py [--points 200001] [--reference-points N]
                                             [--draws 1000,16] [--repeats 1]

The export's workload: 3 levels (0.05, 0.5, 0.95) on 200,001 strains (a 100,001-point grid
and its midpoints) of a random 1->16 tanh artifact (tests.service_process.random_artifact, seed
0), for each --draws. Prints wall seconds of predictive.quantiles (the kernel) and of
predictive.quantiles_reference, their ratio, the CPU cores the process got while each ran
(CPU seconds / wall seconds: 2.0 = both cores to itself; other processes skew timings,
compare the ratio, not the seconds), the kernel's F evaluations per strain and level, and
the largest |kernel - reference| in units of the total SD and of max(|mean|, total SD)
(the solver's tolerance is 1e-12 of the latter). --reference-points times the reference
on that many strains spread over the grid and scales its time to all of them (it takes
minutes at 1,000 draws). Nothing here asserts (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# The project root replaces this folder on the path (benchmarks/http.py would shadow the
# standard library's `http`).
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

from service.inference import predictive, quantile_kernel  # noqa: E402
from service.inference.posterior import Posterior  # noqa: E402
from tests.service_process import random_artifact  # noqa: E402

LEVELS = [0.05, 0.5, 0.95]


def timed(call) -> tuple[object, float, float]:
    """Result, wall seconds and the cores the process got (CPU s / wall s)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    result = call()
    wall = time.perf_counter() - started
    return result, wall, (time.process_time() - started_cpu) / wall


def run(draws: int, points: int, reference_points: int, repeats: int) -> None:
    posterior = Posterior(random_artifact(draws=draws, hidden_sizes=(16,), seed=0))
    strain = np.linspace(-0.5, 0.5, points)
    fast_kernel = quantile_kernel.for_posterior(posterior)
    assert fast_kernel is not None
    best, cores = float("inf"), 0.0
    for _ in range(repeats):
        fast, wall, got = timed(lambda: fast_kernel.quantiles(strain, LEVELS))
        if wall < best:
            best, cores = wall, got
    evaluations = fast_kernel.evaluations / repeats / (points * len(LEVELS))
    pick = np.unique(np.linspace(0, points - 1, min(reference_points, points)).astype(int))
    reference, ref_wall, ref_cores = timed(
        lambda: predictive.quantiles_reference(posterior, strain[pick], LEVELS))
    ref_wall_all = ref_wall * points / pick.size
    summary = posterior.predict_reference(strain[pick])  # float64, in bounded chunks
    mean, total_sd = summary.mean, summary.total_sd
    difference = np.abs(fast[:, pick] - reference)
    scaled = "" if pick.size == points else f" (timed on {pick.size}, scaled)"
    print(f"{draws:>6} {points:>8} {best:>10.2f} {cores:>6.2f} {ref_wall_all:>12.1f}"
          f"{scaled} {ref_cores:>6.2f} {ref_wall_all / best:>7.1f} {evaluations:>7.2f} "
          f"{np.max(difference / total_sd):>11.1e} "
          f"{np.max(difference / np.maximum(np.abs(mean), total_sd)):>11.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_001)
    parser.add_argument("--reference-points", type=int, default=None,
                        help="time the reference on this many strains only (default: all)")
    parser.add_argument("--draws", default="1000,16")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew timings)")
    print(f"levels {LEVELS}, random 1->16 tanh artifact")
    print(f"{'draws':>6} {'strains':>8} {'kernel s':>10} {'cores':>6} {'reference s':>12} "
          f"{'cores':>6} {'ratio':>7} {'evals':>7} {'err/totSD':>11} {'err/scale':>11}")
    for draws in (int(d) for d in args.draws.split(",")):
        run(draws, args.points, args.reference_points or args.points, args.repeats)


if __name__ == "__main__":
    main()
