"""What a version page shows of a model with covariates: each covariate's unit, training
range, tested values and how much it moves the curve's level across that range (the scale
of the level's uncertainty beyond it), the tested conditions, and the condition "try it"
starts at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.inference.conditions import Conditions
from service.manifest import ManifestError, parse_manifest

# Tested conditions listed on the page (the manifest may hold thousands).
MAX_LISTED_CONDITIONS = 50
# Distinct tested values listed per covariate before "... and N more".
MAX_LISTED_VALUES = 12


@dataclass(frozen=True)
class CovariateRow:
    name: str
    unit: str
    low: float  # training range
    high: float
    tested: list[float]  # distinct tested values, ascending
    start: float  # "try it" starts here: the central tested condition's value
    log: bool = False  # the network reads ln(value)
    # Change of ln(level of the mean curve) across the range; None in older artifacts.
    level_change: float | None = None


@dataclass(frozen=True)
class CovariatesView:
    rows: list[CovariateRow]
    conditions: list[list[float]]  # the first MAX_LISTED_CONDITIONS tested conditions
    condition_count: int
    # [min, max] strain tested at each listed condition; None where every condition
    # covered the whole training domain (the manifest then has no such field).
    strain_ranges: list[list[float]] | None = None

    @property
    def level_changes(self) -> bool:
        """Whether the version records how each covariate moves the curve's level."""
        return any(r.level_change is not None for r in self.rows)

    def try_it(self) -> list[dict[str, Any]]:
        """The inputs of the "try it" form (serialised into its data attribute)."""
        return [{"name": r.name, "unit": r.unit, "min": r.low, "max": r.high,
                 "start": r.start} for r in self.rows]


def covariates_view(manifest: dict[str, Any]) -> CovariatesView | None:
    """None for a model without covariates (or a manifest that does not parse)."""
    if not manifest.get("covariates"):
        return None
    try:
        conditions = Conditions.from_spec(parse_manifest(manifest))
    except ManifestError:
        return None
    if conditions is None:
        return None
    central = conditions.central()
    rows = [CovariateRow(name, unit, float(conditions.low[j]), float(conditions.high[j]),
                         np.unique(conditions.tested[:, j]).tolist(), float(central[j]),
                         bool(conditions.log[j]),
                         None if conditions.level_change is None
                         else float(conditions.level_change[j]))
            for j, (name, unit) in enumerate(zip(conditions.names, conditions.units,
                                                  strict=True))]
    ranges = (None if conditions.strain_ranges is None
              else conditions.strain_ranges[:MAX_LISTED_CONDITIONS].tolist())
    return CovariatesView(rows, conditions.tested[:MAX_LISTED_CONDITIONS].tolist(),
                          int(conditions.tested.shape[0]), ranges)
