"""Material uncertainty through a part: K whole-curve samples of a model, one fitted
hyperelastic card each, one finite-element run each, and the part's force-displacement
band against the answer of the mean material alone (docs/fe_band.md).

The part: a rubber cylinder (diameter 20 mm, height 20 mm) bonded to two rigid plates and
compressed 30% between them. Axisymmetric, half the height (the mid-plane is a plane of
symmetry), solved with FElupe: quadratic 8-node quads for the displacement and a
discontinuous linear pressure and volume ratio (mixed u-p-J), so the nearly
incompressible rubber does not lock. A few materials are cross-checked with CalculiX
(CAX8R, the same mesh and card) when `ccx` is installed.

    python examples/fe_band.py --url http://127.0.0.1:8000 --model demo --curves 100

Over 300 lines because it is one runnable page: the material, the part, the band, the
CalculiX deck and the figure belong together for a reader.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import felupe as fem
import numpy as np
import tensortrax.math as tm

from service.export.cards import material_block

RADIUS, HEIGHT, COMPRESSION = 10.0, 20.0, 0.3
# Near the bonded edge the rubber reaches strains beyond the exported range (the free
# surface folds onto the plate), so the cards must be stable beyond it too: form=auto
# chooses among the forms Drucker-stable from -0.75 to 2 (nominal uniaxial strain).
STABLE = {"stable_strain_min": -0.75, "stable_strain_max": 2.0}
_AB_SERIES = (1 / 2, 1 / 20, 11 / 1050, 19 / 7000, 519 / 673750)


@dataclass(frozen=True)
class Part:
    """Mesh density and load steps of the bonded cylinder."""

    radial: int = 8
    axial: int = 8
    steps: int = 24
    # False: frictionless plates instead of bonded ones (homogeneous uniaxial compression,
    # whose force is the card's uniaxial stress times the area: a check of the model).
    bonded: bool = True


def deviatoric_energy(card: dict[str, Any]):  # type: ignore[no-untyped-def]
    """W_dev(C) of an exported card (its JSON form), on isochoric invariants, as the
    CalculiX and Abaqus manuals write it."""
    family = card["form"]
    values = list(card["coefficients"].values())

    def energy(C):  # type: ignore[no-untyped-def]
        scale = tm.linalg.det(C) ** (-1 / 3)
        if family.startswith("ogden"):
            stretches2 = scale * tm.linalg.eigvalsh(C)
            return tm.sum([2 * mu / alpha**2 * (tm.sum(stretches2 ** (alpha / 2)) - 3)
                           for mu, alpha in zip(values[0::2], values[1::2], strict=True)])
        i1 = scale * tm.trace(C)
        if family == "arruda_boyce":
            mu, locking = values
            return mu * tm.sum([c / locking ** (2 * k) * (i1 ** (k + 1) - 3 ** (k + 1))
                                for k, c in enumerate(_AB_SERIES)])
        i2 = (i1**2 - scale**2 * tm.trace(C @ C)) / 2
        terms = []
        for name, value in card["coefficients"].items():
            i, j = int(name[1]), int(name[2])
            terms.append(value * (i1 - 3) ** i * (i2 - 3) ** j)
        return tm.sum(terms)

    return energy


def volumetric(card: dict[str, Any]):  # type: ignore[no-untyped-def]
    """U'(J) and U''(J) of the card's D terms (what the solver adds to W_dev)."""
    d = np.asarray(card["d"])
    if card["form"] == "arruda_boyce":
        return (lambda J, bulk: (J - 1 / J) / d[0],
                lambda J, bulk: (1 + 1 / J**2) / d[0])
    orders = np.arange(1, d.size + 1)
    return (lambda J, bulk: sum(2 * i / di * (J - 1) ** (2 * i - 1)
                                for i, di in zip(orders, d, strict=True)),
            lambda J, bulk: sum(2 * i * (2 * i - 1) / di * (J - 1) ** (2 * i - 2)
                                for i, di in zip(orders, d, strict=True)))


def mesh(part: Part) -> fem.Mesh:
    """Half the cylinder in (axial x, radial y): FElupe revolves about the x axis."""
    grid = fem.Rectangle(a=(0, 0), b=(HEIGHT / 2, RADIUS), n=(part.axial + 1,
                                                               part.radial + 1))
    return grid.add_midpoints_edges()


def felupe_curve(card: dict[str, Any], part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Plate displacement (mm, compression positive) and force (N, whole cylinder)."""
    region = fem.RegionQuadraticQuad(mesh(part))
    field = fem.FieldsMixed(region, n=3, axisymmetric=True)
    dudj, d2udj2 = volumetric(card)
    umat = fem.NearlyIncompressible(fem.Hyperelastic(deviatoric_energy(card)),
                                    bulk=card["initial_bulk_modulus"], dUdJ=dudj,
                                    d2UdJdJ=d2udj2)
    solid = fem.SolidBody(umat, field)
    top = HEIGHT / 2
    boundaries = {
        "mid": fem.Boundary(field[0], fx=0.0, skip=(0, 1)),  # symmetry: no axial motion
        "axis": fem.Boundary(field[0], fy=0.0, skip=(1, 0)),  # no radial motion on it
        "move": fem.Boundary(field[0], fx=top, skip=(0, 1)),
    }
    if part.bonded:  # glued to the plate: no radial motion there
        boundaries["bonded"] = fem.Boundary(field[0], fx=top, skip=(1, 0))
    travel = COMPRESSION * HEIGHT / 2
    ramp = {boundaries["move"]: -fem.math.linsteps([0, travel], num=part.steps)}
    step = fem.Step(items=[solid], ramp=ramp, boundaries=boundaries)
    job = fem.CharacteristicCurve(steps=[step], boundary=boundaries["move"])
    job.evaluate(tol=1e-4, verbose=0)
    displacement = -np.array(job.x)[:, 0]
    # FElupe integrates axisymmetric regions over the whole ring (2 pi R dA).
    force = -np.array(job.y)[:, 0]
    return displacement, force


