"""Synthetic material groups and CSV loading."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from service.artifact import sha256_hex


def mooney_rivlin_stress(stretch: np.ndarray, c10: np.ndarray, c01: np.ndarray) -> np.ndarray:
    """Uniaxial nominal stress of an incompressible Mooney-Rivlin solid (MPa)."""
    return 2.0 * (stretch - stretch**-2) * (c10 + c01 / stretch)


def make_mooney_rivlin_group(
    materials: int = 40,
    points: int = 50,
    seed: int = 0,
    c10_median: float = 0.3,
    c01_median: float = 0.05,
    c10_log_sd: float = 0.25,
    c01_log_sd: float = 0.5,
    noise_sd: float = 0.02,
    stretch_range: tuple[float, float] = (0.5, 1.5),
) -> pd.DataFrame:
    """A group of materials whose constants scatter log-normally around the medians.

    Material-to-material scatter grows with |lambda - lambda^-2|, which is far larger in
    compression (lambda = 0.5 gives -3.5) than in tension (lambda = 1.5 gives 1.06): the
    input-dependent scatter the heteroskedastic model must recover.
    """
    rng = np.random.default_rng(seed)
    c10 = c10_median * np.exp(c10_log_sd * rng.standard_normal(materials))
    c01 = c01_median * np.exp(c01_log_sd * rng.standard_normal(materials))
    stretch = np.linspace(*stretch_range, points)
    stress = mooney_rivlin_stress(stretch[None, :], c10[:, None], c01[:, None])
    stress = stress + noise_sd * rng.standard_normal(stress.shape)
    return pd.DataFrame({
        "strain": np.tile(stretch - 1.0, materials),
        "stress": stress.ravel(),
        "material": np.repeat(np.arange(materials), points),
    })


def gent_stress(stretch: np.ndarray, mu: np.ndarray, jm: np.ndarray) -> np.ndarray:
    """Uniaxial nominal stress of an incompressible Gent solid (MPa): strain-stiffening as
    the first invariant approaches its limit 3 + Jm."""
    i1 = stretch**2 + 2.0 / stretch
    return mu * jm * (stretch - stretch**-2) / (jm - i1 + 3.0)


def ogden_stress(stretch: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Uniaxial nominal stress of a one-term incompressible Ogden solid (MPa)."""
    return 2.0 * mu / alpha * (stretch ** (alpha - 1.0) - stretch ** (-alpha / 2.0 - 1.0))


LAW_STRESS = {"gent": gent_stress, "ogden": ogden_stress}


def _law_constants(law: str, rng: np.random.Generator) -> tuple[float, float]:
    """One material's (shear modulus, second constant) of a Gent or Ogden group."""
    shear = 0.4 * np.exp(0.25 * rng.standard_normal())
    # Gent: locking parameter Jm around 20; Ogden: exponent alpha around 3.
    second = (20.0 * np.exp(0.3 * rng.standard_normal()) if law == "gent"
              else 3.0 * np.exp(0.2 * rng.standard_normal()))
    return float(shear), float(second)


