"""The exported table: the model on a uniform strain grid, how far linear interpolation of
that table is from the model, and where its curves stop rising.

Fidelity: for every stress-valued column c (mean, the three SDs, each quantile, each
curve) the deviation of the table at the grid midpoint m_i is
d_i = ((c(x_i) + c(x_{i+1}))/2 - c(m_i)) / total_sd(m_i), linear interpolation against the
model in units of the predictive SD; the reported error is max_i |d_i| plus half the change
of d to the neighbouring intervals (the worst point of an interval moves off its midpoint
when the curvature varies along it, by about that much). The tangent columns are not
stress-valued and are not counted (linear interpolation of the table has the secant
slopes, not them). The model is evaluated on the
grid and its midpoints in one call, so sample curves are the same curves at both.

Linear interpolation error of a smooth function scales as h^2, so the default grid is found
by measuring the error on a coarse grid and refining to the size that scaling predicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.inference import interrupt, predictive
from service.inference.posterior import Posterior
from service.inference.stability import UnstableRange, unstable_ranges

# The default grid's target: interpolation error at most this many total SDs.
DEFAULT_MAX_ERROR = 1e-3
_FIRST_POINTS = 129
# Refinement aims a little below the target so one step usually lands under it.
_AIM = 0.8
_MAX_REFINEMENTS = 4
UNREACHABLE_POINTS = 2**62

SUMMARY_COLUMNS = ("mean", "aleatoric_sd", "epistemic_sd", "total_sd", "tangent",
                   "tangent_epistemic_sd")
_NOT_STRESS = ("tangent", "tangent_epistemic_sd")


@dataclass(frozen=True)
class ExportTable:
    strain: np.ndarray
    # Column name -> values at `strain`, in output order: SUMMARY_COLUMNS, then the
    # quantile columns, then the curve columns.
    columns: dict[str, np.ndarray]
    quantile_levels: list[float]
    curve_columns: list[str]
    seed: int | None
    max_interpolation_error: float
    error_by_column: dict[str, float]
    unstable_strain_ranges: list[UnstableRange] = field(default_factory=list)

    @property
    def points(self) -> int:
        return int(self.strain.size)

    @property
    def quantile_columns(self) -> list[str]:
        return [quantile_column(level) for level in self.quantile_levels]

    @property
    def stress_curves(self) -> list[str]:
        """The columns a solver takes as a stress-strain curve: mean, quantiles, curves."""
        return ["mean", *self.quantile_columns, *self.curve_columns]


def quantile_column(level: float) -> str:
    return f"q{level:g}"


def curve_column(index: int) -> str:
    return f"curve_{index}"


def needed_points(points: int, error: float, target: float) -> int:
    """Grid size that h^2 scaling predicts meets `target`, from `error` at `points`."""
    if error <= target:
        return points
    factor = math.sqrt(error / (_AIM * target))
    if not math.isfinite(factor) or factor > 1e12:  # no grid would: say "more than any"
        return UNREACHABLE_POINTS
    return math.ceil((points - 1) * factor) + 1


def evaluate(posterior: Posterior, strain: np.ndarray, levels: list[float], curves: int,
             seed: int | None) -> dict[str, np.ndarray]:
    """Every column of the table at `strain` (the grid and its midpoints)."""
    prediction = posterior.predict(strain, tangent=True)
    out = {
        "mean": prediction.mean,
        "aleatoric_sd": prediction.aleatoric_sd,
        "epistemic_sd": prediction.epistemic_sd,
        "total_sd": prediction.total_sd,
        "tangent": prediction.tangent,
        "tangent_epistemic_sd": prediction.tangent_epistemic_sd,
    }
    if levels:
        values = predictive.quantiles(posterior, strain, levels)
        out.update({quantile_column(level): values[k] for k, level in enumerate(levels)})
    if curves:
        assert seed is not None
        # A solver needs each material's law, not one test of it: no test noise.
        values = predictive.samples(posterior, strain, curves, seed, test_noise=False)
        out.update({curve_column(j + 1): values[:, j] for j in range(curves)})
    return out


def grid_points(strain_min: float, strain_max: float, points: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The uniform grid and, interleaved with it, its midpoints (where the model is also
    evaluated, to measure the interpolation error)."""
    grid = np.linspace(strain_min, strain_max, points)
    both = np.empty(2 * points - 1)
    both[0::2] = grid
    both[1::2] = 0.5 * (grid[:-1] + grid[1:])
    return grid, both


