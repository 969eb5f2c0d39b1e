"""Where a curve stops rising: the strain ranges over which a stress-strain curve's slope
is not positive. A hyperelastic solver needs a rising stress there (docs/export.md); the
predict answer (with tangent) and the exported tables both report these ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UnstableRange:
    curve: str
    strain_min: float
    strain_max: float

    def as_dict(self) -> dict[str, float | str]:
        return {"curve": self.curve, "strain_min": self.strain_min,
                "strain_max": self.strain_max}


def unstable_ranges(strain: np.ndarray, values: np.ndarray | None,
                    tangent: np.ndarray | None, curve: str) -> list[UnstableRange]:
    """Strain ranges of a curve whose slope is not positive: runs of consecutive grid
    intervals whose secant slope (values, ascending strains) is <= 0, and runs of strains
    where the tangent (when given) is <= 0. Each range runs from the first to the last
    strain of its run."""
    spans: list[tuple[int, int]] = []
    if values is not None and strain.size > 1:
        spans += [(i, j + 1) for i, j in _runs(np.diff(values) <= 0)]
    if tangent is not None:
        spans += _runs(tangent <= 0)
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [UnstableRange(curve, float(strain[a]), float(strain[b])) for a, b in merged]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True in `mask`."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
