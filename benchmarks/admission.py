"""The admission cost model against measured times, in process (no HTTP).

    .venv/bin/python benchmarks/admission.py [--draws 1000]

For representative requests (summaries, tangent, quantiles of few and many levels,
samples, a material's `observed` prediction and quantiles, an export, fitted cards, the
JSON encoding) it prints the estimate of service/prediction/admission.py, the measured
time (best of two), and measured / estimated. The estimates are in seconds of the reference machine
(docs/performance.md: this 2-core machine at load 2-6); a ratio near 1 at that load means
the coefficients hold, above 1 that the machine is slower now (the load average is
printed), and a ratio that differs much between rows means a coefficient is off. Nothing
asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project root, not benchmarks/

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from service import export  # noqa: E402
from service.inference import curves, predictive  # noqa: E402
from service.inference.posterior import Posterior  # noqa: E402
from service.prediction import admission  # noqa: E402
from tests.rubber_model import rubber_artifact  # noqa: E402
from tests.service_process import random_artifact  # noqa: E402
from tests.test_curves import hand_section  # noqa: E402

LEVELS = list(np.linspace(0.01, 0.99, 99))


def best(work: Callable[[], object], repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def curved(draws: int) -> Posterior:
    artifact = random_artifact(draws=draws, hidden_sizes=(8,), seed=3)
    artifact.manifest["curve_model"] = hand_section()  # type: ignore[arg-type]
    from service.artifact import Artifact
    return Posterior(Artifact.from_bytes(artifact.to_bytes()))


def export_with_cards(posterior: Posterior, form: str) -> bytes:
    """A JSON export of the mean and 20 curves on 201 points, each with a card of `form`."""
    meta = export.ExportMeta("r", 1, "0" * 64, export.Definitions.from_manifest(posterior.spec),
                             posterior.domain)
    table = export.build_table(posterior, -0.5, 0.5, 201, [], 20, 1)
    return export.render("json", meta, table,
                         cards=export.fit_cards(meta, table, form, export.Volumetric()))


def rows(draws: int) -> list[tuple[str, admission.Estimate, Callable[[], object]]]:
    plain = Posterior(random_artifact(draws=draws, hidden_sizes=(8,), seed=1))
    wide = Posterior(random_artifact(draws=draws, hidden_sizes=(32, 32), seed=2))
    material = curved(draws)
    observed = curves.Observed(np.array([-0.3, 0.0, 0.3]), np.array([-0.5, -0.2, 0.2]))
    x = lambda n: np.linspace(-0.4, 0.4, n)  # noqa: E731
    est = admission.predict_estimate
    out: list[tuple[str, admission.Estimate, Callable[[], object]]] = []
    for name, posterior in (("[8]", plain), ("[32, 32]", wide)):
        n = 200_000 if posterior is plain else 20_000
        out.append((f"summaries {name}, {n} strains", est(posterior, n),
                    lambda p=posterior, n=n: p.predict(x(n))))
        out.append((f"summaries + tangent {name}, {n} strains",
                    est(posterior, n, tangent=True),
                    lambda p=posterior, n=n: p.predict(x(n), tangent=True)))
    out.append(("quantiles [8], 3 levels x 20,000 strains", est(plain, 20_000, levels=3),
                lambda: predictive.quantiles(plain, x(20_000), [0.05, 0.5, 0.95])))
    out.append(("quantiles [8], 99 levels x 1,000 strains", est(plain, 1_000, levels=99),
                lambda: predictive.quantiles(plain, x(1_000), LEVELS)))
    out.append(("samples [8], 1,000 draws x 1,000 strains", est(plain, 1_000, draws=1_000),
                lambda: predictive.samples(plain, x(1_000), 1_000, 7)))
    out.append(("observed [8], 3 points, 20,000 strains", est(material, 20_000, observed=3),
                lambda: curves.conditional_predict(material, material.curve, x(20_000),
                                                   observed)))
    out.append(("observed quantiles [8], 9 levels x 500 strains",
                est(material, 500, levels=9, observed=3),
                lambda: predictive.quantiles(material, x(500), LEVELS[::11], observed)))
    meta = export.ExportMeta("b", 1, "0" * 64, export.Definitions.from_manifest(plain.spec),
                             plain.domain)
    out.append(("export [8], 100,001 points, 3 quantiles, csv",
                admission.export_estimate(plain, 100_001, 3, 0, searched=False),
                lambda: export.render("csv", meta, export.build_table(
                    plain, -0.4, 0.4, 100_001, [0.05, 0.5, 0.95]))))
    rubber = Posterior(rubber_artifact())
    for form in ("auto", "ogden_n3", "mooney_rivlin"):
        out.append((f"export rubber, 201 points, 21 {form} cards",
                    admission.export_estimate(rubber, 201, 0, 20, searched=False, form=form),
                    lambda form=form: export_with_cards(rubber, form)))
    values = np.random.default_rng(0).normal(size=1_000_000)
    out.append(("encoding 10^6 numbers", admission.Estimate((
        admission.Term("encoding", "strain", 1e6 * admission.JSON_NS_PER_NUMBER * 1e-9),)),
        lambda: orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.draws} draws")
    print(f"{'request':<48} {'estimate':>9} {'measured':>9} {'ratio':>6}")
    for label, estimate, work in rows(args.draws):
        measured = best(work)
        print(f"{label:<48} {estimate.seconds:>8.3f}s {measured:>8.3f}s "
              f"{measured / estimate.seconds:>6.2f}")


if __name__ == "__main__":
    main()