def build_table(posterior: Posterior, strain_min: float, strain_max: float, points: int,
                levels: list[float], curves: int = 0, seed: int | None = None) -> ExportTable:
    """The table on `points` uniform strains, with its interpolation error and unstable
    ranges."""
    grid, both = grid_points(strain_min, strain_max, points)
    return assemble_table(grid, evaluate(posterior, both, levels, curves, seed), levels,
                          curves, seed)


def assemble_table(grid: np.ndarray, values: dict[str, np.ndarray], levels: list[float],
                   curves: int, seed: int | None) -> ExportTable:
    """The table from the columns' values on the grid and its midpoints (grid_points)."""
    columns = {name: np.ascontiguousarray(v[0::2]) for name, v in values.items()}
    at_mid = {name: v[1::2] for name, v in values.items()}
    scale = at_mid["total_sd"]
    errors: dict[str, float] = {}
    for name, table in columns.items():
        if name in _NOT_STRESS:
            continue
        interpolated = 0.5 * (table[:-1] + table[1:])
        with np.errstate(divide="ignore", invalid="ignore"):
            error = _bound((interpolated - at_mid[name]) / scale)
        # A zero SD (or values the float range cannot hold) is no error bound at all.
        errors[name] = error if math.isfinite(error) else math.inf
    curve_names = [curve_column(j + 1) for j in range(curves)]
    quantile_names = [quantile_column(level) for level in levels]
    ranges = unstable_ranges(grid, columns["mean"], columns["tangent"], "mean")
    for name in quantile_names + curve_names:
        ranges += unstable_ranges(grid, columns[name], None, name)
    return ExportTable(grid, columns, list(levels), curve_names, seed, max(errors.values()),
                       errors, ranges)


def _bound(deviation: np.ndarray) -> float:
    """Max over intervals of |midpoint deviation| plus half its change to the neighbouring
    intervals: where the curvature varies along an interval the largest deviation sits off
    the midpoint, by about that much."""
    if deviation.size == 1:
        return float(abs(deviation[0]))
    change = np.abs(np.diff(deviation))
    near = np.maximum(np.concatenate(([0.0], change)), np.concatenate((change, [0.0])))
    return float(np.max(np.abs(deviation) + 0.5 * near))


def probe_points(posterior: Posterior, strain_min: float, strain_max: float,
                 target: float) -> int:
    """The grid size h^2 scaling predicts for `target`, from the summaries' error on a
    coarse grid (a few hundred kernel evaluations): what a default grid will be, and
    whether a target can be met at all, before the grid is built."""
    probe = build_table(posterior, strain_min, strain_max, _FIRST_POINTS, [])
    return needed_points(probe.points, probe.max_interpolation_error, target)


def default_table(posterior: Posterior, strain_min: float, strain_max: float,
                  max_points: int, target: float, levels: list[float], curves: int = 0,
                  seed: int | None = None) -> ExportTable:
    """The smallest grid (found by h^2 refinement, at most `max_points`) whose
    interpolation error is at most `target`; the finest tried when none is."""
    build: Callable[[int], ExportTable] = lambda n: build_table(  # noqa: E731
        posterior, strain_min, strain_max, n, levels, curves, seed)
    start = min(_FIRST_POINTS, max_points)
    if levels or curves:
        # Quantiles and samples cost far more than the kernel's summaries and bend like
        # them (mean +- z SD): size the grid on the summaries, then check every column.
        start = default_table(posterior, strain_min, strain_max, max_points, target, []).points
    table = build(start)
    for _ in range(_MAX_REFINEMENTS):
        if table.max_interpolation_error <= target or table.points >= max_points:
            break
        interrupt.checkpoint()
        finer = build(min(max_points, needed_points(table.points, table.max_interpolation_error,
                                                    target)))
        # A column whose error does not fall with the grid (not resolved at this scale,
        # e.g. scatter that is independent from strain to strain) cannot be refined away.
        shrink = (table.points - 1) ** 2 / (finer.points - 1) ** 2
        stalled = finer.max_interpolation_error > 0.5 * table.max_interpolation_error \
            and finer.max_interpolation_error > 4 * shrink * table.max_interpolation_error
        table = finer
        if stalled:
            break
    return table
