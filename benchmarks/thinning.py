"""Dense curves: the network fitted on every point against thinned curves
(training.thinning), on held-out materials.

    .venv/bin/python benchmarks/thinning.py [--laws gent,ogden,mooney-rivlin]
                                            [--points 500] [--limits none,200,100,50]

Per law: a make-data group of 40 materials x --points strains (seed 1) is fitted with
default settings (no held-out folds) with each limit on the points per curve the network
sees ("none": every point), and scored on 40 new materials of the same law (seed 2, every
point): fit CPU time, NLPD, CRPS, 95% coverage. The limit the fit uses is the one where
the scores stop moving.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import pandas as pd  # noqa: E402

import training  # noqa: E402,F401  (BLAS settings before numpy/pytensor load)
from training import calibration, pipeline, thinning  # noqa: E402
from training.config import BNNConfig  # noqa: E402
from training.data import LAWS, TrainingData  # noqa: E402


def data_of(frame: pd.DataFrame) -> TrainingData:
    return TrainingData(frame["strain"].to_numpy(), frame["stress"].to_numpy(),
                        frame["material"].to_numpy(), "strain", "stress", "-", len(frame))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default="gent,ogden,mooney-rivlin")
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--limits", default="none,200,100,50")
    args = parser.parse_args()
    limits = [None if v.strip() == "none" else int(v) for v in args.limits.split(",")]
    for law in args.laws.split(","):
        train, new = LAWS[law](40, args.points, 1), data_of(LAWS[law](40, args.points, 2))
        for limit in limits:
            # The pipeline's own call, with this limit in place of the default.
            pipeline.network_rows = (lambda x, groups, covariates, m=limit:
                                     thinning.network_rows(x, groups, covariates, m))
            started = time.process_time()
            trained = pipeline.fit_data(data_of(train), BNNConfig(), holdout=0.0,
                                        parallel=False)
            cpu = time.process_time() - started
            scores = calibration.evaluate(trained.posterior, new.x, new.y)
            rows = trained.artifact.spec.diagnostics.get("network_rows", len(train))
            print(f"{law}, 40 materials x {args.points} points, limit {limit or 'none'}: "
                  f"network rows {rows}, fit {cpu:.0f} s CPU; 40 new materials NLPD "
                  f"{scores['nlpd']:.4f}, CRPS {scores['crps']:.4f}, 95% coverage "
                  f"{scores['coverage']['0.95']:.3f}", flush=True)


if __name__ == "__main__":
    main()