def fetch_export(url: str, model: str, curves: int, seed: int) -> dict[str, Any]:
    import httpx

    response = httpx.get(f"{url}/v1/models/{model}/export", timeout=600,
                         params={"format": "json", "form": "auto", "curves": curves,
                                 "seed": seed, **STABLE})
    response.raise_for_status()
    return response.json()


def band(body: dict[str, Any], part: Part) -> dict[str, Any]:
    """Every card's force-displacement curve; the band of the sampled materials."""
    started = time.perf_counter()
    curves, failed = {}, []
    for card in body["cards"]:
        try:
            curves[card["column"]] = felupe_curve(card, part)
        except fem.tools.NewtonConvergenceError:
            failed.append(card["column"])  # said in the summary, left out of the band
    elapsed = time.perf_counter() - started
    displacement = curves["mean"][0]
    samples = {column: force for column, (_, force) in curves.items()
               if column.startswith("curve_")}
    forces = np.array(list(samples.values()))
    return {"displacement": displacement, "mean_material": curves["mean"][1],
            "samples": samples, "band_mean": forces.mean(axis=0),
            "q05": np.quantile(forces, 0.05, axis=0),
            "q95": np.quantile(forces, 0.95, axis=0),
            "seconds": elapsed, "materials": len(samples), "failed": failed}


