"""Fitted hyperelastic cards: their fit quality on real fits, the export time of 100
cards, and the FE band's time for K materials (docs/export.md, docs/fe_band.md).

    python benchmarks/cards.py [--database-url sqlite:///var/registry.db]
        [--models demo,gent,ogden] [--materials 100] [--figure docs/figures/fe_band.png]

For each model (a registered fit, e.g. of `surrogate-train make-data --law gent`):
form=auto's fit error of the mean and of 20 sampled materials, in total SDs, against the
0.25 target, with how many sampled curves have a stress at zero strain already above it
(no card can follow that). Then, on the first model: the time of a CalculiX export of 100
cards (mean + 99 curves) against the same export without cards, and the FElupe band of
`--materials` sampled materials (bonded cylinder, 30% compression) with a CalculiX
cross-check of three of them when `ccx` is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# The repo root instead of benchmarks/ (whose http.py would shadow the standard library).
sys.path[0] = str(Path(__file__).resolve().parents[1])
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "examples"))

import fe_band  # noqa: E402
import numpy as np  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from service.main import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402

TARGET = 0.25


def quality(client: TestClient, model: str) -> None:
    body = client.get(f"/v1/models/{model}/export", params={
        "format": "json", "form": "auto", "curves": 20, "seed": 1}).json()
    strain, sd = np.array(body["strain"]), np.array(body["total_sd"])
    cards = body["cards"]
    errors = np.array([card["fit_error"] for card in cards[1:]])
    floors = np.array([abs(np.interp(0.0, strain, body[c["column"]])) / np.interp(0.0, strain, sd)
                       for c in cards[1:]])
    forms = sorted({card["form"] for card in cards})
    print(f"{model}: mean {cards[0]['fit_error']:.3f} ({cards[0]['form']}); 20 materials "
          f"median {np.median(errors):.3f}, max {errors.max():.3f} total SD, "
          f"{int((errors <= TARGET).sum())}/20 <= {TARGET}; of the others "
          f"{int(((errors > TARGET) & (floors > TARGET)).sum())} have a stress at zero strain "
          f"above {TARGET} SD (a card's floor); forms used: {', '.join(forms)}")
    beyond = [(c["column"], round(c["fit_error"], 3), round(f, 3))
              for c, f in zip(cards[1:], floors, strict=True) if c["fit_error"] > TARGET]
    if beyond:
        print(f"  above target (column, error, zero-strain floor): {beyond}")


def export_time(client: TestClient, model: str) -> None:
    query = {"curves": 99, "seed": 2}
    started = time.perf_counter()
    plain = client.get(f"/v1/models/{model}/export", params={"format": "csv", **query})
    table = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    fitted = client.get(f"/v1/models/{model}/export", params={"format": "calculix", **query})
    cards, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert plain.status_code == fitted.status_code == 200, fitted.text
    load = os.getloadavg()[0]
    print(f"{model}: export of 100 fitted cards (mean + 99 curves, format=calculix) "
          f"{cards:.1f} s wall, {cpu:.1f} s CPU ({cpu / 100 * 1000:.0f} ms CPU per card; "
          f"load average {load:.1f} on {os.cpu_count()} cores); the same table without "
          f"cards (csv) {table:.2f} s")


def fe(client: TestClient, model: str, materials: int, figure: Path | None) -> None:
    query = {"form": "auto", "curves": materials, "seed": 1, **fe_band.STABLE}
    body = client.get(f"/v1/models/{model}/export", params={"format": "json",
                                                             **query}).json()
    part = fe_band.Part()
    result = fe_band.band(body, part)
    print(f"{model}: FE band ({part.radial}x{part.axial} quadratic u-p-J elements, "
          f"{part.steps} steps): " + fe_band.summary(result))
    if figure is not None:
        fe_band.figure(result, figure, f"{model} v{body['version']}: bonded cylinder "
                       f"compressed 30%, {result['materials']} sampled materials (FElupe)")
        print(f"figure: {figure}")
    if shutil.which("ccx"):
        text = client.get(f"/v1/models/{model}/export", params={"format": "calculix",
                                                                 **query}).text
        columns = ["mean", *list(result["samples"])[:2]]
        for row in fe_band.cross_check(body, text, result, part, columns):
            print(f"  {row['column']}: " + "; ".join(
                f"{100 * share * fe_band.COMPRESSION:.0f}%: FElupe {felupe:.1f} N, "
                f"CalculiX CAX8R {ccx:.1f} N ({100 * (ccx / felupe - 1):+.1f}%)"
                for share, (felupe, ccx) in ((k, row[k]) for k in (0.5, 1.0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "SURROGATE_DATABASE_URL", "sqlite:///var/registry.db"))
    parser.add_argument("--models", default="demo,gent,ogden")
    parser.add_argument("--materials", type=int, default=100)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--skip-fe", action="store_true")
    args = parser.parse_args()
    models = args.models.split(",")
    with TestClient(create_app(Settings(database_url=args.database_url))) as client:
        present = [m for m in models
                   if client.get(f"/v1/models/{m}/export", params={"points": 2}).status_code
                   == 200]
        if not present:
            print(f"no model of {models} in {args.database_url}: fit one first "
                  "(make run, or surrogate-train make-data/fit)")
            return
        for model in present:
            quality(client, model)
        export_time(client, present[0])
        if not args.skip_fe:
            fe(client, present[0], args.materials, args.figure)


if __name__ == "__main__":
    main()
