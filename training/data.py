"""Synthetic material groups and CSV loading."""

from __future__ import annotations

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


LAWS = {"mooney-rivlin": make_mooney_rivlin_group}


@dataclass(frozen=True)
class TrainingData:
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    x_name: str
    y_name: str
    sha256: str
    rows: int


def load_csv(path: Path, x: str = "strain", y: str = "stress",
             group: str | None = "material") -> TrainingData:
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
    return TrainingData(xs, ys, groups, x, y, sha256_hex(raw), len(xs))