def calculix_curve(card: dict[str, Any], material: list[str], part: Part,
                   workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Plate displacement and force (N, whole cylinder) from CalculiX with CAX8R elements
    on the same mesh (x radial, y axial there), at each increment."""
    grid = mesh(part)
    points = grid.points[:, ::-1]  # CalculiX axisymmetric: x = radius, y = axis
    nodes = "\n".join(f"{k + 1}, {r:.12g}, {z:.12g}" for k, (r, z) in enumerate(points.tolist()))
    # FElupe quad8 order: 4 corners counterclockwise in (axial, radial), then mid-edges;
    # swapping the axes reverses the orientation, so reverse both rings of nodes.
    cells = grid.cells[:, [0, 3, 2, 1, 7, 6, 5, 4]] + 1
    elements = "\n".join(f"{e + 1}, " + ", ".join(map(str, c)) for e, c in enumerate(cells))
    def nset(mask: np.ndarray) -> str:  # noqa: E306
        ids = np.flatnonzero(mask) + 1
        return "\n".join(", ".join(map(str, ids[k:k + 8])) for k in range(0, ids.size, 8))
    top = np.isclose(points[:, 1], HEIGHT / 2)
    deck = f"""*NODE
{nodes}
*ELEMENT, TYPE=CAX8R, ELSET=PART
{elements}
*NSET, NSET=AXIS
{nset(np.isclose(points[:, 0], 0.0))}
*NSET, NSET=MID
{nset(np.isclose(points[:, 1], 0.0))}
*NSET, NSET=TOP
{nset(top)}
{chr(10).join(material)}
*SOLID SECTION, ELSET=PART, MATERIAL={card['material']}
*STEP, NLGEOM, INC=1000
*STATIC
{1.0 / part.steps}, 1.0, 1e-6, {1.0 / part.steps}
*BOUNDARY
AXIS, 1, 1, 0.0
MID, 2, 2, 0.0
{"TOP, 1, 1, 0.0" if part.bonded else "** frictionless plates"}
TOP, 2, 2, {-COMPRESSION * HEIGHT / 2!r}
*NODE PRINT, NSET=TOP, TOTALS=ONLY
RF
*END STEP
"""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "part.inp").write_text(deck)
    subprocess.run(["ccx", "-i", "part"], cwd=workdir, capture_output=True, check=True,
                   timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    totals = re.findall(r"total force \(fx,fy,fz\) for set TOP and time\s+(\S+)\s*\n\s*\n?"
                        r"\s*(\S+)\s+(\S+)", (workdir / "part.dat").read_text())
    times = np.array([float(t) for t, _, _ in totals])
    assert abs(times[-1] - 1.0) < 1e-6, totals[-1]
    # CalculiX's axisymmetric forces are for a 2-degree segment.
    force = -180.0 * np.array([float(axial) for _, _, axial in totals])
    return np.r_[0.0, times * COMPRESSION * HEIGHT / 2], np.r_[0.0, force]


def cross_check(body: dict[str, Any], calculix_text: str, result: dict[str, Any],
                part: Part, columns: list[str]) -> list[dict[str, Any]]:
    """FElupe against CalculiX for `columns`: the forces at 15% and 30% compression."""
    cards = {card["column"]: card for card in body["cards"]}
    forces = {"mean": result["mean_material"], **result["samples"]}
    u = result["displacement"]
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for column in columns:
            card = cards[column]
            ccx_u, ccx_force = calculix_curve(card, material_block(calculix_text,
                                                                   card["material"]),
                                              part, Path(folder) / column)
            row: dict[str, Any] = {"column": column}
            for share in (0.5, 1.0):
                at = share * u[-1]
                row[share] = (float(np.interp(at, u, forces[column])),
                              float(np.interp(at, ccx_u, ccx_force)))
            out.append(row)
    return out


def figure(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    u = result["displacement"]
    for force in result["samples"].values():
        ax.plot(u, force, color="0.8", lw=0.6)
    ax.fill_between(u, result["q05"], result["q95"], color="tab:blue", alpha=0.3,
                    label=f"5-95% of {result['materials']} sampled materials")
    ax.plot(u, result["band_mean"], color="tab:blue", lw=2, label="mean over the materials")
    ax.plot(u, result["mean_material"], "k--", lw=1.5, label="the mean material alone")
    travel = COMPRESSION * HEIGHT / 2
    ax.set_xlabel(f"plate displacement, half model (mm; {travel:g} mm = "
                  f"{100 * COMPRESSION:.0f}% compression)")
    ax.set_ylabel("force (N)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def summary(result: dict[str, Any]) -> str:
    end = {k: float(result[k][-1]) for k in ("mean_material", "band_mean", "q05", "q95")}
    width = end["q95"] - end["q05"]
    return (f"K={result['materials']} materials, FE time {result['seconds']:.1f} s; at 30% "
            f"compression: mean material {end['mean_material']:.1f} N, band mean "
            f"{end['band_mean']:.1f} N, 5-95% {end['q05']:.1f} to {end['q95']:.1f} N "
            f"(width {width:.1f} N = {100 * width / end['mean_material']:.0f}% of the mean "
            "material's force)" + (f"; {len(result['failed'])} did not converge and are "
                                   f"left out: {', '.join(result['failed'])}"
                                   if result["failed"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--curves", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", type=int, default=3, help="materials run in CalculiX")
    parser.add_argument("--figure", type=Path, default=Path("fe_band.png"))
    args = parser.parse_args()
    import httpx

    body = fetch_export(args.url, args.model, args.curves, args.seed)
    part = Part()
    result = band(body, part)
    print(summary(result))
    figure(result, args.figure, f"{args.model} v{body['version']}: bonded cylinder "
           f"compressed 30%, {result['materials']} sampled materials (FElupe, u-p-J)")
    print(f"figure: {args.figure}")
    if args.check and shutil.which("ccx"):
        text = httpx.get(f"{args.url}/v1/models/{args.model}/export", timeout=600, params={
            "format": "calculix", "form": "auto", "curves": args.curves,
            "seed": args.seed, **STABLE}).text
        columns = ["mean", *list(result["samples"])[:args.check - 1]]
        for row in cross_check(body, text, result, part, columns):
            print(f"{row['column']}: " + "; ".join(
                f"{100 * share * COMPRESSION:.0f}%: FElupe {fe:.1f} N, CalculiX CAX8R "
                f"{ccx:.1f} N ({100 * (ccx / fe - 1):+.1f}%)"
                for share, (fe, ccx) in ((k, row[k]) for k in (0.5, 1.0))))


if __name__ == "__main__":
    main()
