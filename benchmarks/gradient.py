"""The cost of one log-density gradient, which an ensemble fit evaluates tens of thousands
of times (every L-BFGS step of every member), in one run:

    .venv/bin/python benchmarks/gradient.py [--rows 5000] [--repeats 500]

A default covariate model (16 tanh units, the strain and 2 covariates, the bootstrap's
weighted likelihood) on `--rows` rows, its trunk's activation written as PyTensor's tanh
and as 2 sigmoid(2a) - 1 (what training.model uses for models with covariates), calls
interleaved; and the share of the gradient the activation op takes (PyTensor's profiler).
The two give the same function to round-off: the largest difference of their log
densities and gradients is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# The project root replaces this folder on the path (benchmarks/http.py would shadow the
# standard library's http).
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

import training  # noqa: E402,F401  (BLAS settings before pytensor loads)
from training.model import BNNConfig, HeteroskedasticBNN  # noqa: E402


class _Tanh(HeteroskedasticBNN):
    """The same model with PyTensor's own tanh in the trunk."""

    def _tanh(self, pre):  # type: ignore[no-untyped-def]
        import pytensor.tensor as pt

        return pt.tanh(pre)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    from pymc.blocking import DictToArrayBijection

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(-1.7, 1.7, args.rows),
                         rng.standard_normal((args.rows, 2))])
    y = np.tanh(x[:, 0]) + 0.1 * rng.standard_normal(args.rows)
    functions, values = {}, {}
    for label, kind in (("tanh", _Tanh), ("2 sigmoid(2a) - 1", HeteroskedasticBNN)):
        model = kind(BNNConfig()).build_model(x, y)
        func = model.logp_dlogp_function(ravel_inputs=True, profile=True)
        func.set_extra_values({})
        point = DictToArrayBijection.map(model.initial_point())
        values[label] = func(point)
        functions[label] = (func, point)
    times = {label: [] for label in functions}
    for _ in range(args.repeats):
        for label, (func, point) in functions.items():
            started = time.perf_counter()
            func(point)
            times[label].append(time.perf_counter() - started)
    print(f"log-density gradient of a 16-unit model, strain + 2 covariates, {args.rows} rows, "
          f"median of {args.repeats} interleaved calls:")
    base = float(np.median(times["tanh"]))
    for label, (func, _) in functions.items():
        median = float(np.median(times[label]))
        profile = func._pytensor_function.profile
        total = sum(profile.apply_time.values())
        # The activation is the elementwise op fed by the first layer's matrix product.
        activation = sum(t for (_, node), t in profile.apply_time.items()
                         if "Composite" in str(node.op) and node.inputs
                         and node.inputs[0].owner is not None
                         and "Dot22" in str(node.inputs[0].owner.op))
        print(f"  {label:18s} {median * 1e3:.3f} ms per call ({base / median:.2f}x the tanh "
              f"graph); the activation op {100 * activation / total:.0f}% of the op time")
    (lp_a, grad_a), (lp_b, grad_b) = values.values()
    print(f"  largest difference: log density {abs(float(lp_a) - float(lp_b)):.1e}, gradient "
          f"{float(np.max(np.abs(np.asarray(grad_a) - np.asarray(grad_b)))):.1e}")


if __name__ == "__main__":
    main()
