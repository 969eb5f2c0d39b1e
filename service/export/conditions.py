"""Export of a model with covariates: the table at one condition, and tables over the
values of one covariate (docs/export.md, "Covariates").

A condition is one value per covariate, in the manifest's order and units. The table at a
condition is the table of the strain-only view `posterior.at(condition)`: the same grid,
columns, interpolation error and unstable ranges as a strain-only model's, so every format
writes it unchanged and only its header says where it stands (header.py).

A table over a covariate holds one such table per value of that covariate (the others
fixed) on ONE strain grid, because the solvers interpolate between the rows of
neighbouring values at equal strains: Abaqus' temperature column, LS-DYNA's
*DEFINE_TABLE. The common grid is the finest of the per-condition default grids (or the
`points` asked), so every condition's table meets the interpolation target it would meet
alone. Whole-curve columns are sampled for all values at once, as predict samples strains
at several conditions (service.inference.at_conditions): curve_j is one posterior draw
and one material across every value, its random effect correlated between conditions as
the curve model says (docs/covariates.md). They are predict's `samples` for the same seed
at the tables' strains (grid and midpoints, value after value) with per-strain covariates,
less the test noise predict adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.export.table import (
    ExportTable,
    assemble_table,
    build_table,
    curve_column,
    default_table,
    evaluate,
    grid_points,
)
from service.inference import at_conditions
from service.inference.posterior import Posterior
from service.inference.stability import UnstableRange


@dataclass(frozen=True)
class Condition:
    """Where one exported table stands: a value per covariate, and how far that is from
    what the model was trained on."""

    names: tuple[str, ...]
    units: tuple[str, ...]
    values: tuple[float, ...]
    # Any covariate outside its training range (extrapolation).
    outside_training_range: bool
    # Standardised distance to the nearest tested condition (0 at a tested one).
    condition_distance: float
    # [min, max] strain tested at the nearest tested condition; None where the model
    # records no per-condition ranges (every condition covered its whole domain).
    tested_strain_range: tuple[float, float] | None = None

    def describe(self) -> str:
        """'temperature=353.15 K, rate=0.01 1/s'."""
        return ", ".join(f"{name}={value!r} {unit}" for name, unit, value
                         in zip(self.names, self.units, self.values, strict=True))

    def as_dict(self) -> dict[str, object]:
        out = {**dict(zip(self.names, self.values, strict=True)),
               "outside_training_range": self.outside_training_range,
               "condition_distance": self.condition_distance}
        if self.tested_strain_range is not None:
            out["tested_strain_range"] = list(self.tested_strain_range)
        return out


def conditions_of(posterior: Posterior, values: np.ndarray) -> list[Condition]:
    """A Condition per row of `values` ((m, k), physical units) of a covariate model."""
    conditions = posterior.conditions
    assert conditions is not None, "a model with covariates"
    values = np.asarray(values, dtype=np.float64).reshape(-1, conditions.count)
    outside = conditions.outside(values)
    distance = conditions.distance(values)
    ranges = (None if conditions.strain_ranges is None
              else conditions.tested_strain_range(values))
    return [Condition(conditions.names, conditions.units, tuple(float(v) for v in row),
                      bool(outside[i]), float(distance[i]),
                      None if ranges is None else (float(ranges[i, 0]), float(ranges[i, 1])))
            for i, row in enumerate(values)]


def is_temperature(name: str, unit: str) -> bool:
    """Whether a covariate goes into a solver's temperature column (Abaqus, CalculiX):
    named temperature (or temp_*, ...) or in kelvin or degrees Celsius."""
    return name.lower().startswith("temp") or unit in ("K", "degC", "C")


@dataclass(frozen=True)
class OverTables:
    """One table per value of the covariate `over`, all on the same strain grid."""

    over: str
    conditions: list[Condition]
    tables: list[ExportTable]

    @property
    def over_index(self) -> int:
        return self.conditions[0].names.index(self.over)

    @property
    def over_unit(self) -> str:
        return self.conditions[0].units[self.over_index]

    @property
    def values(self) -> list[float]:
        """The over covariate's value of each table, in the tables' order."""
        return [c.values[self.over_index] for c in self.conditions]

    @property
    def fixed(self) -> list[tuple[str, str, float]]:
        """(name, unit, value) of the covariates that stay fixed across the tables."""
        first = self.conditions[0]
        return [(n, u, v) for n, u, v in zip(first.names, first.units, first.values,
                                               strict=True) if n != self.over]

    @property
    def in_temperature(self) -> bool:
        """Whether the solvers take the over covariate as their temperature."""
        return is_temperature(self.over, self.over_unit)

    def label(self, index: int) -> str:
        """'temperature=293' for the index-th table (curve titles, unstable ranges)."""
        return f"{self.over}={self.values[index]:g}"

    def combined(self) -> ExportTable:
        """What the header says for the whole set: the common grid, the largest error of
        any table (per column too), and every table's unstable ranges labelled with its
        value."""
        first = self.tables[0]
        errors = {name: max(t.error_by_column[name] for t in self.tables)
                  for name in first.error_by_column}
        ranges = [UnstableRange(f"{r.curve} at {self.label(i)}", r.strain_min, r.strain_max)
                  for i, table in enumerate(self.tables) for r in table.unstable_strain_ranges]
        return ExportTable(first.strain, first.columns, first.quantile_levels,
                           first.curve_columns, first.seed,
                           max(t.max_interpolation_error for t in self.tables), errors, ranges)


def tables_over(posterior: Posterior, over: str, values: np.ndarray, strain_min: float,
                strain_max: float, points: int | None, largest: int, target: float,
                levels: Sequence[float], curves: int = 0, seed: int | None = None
                ) -> OverTables:
    """The tables at each row of `values` ((m, k) conditions, physical) on one grid:
    `points` when given, else the finest of the conditions' default grids (sized with each
    condition's own curves, whose smoothness the joint ones share)."""
    conditions = conditions_of(posterior, values)
    views = [posterior.at(c.values) for c in conditions]
    if points is None:
        points = max(default_table(view, strain_min, strain_max, largest, target,
                                   list(levels), curves, seed).points for view in views)
    grid, both = grid_points(strain_min, strain_max, points)
    joint = None
    if curves:
        assert seed is not None
        rows = np.repeat(np.asarray(values, dtype=np.float64), both.size, axis=0)
        joint = at_conditions.samples(posterior, np.tile(both, len(views)), curves, seed,
                                      None, at_conditions.Placement(rows), test_noise=False)
    tables = []
    for i, view in enumerate(views):
        columns = evaluate(view, both, list(levels), 0, None)
        if joint is not None:
            block = joint[i * both.size:(i + 1) * both.size]
            columns.update({curve_column(j + 1): block[:, j] for j in range(curves)})
        tables.append(assemble_table(grid, columns, list(levels), curves, seed))
    return OverTables(over, conditions, tables)


def tables_at(posterior: Posterior, where: np.ndarray | None, over: str | None,
              strain_min: float, strain_max: float, points: int | None, largest: int,
              target: float, levels: Sequence[float], curves: int = 0,
              seed: int | None = None) -> tuple[ExportTable, Condition | OverTables | None]:
    """An export's table and where it stands: the model itself (`where` None), its view at
    the one condition of `where`, or with `over` one table per row of `where` (then the
    table returned is their combined header view, OverTables.combined)."""
    if where is not None and over is not None:
        tables = tables_over(posterior, over, where, strain_min, strain_max, points, largest,
                             target, levels, curves, seed)
        return tables.combined(), tables
    condition = None if where is None else conditions_of(posterior, where)[0]
    answering = posterior if condition is None else posterior.at(condition.values)
    if points is None:
        table = default_table(answering, strain_min, strain_max, largest, target,
                              list(levels), curves, seed)
    else:
        table = build_table(answering, strain_min, strain_max, points, list(levels), curves,
                            seed)
    return table, condition
