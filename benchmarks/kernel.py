"""Predict-kernel speed and accuracy against the plain-numpy reference, in one run.

    .venv/bin/python benchmarks/kernel.py [--draws 1000] [--repeats 5] [--extra 16,16]
                                          [--only covariates]

For 1, 1,000 and 100,000 strains: draw·points/s of the fast kernel (Posterior.predict)
and of the numpy reference (Posterior.predict_reference), their ratio, and the largest
|kernel - reference| over mean, aleatoric SD and epistemic SD relative to the total SD.
Networks: a 1->16 tanh trunk with two heads (the issue's yardstick) and the trainer's
default architecture (training.model.BNNConfig). Times are the best of --repeats runs (the
reference at 100,000 strains runs once: it takes seconds). "kernel cores" is the CPU time
the process got per wall second during the kernel runs (2.0 = both cores to itself; less
means other processes took CPU) and "M/s per core" the rate divided by it. Targets
printed beside the figures; nothing here asserts (benchmarks are not tests).

Covariates: the rate of `Posterior.predict` at 1,000 strains for a 1->16 model with 2
covariates (input 3) against the same network without them, calls interleaved in one run:
all strains at one condition, and every strain at its own condition (the covariates enter
the compiled kernel per strain). Target for both: >= 70% of the strain-only rate. Then
the same model with the level's uncertainty beyond the tested range: its time with a
condition per strain inside the range, beyond it (answered by the float64 reference), and
10 conditions or one beyond it (their views' kernels); no target.
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

from service.inference.posterior import Posterior  # noqa: E402
from tests.service_process import random_artifact, with_level_changes  # noqa: E402

SIZES = (1, 1_000, 100_000)
TARGET_RATE = 200e6  # draw·points/s at 100,000 strains x 1,000 draws, 1->16 network
TARGET_RATIO = 25.0
TARGET_ERROR = 1e-3


def multiply_adds(hidden_sizes: tuple[int, ...]) -> int:
    """Multiply-adds per draw·point: trunk layers plus both heads (tanh counted apart)."""
    fan_in, total = 1, 0
    for width in hidden_sizes:
        total += fan_in * width
        fan_in = width
    return total + 2 * fan_in


def best_time(call, repeats: int) -> float:
    return timed(call, repeats)[0]


def timed(call, repeats: int) -> tuple[float, float]:
    """Best wall time of `repeats` calls, and the cores this process got on average
    (CPU seconds / wall seconds over all calls: < 2 on two cores means others took CPU)."""
    best, wall, cpu = float("inf"), 0.0, 0.0
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        elapsed = time.perf_counter() - started
        best, wall = min(best, elapsed), wall + elapsed
        cpu += time.process_time() - started_cpu
    return best, cpu / wall


def trainer_default() -> tuple[tuple[int, ...], int, str]:
    from training.model import BNNConfig  # imports PyMC: only for its defaults

    config = BNNConfig()
    return tuple(config.model.hidden_sizes), int(config.advi.draws), config.model.noise_link


def run(label: str, hidden_sizes: tuple[int, ...], draws: int, link: str,
        repeats: int) -> None:
    posterior = Posterior(random_artifact(draws=draws, hidden_sizes=hidden_sizes,
                                          noise_link=link, seed=0))
    target = TARGET_RATE * multiply_adds((16,)) / multiply_adds(hidden_sizes)
    print(f"\n{label}: hidden {list(hidden_sizes)}, {draws} draws, noise link {link}, "
          f"{multiply_adds(hidden_sizes)} multiply-adds + {sum(hidden_sizes)} tanh per "
          f"draw·point (rate target scaled: {target / 1e6:.0f} M/s)")
    print(f"{'strains':>8} {'tangent':>7} {'kernel ms':>10} {'kernel M/s':>11} "
          f"{'numpy ms':>10} {'numpy M/s':>10} {'ratio':>7} {'max err/total SD':>17} "
          f"{'kernel cores':>12} {'M/s per core':>12}")
    rng = np.random.default_rng(1)
    for n in SIZES:
        for tangent in ((False, True) if n == SIZES[-1] else (False,)):
            strain = rng.uniform(-0.6, 0.6, n)
            fast = posterior.predict(strain, tangent=tangent)
            started = time.perf_counter()
            ref = posterior.predict_reference(strain, tangent=tangent)
            ref_time = time.perf_counter() - started
            if n < SIZES[-1]:
                ref_time = min(ref_time, best_time(
                    lambda s=strain, t=tangent: posterior.predict_reference(s, tangent=t),
                    repeats - 1))
            kernel_time, cores = timed(
                lambda s=strain, t=tangent: posterior.predict(s, tangent=t), repeats)
            error = max(np.max(np.abs(getattr(fast, f) - getattr(ref, f)) / ref.total_sd)
                        for f in ("mean", "aleatoric_sd", "epistemic_sd"))
            work = n * draws
            print(f"{n:>8} {str(tangent):>7} {kernel_time * 1e3:>10.3f} "
                  f"{work / kernel_time / 1e6:>11.1f} {ref_time * 1e3:>10.1f} "
                  f"{work / ref_time / 1e6:>10.1f} {ref_time / kernel_time:>7.1f} "
                  f"{error:>17.2e} {cores:>12.2f} {work / kernel_time / cores / 1e6:>12.1f}")
            if n == SIZES[-1] and not tangent:
                rate, ratio = work / kernel_time, ref_time / kernel_time
                print(f"  targets at {n} strains: rate {rate / 1e6:.0f} M/s >= "
                      f"{target / 1e6:.0f} M/s: {'met' if rate >= target else 'NOT met'}; "
                      f"ratio {ratio:.1f}x >= {TARGET_RATIO:.0f}x: "
                      f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}; "
                      f"error {error:.1e} <= {TARGET_ERROR:g}: "
                      f"{'met' if error <= TARGET_ERROR else 'NOT met'}")


COVARIATE_TARGET = 0.70


def run_covariates(draws: int, repeats: int, strains: int = 1_000) -> None:
    """Throughput with 2 covariates against without, at `strains` strains."""
    plain = Posterior(random_artifact(draws=draws, hidden_sizes=(16,), seed=0))
    hot_artifact = random_artifact(draws=draws, hidden_sizes=(16,), seed=0, covariates=2)
    hot = Posterior(hot_artifact)
    rng = np.random.default_rng(2)
    strain = rng.uniform(-0.6, 0.6, strains)
    one = np.tile([310.0, 0.02], (strains, 1))
    each = np.column_stack([rng.uniform(273.15, 353.15, strains),
                            rng.uniform(0.001, 0.1, strains)])
    calls = {"without covariates": lambda: plain.predict(strain),
             "2 covariates, one condition": lambda: hot.predict(strain, covariates=one),
             "2 covariates, a condition per strain": lambda: hot.predict(strain,
                                                                         covariates=each)}
    for call in calls.values():
        call()  # warm: compiled code, the view of the one condition
    best = {label: float("inf") for label in calls}
    for _ in range(repeats):  # interleaved, so load changes hit every variant alike
        for label, call in calls.items():
            best[label] = min(best[label], best_time(call, 1))
    work = strains * draws
    base = best["without covariates"]
    print(f"\ncovariates: 1->16 network, {draws} draws, {strains} strains, best of "
          f"{repeats} interleaved runs")
    for label, seconds in best.items():
        print(f"  {label:38s} {seconds * 1e3:9.3f} ms {work / seconds / 1e6:9.1f} M/s  "
              f"{base / seconds:6.1%} of the rate without covariates")
    for label in ("2 covariates, one condition", "2 covariates, a condition per strain"):
        ratio = base / best[label]
        print(f"  target: {label.split(', ')[1]} >= {COVARIATE_TARGET:.0%} of the rate "
              f"without covariates: {ratio:.1%}, "
              f"{'met' if ratio >= COVARIATE_TARGET else 'NOT met'}")
    run_beyond_range(hot_artifact, strain, each, repeats)


def run_beyond_range(artifact, strain: np.ndarray, inside: np.ndarray,
                     repeats: int) -> None:
    """The same model with the level's uncertainty beyond the tested range: a condition
    per strain inside the range (the kernel) and beyond it (the float64 reference), 10
    conditions beyond it and one (their views' kernels). No target: what extrapolating
    costs. The views are built in the warm-up call; a new condition's view costs about
    0.45 ms more."""
    far = Posterior(with_level_changes(artifact, [0.5, 0.5]))
    beyond = inside.copy()
    beyond[:, 0] += 100.0  # 273-353 K becomes 373-453 K: every strain beyond the range
    one = np.tile(beyond[0], (strain.size, 1))
    ten = beyond[np.arange(strain.size) % 10]  # 10 conditions, each at a tenth of the strains
    calls = {"a condition per strain, inside": lambda: far.predict(strain, covariates=inside),
             "a condition per strain, beyond": lambda: far.predict(strain, covariates=beyond),
             "10 conditions, beyond": lambda: far.predict(strain, covariates=ten),
             "one condition, beyond": lambda: far.predict(strain, covariates=one)}
    for call in calls.values():
        call()
    best = {label: float("inf") for label in calls}
    for _ in range(repeats):
        for label, call in calls.items():
            best[label] = min(best[label], best_time(call, 1))
    base = best["a condition per strain, inside"]
    print(f"  with the level term beyond the range ({strain.size} strains):")
    for label, seconds in best.items():
        print(f"    {label:34s} {seconds * 1e3:9.3f} ms  x{seconds / base:5.2f} the time "
              f"inside")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--extra", default=None,
                        help="another architecture to time, e.g. 16,16")
    parser.add_argument("--only", choices=["covariates"], default=None,
                        help="only the covariate comparison")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (other processes skew timings)")
    if args.only == "covariates":
        run_covariates(args.draws, args.repeats)
        return
    run("1->16 two-head network", (16,), args.draws, "exp", args.repeats)
    hidden, draws, link = trainer_default()
    run("trainer default (training.model.BNNConfig)", hidden, draws, link, args.repeats)
    if args.extra:
        extra = tuple(int(w) for w in args.extra.split(","))
        run("extra architecture", extra, args.draws, "softplus", args.repeats)
    run_covariates(args.draws, args.repeats)


if __name__ == "__main__":
    main()
