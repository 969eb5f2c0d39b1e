"""What every exported file says about itself: the version, its units and definitions, the
grid, the interpolation error and the unstable ranges, and for a model with covariates the
condition (or the values of the covariate a table runs over); each format writes these
lines behind its own comment marker."""

from __future__ import annotations

from dataclasses import dataclass

from service.export.conditions import Condition, OverTables
from service.export.definitions import Definitions
from service.export.table import ExportTable

_MAX_LISTED = 20


@dataclass(frozen=True)
class ExportMeta:
    model: str
    version: int
    artifact_sha256: str
    definitions: Definitions
    training_domain: tuple[float, float]
    # A model with covariates: the condition of a table at one condition, or the set of
    # tables over one covariate (None for a model without covariates).
    condition: Condition | OverTables | None = None


def header_lines(meta: ExportMeta, table: ExportTable) -> list[str]:
    """The header of `table` (for tables over a covariate: OverTables.combined())."""
    d = meta.definitions
    low, high = float(table.strain[0]), float(table.strain[-1])
    step = (high - low) / (table.points - 1)
    lines = [
        f"model: {meta.model}",
        f"version: {meta.version}",
        f"artifact_sha256: {meta.artifact_sha256}",
        f"strain: {d.input_name} [{d.input_unit}]; stress: {d.output_name} "
        f"[{d.output_unit}]; tangent: [{d.output_unit}/{d.input_unit}]",
        f"grid: {table.points} uniform strains from {low!r} to {high!r} (step {step:.6g})",
        f"training_domain: {meta.training_domain[0]!r} to {meta.training_domain[1]!r}"
        + ("" if meta.training_domain[0] <= low and high <= meta.training_domain[1]
           else " (the grid extends beyond it: extrapolation)"),
        f"max_interpolation_error: {table.max_interpolation_error:.3e} total SD "
        "(linear interpolation of this table vs the model, max over grid midpoints)",
    ]
    lines += _condition_lines(meta.condition)
    if table.quantile_levels:
        lines.append("quantile_levels: " + ",".join(f"{q:g}" for q in table.quantile_levels))
    if table.curve_columns:
        lines.append(f"curves: {len(table.curve_columns)} (seed {table.seed})")
    ranges = table.unstable_strain_ranges
    if not ranges:
        lines.append("unstable_strain_ranges: none (every exported curve rises with strain)")
        return lines
    lines.append(f"unstable_strain_ranges: {len(ranges)} (strain ranges where a curve's "
                 "stress does not rise):")
    # One short line each (solver formats limit line length), the first few only.
    lines += [f"  {r.curve} {r.strain_min!r} to {r.strain_max!r}"
              for r in ranges[:_MAX_LISTED]]
    if len(ranges) > _MAX_LISTED:
        lines.append(f"  ... and {len(ranges) - _MAX_LISTED} more (format=json lists all)")
    return lines


def _condition_lines(condition: Condition | OverTables | None) -> list[str]:
    if condition is None:
        return []
    if isinstance(condition, Condition):
        return [f"covariates: {condition.describe()}" + _where(condition)]
    lines = [f"over: {condition.over} [{condition.over_unit}], "
             f"{len(condition.conditions)} values, one table each on the same grid"]
    if condition.fixed:
        lines.append("covariates fixed: " + ", ".join(f"{n}={v!r} {u}"
                                                      for n, u, v in condition.fixed))
    lines += [f"  {condition.over}={c.values[condition.over_index]!r}" + _where(c)
              for c in condition.conditions[:_MAX_LISTED]]
    if len(condition.conditions) > _MAX_LISTED:
        lines.append(f"  ... and {len(condition.conditions) - _MAX_LISTED} more "
                     "(format=json lists all)")
    return lines


def _where(condition: Condition) -> str:
    """How far the condition is from the tested ones (docs/covariates.md)."""
    text = f" (condition_distance {condition.condition_distance:.3g}"
    if condition.outside_training_range:
        text += "; outside the training range: extrapolation"
    if condition.tested_strain_range is not None:
        low, high = condition.tested_strain_range
        text += f"; strains tested at the nearest tested condition: {low:g} to {high:g}"
    return text + ")"