def law_curves(law: str, strain: np.ndarray, count: int, seed: int,
               noise_sd: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """`count` fresh materials of a `make-data` law at `strain`: (noise-free curves,
    measured curves = curves + test noise), each (count, len(strain)). The generating
    process itself, for scoring fits against the truth."""
    rng = np.random.default_rng(seed)
    stretch = np.asarray(strain, dtype=float)[None, :] + 1.0
    if law == "mooney-rivlin":
        c10 = 0.3 * np.exp(0.25 * rng.standard_normal(count))
        c01 = 0.05 * np.exp(0.5 * rng.standard_normal(count))
        curves = mooney_rivlin_stress(stretch, c10[:, None], c01[:, None])
    elif law in LAW_STRESS:
        constants = np.array([_law_constants(law, rng) for _ in range(count)])
        curves = LAW_STRESS[law](stretch, constants[:, :1], constants[:, 1:])
    else:
        raise ValueError(f"unknown law {law!r}")
    return curves, curves + noise_sd * rng.standard_normal(curves.shape)


def population_statistics(law: str, strain: np.ndarray, materials: int = 20_000,
                          seed: int = 99, noise_sd: float = 0.02) -> dict[str, np.ndarray]:
    """The generating law's population mean and SD at `strain`, split into the
    material-to-material SD (of the noise-free curves) and the test noise."""
    curves, measured = law_curves(law, strain, materials, seed, noise_sd)
    between = curves.std(axis=0, ddof=1)
    return {"mean": measured.mean(axis=0), "sd": np.hypot(between, noise_sd),
            "between_sd": between, "within_sd": np.full(between.shape, noise_sd)}


def make_law_group(
    law: str,
    materials: int = 40,
    points: int = 50,
    seed: int = 0,
    noise_sd: float = 0.02,
    stretch_range: tuple[float, float] = (0.5, 1.5),
    uneven: bool = False,
) -> pd.DataFrame:
    """A group of Gent or Ogden materials with log-normally scattered constants.

    `uneven=True` gives every material its own random strains (and between points/2 and
    points of them), as real test programmes do; the fit must not rely on a shared grid.
    """
    rng = np.random.default_rng(seed)
    frames, constants = [], []
    for material in range(materials):
        if uneven:
            count = int(rng.integers(max(2, points // 2), points + 1))
            stretch = np.sort(rng.uniform(*stretch_range, count))
        else:
            stretch = np.linspace(*stretch_range, points)
        if law not in LAW_STRESS:
            raise ValueError(f"unknown law {law!r}")
        shear, second = _law_constants(law, rng)
        constants.append((shear, second))
        stress = LAW_STRESS[law](stretch, shear, second)
        stress = stress + noise_sd * rng.standard_normal(stretch.shape)
        frames.append(pd.DataFrame({"strain": stretch - 1.0, "stress": stress,
                                    "material": material}))
    frame = pd.concat(frames, ignore_index=True)
    # The generating process, so a test can compare fitted scatter with the true one.
    frame.attrs.update(law=law, constants=constants, noise_sd=noise_sd)
    return frame


def generating_sd(frame: pd.DataFrame, strain: np.ndarray) -> np.ndarray:
    """SD of stress at `strain` across the group's own materials, plus the test noise:
    the aleatoric SD a perfect fit of this group (made by `make_law_group`) reports."""
    stretch = np.asarray(strain, dtype=float) + 1.0
    curves = np.array([LAW_STRESS[frame.attrs["law"]](stretch, a, b)
                       for a, b in frame.attrs["constants"]])
    return np.sqrt(curves.var(axis=0, ddof=1) + frame.attrs["noise_sd"] ** 2)


def _law(name: str):  # type: ignore[no-untyped-def]
    def make(materials: int = 40, points: int = 50, seed: int = 0) -> pd.DataFrame:
        return make_law_group(name, materials, points, seed)
    return make


LAWS = {"mooney-rivlin": make_mooney_rivlin_group, "gent": _law("gent"),
        "ogden": _law("ogden")}


# The scales a covariate may be read on (`--covariate NAME:UNIT:SCALE`).
COVARIATE_SCALES = ("log", "linear")
# Without a scale given, a covariate whose values are all > 0 and span at least this ratio
# (two decades: strain rates, ageing times, molecular weights) is read on a log scale.
AUTO_LOG_RATIO = 100.0


@dataclass(frozen=True)
class CovariateColumn:
    """A numeric CSV column that enters the network beside the strain; `scale` "log" reads
    ln(value), "linear" the value, None decides from the data (`reads_log`)."""

    name: str
    unit: str = "1"
    scale: str | None = None

    @classmethod
    def parse(cls, option: str) -> CovariateColumn:
        """`NAME[:UNIT][:SCALE]`, as `surrogate-train fit --covariate` takes it."""
        name, _, rest = option.partition(":")
        unit, _, scale = rest.partition(":")
        name, unit, scale = name.strip(), unit.strip() or "1", scale.strip().lower()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
            raise ValueError(f"--covariate {option!r}: the name must start with a letter or "
                             "underscore and hold only letters, digits, '_', '.', '-' (at "
                             "most 64 characters)")
        if scale and scale not in COVARIATE_SCALES:
            raise ValueError(f"--covariate {option!r}: the scale must be one of "
                             f"{list(COVARIATE_SCALES)} (or left out: log where the values "
                             f"are > 0 and span a factor of {AUTO_LOG_RATIO:g} or more)")
        return cls(name, unit, scale or None)

    def reads_log(self, values: np.ndarray) -> bool:
        """Whether the network reads this column's `values` on a log scale."""
        if self.scale is not None:
            return self.scale == "log"
        return bool(np.all(values > 0) and values.max() >= AUTO_LOG_RATIO * values.min())


@dataclass(frozen=True)
class TrainingData:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    x_name: str
    y_name: str
    sha256: str
    rows: int
    # (rows, k) physical values of the covariate columns, in `covariate_columns` order;
    # None for strain-only data.
    covariates: np.ndarray | None = None
    covariate_columns: tuple[CovariateColumn, ...] = ()


def with_covariate_scales(data: TrainingData) -> TrainingData:
    """`data` with each covariate's scale decided from all its values (`reads_log`), so
    every held-out fold reads it as the served fit does; ValueError for log and <= 0."""
    if data.covariates is None:
        return data
    columns = []
    for j, column in enumerate(data.covariate_columns):
        log = column.reads_log(data.covariates[:, j])
        if log and np.any(data.covariates[:, j] <= 0):
            raise ValueError(f"covariate {column.name!r} cannot be read on a log scale: "
                             f"its smallest value is {data.covariates[:, j].min():g}")
        columns.append(dataclasses.replace(column, scale="log" if log else "linear"))
    return dataclasses.replace(data, covariate_columns=tuple(columns))


def subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    """The rows `rows` of `data` (a split, a fold, the rows at one condition)."""
    groups = None if data.groups is None else data.groups[rows]
    covariates = None if data.covariates is None else data.covariates[rows]
    return TrainingData(data.x[rows], data.y[rows], groups, data.x_name, data.y_name,
                        data.sha256, int(rows.size), covariates, data.covariate_columns)


def load_csv(path: Path, x: str = "strain", y: str = "stress",
             group: str | None = "material",
             covariates: Sequence[CovariateColumn] = ()) -> TrainingData:
    """Read the columns a fit needs, refusing missing columns and non-finite values."""
    raw = Path(path).read_bytes()
    frame = pd.read_csv(path)
    for column in (x, y):
        if column not in frame.columns:
            raise ValueError(f"column {column!r} not in {path} (columns: {list(frame.columns)})")
    xs = pd.to_numeric(frame[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(frame[y], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(xs) & np.isfinite(ys))
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 2).tolist()  # +2: header line, 1-based lines
        raise ValueError(f"{bad.sum()} rows of {path} have non-numeric {x}/{y}, e.g. lines {rows}")
    if len(xs) < 4:
        raise ValueError(f"{path} has {len(xs)} rows; a fit needs at least 4")
    groups = frame[group].to_numpy() if group and group in frame.columns else None
    values = (covariate_values(path, covariates, reserved=(x, y, group))
              if covariates else None)
    return TrainingData(xs, ys, groups, x, y, sha256_hex(raw), len(xs), values,
                        tuple(covariates))


def covariate_values(path: Path, columns: Sequence[CovariateColumn],
                     reserved: Sequence[str | None] = ()) -> np.ndarray:
    """(rows, k) float values of the covariate columns; ValueError naming the column and
    the CSV line of the first missing, non-numeric or non-finite value."""
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"--covariate names a column twice: {names}")
    for name in names:
        if name in reserved:
            raise ValueError(f"covariate {name!r} is already the strain, stress or group "
                             "column")
    # As text, so an empty cell (missing) is told from "abc" or "inf".
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = np.empty((len(text), len(columns)))
    for j, name in enumerate(names):
        if name not in text.columns:
            raise ValueError(f"covariate column {name!r} not in {path} (columns: "
                             f"{list(text.columns)})")
        for row, cell in enumerate(text[name]):
            problem = _covariate_problem(cell)
            if problem:
                raise ValueError(f"covariate column {name!r} of {path}, line {row + 2} "
                                 f"(data row {row + 1}): {problem}")
            out[row, j] = float(cell)
        if columns[j].scale == "log" and np.any(out[:, j] <= 0):
            row = int(np.flatnonzero(out[:, j] <= 0)[0])
            raise ValueError(f"covariate column {name!r} of {path}, line {row + 2} (data row "
                             f"{row + 1}): {out[row, j]:g} cannot be read on a log scale "
                             "(every value must be > 0)")
    return out


def _covariate_problem(cell: str) -> str | None:
    if not cell.strip():
        return "the value is missing"
    try:
        value = float(cell)
    except ValueError:
        return f"{cell!r} is not a number"
    return None if np.isfinite(value) else f"{cell!r} is not a finite number"
