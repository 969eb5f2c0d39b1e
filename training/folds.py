"""Which rows each held-out fit leaves out, and the held-out section built from their scores.

A version's held-out metrics estimate how a fit of its configuration does on materials it
has not seen. K folds by material (the default) give every material to exactly one fold;
fold k's fit trains on the other folds' materials and is scored on fold k's. Each held-out
row is scored by the one fit that did not see it, and the section pools all of them:
its scores are over every material, with their spread over materials (`training.spread`).
Where the row budget allows fewer fits than folds, only the first folds are fitted
(`first_folds`), and their materials are the ones scored.
`--folds 1` is a single split (a fraction of the materials held out, the rest training
only); data without a material column are split by rows.

`Folds` is any assignment of rows to held-out fits, so other ways to split plug in:
`label_folds` makes one fold per distinct label, e.g. per tested condition of a covariate
model (leave one condition out), scored by unit, e.g. material.

Why one module of this size: which rows each held-out fit leaves out and how their scores
are pooled back are one contract - the sections read the plans' own folds and units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from training import calibration, curve_metrics, spread
from training.config import HELD_OUT_ROWS, MAX_FOLDS
from training.data import TrainingData
from training.thinning import network_rows
from training.widening import HeldOutFold


@dataclass(frozen=True)
class Split:
    """Which rows trained one held-out fit and which were held out to score it."""

    train: np.ndarray
    test: np.ndarray
    by: str  # "group", "rows", "condition" or "none"
    held_out_groups: list[Any]


def holdout_split(data: TrainingData, fraction: float, seed: int) -> Split:
    """Hold out whole groups (materials) when the data has a group column, else rows.

    A material the fit has seen leaks its own curve into the test set; a new material is
    what a user will ask about, so groups are held out whole. Fewer than 3 groups (or 10
    rows) leave nothing sensible to hold out: then everything trains and nothing is scored.
    """
    everything = np.arange(data.rows)
    if fraction <= 0:
        return Split(everything, everything[:0], "none", [])
    rng = np.random.default_rng(seed)
    if data.groups is not None:
        groups = np.unique(data.groups)
        if groups.size >= 3:
            count = min(groups.size - 2, max(1, round(fraction * groups.size)))
            held = rng.choice(groups, size=count, replace=False)
            test = np.isin(data.groups, held)
            return Split(everything[~test], everything[test], "group",
                         sorted(v.item() if hasattr(v, "item") else v for v in held))
    if data.rows < 10:
        return Split(everything, everything[:0], "none", [])
    test = np.zeros(data.rows, dtype=bool)
    test[rng.choice(data.rows, size=max(1, round(fraction * data.rows)), replace=False)] = True
    return Split(everything[~test], everything[test], "rows", [])


@dataclass(frozen=True)
class Folds:
    """Per row, the held-out fit that scores it (`fold`, -1: no fit holds it out, it only
    trains) and the unit its score belongs to (`unit`: the material, or the row)."""

    by: str
    fold: np.ndarray
    unit: np.ndarray
    unit_name: str
    fraction: float  # of the rows' units (by condition: of the conditions) each fit holds out
    names: tuple[str, ...] = ()  # what each fold holds out, when not its units (conditions)

    @property
    def count(self) -> int:
        return int(self.fold.max()) + 1 if self.fold.size else 0

    def test_rows(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.fold == k)

    def split(self, k: int) -> Split:
        test = self.fold == k
        held = [] if self.by == "rows" else sorted({_label(u) for u in self.unit[test]})
        return Split(np.flatnonzero(~test), np.flatnonzero(test), self.by, held)


def _label(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def no_folds(data: TrainingData) -> Folds:
    return Folds("none", np.full(data.rows, -1), np.arange(data.rows), "row", 0.0)


def label_folds(labels: np.ndarray, units: np.ndarray, by: str, unit_name: str) -> Folds:
    """One fold per distinct label, a value or a row of values: leave one label out. For
    a covariate model, `label_folds(covariates, groups, "condition", "material")` leaves
    one tested condition out per fold, scored by material."""
    labels = np.asarray(labels)
    distinct, fold = np.unique(labels, axis=0 if labels.ndim == 2 else None,
                               return_inverse=True)
    return Folds(by, fold.reshape(-1), np.asarray(units), unit_name, 1.0 / len(distinct))


def held_out_plans(data: TrainingData, folds: int | None, holdout: float, seed: int
                   ) -> dict[str, Folds]:
    """The held-out fits of a version, by the metrics section each plan becomes:
    `held_out` (folds of materials, `plan_folds`) and, for a covariate model,
    `held_out_conditions` (`condition_folds`).

    Given `folds` K >= 2: K folds of materials and up to K conditions left out. Not given
    (None): the most fits whose training rows stay within HELD_OUT_ROWS, at most
    MAX_FOLDS of each; a covariate model gives half of them to leaving conditions out,
    which only it can be asked about. The materials are dealt into MAX_FOLDS folds
    whatever the budget, and as many of them fitted as it allows: every held-out fit
    trains on (MAX_FOLDS - 1) / MAX_FOLDS of the materials, as near the served fit as
    with all folds (two folds of half the materials each scored fits of half the data,
    on 20 materials 95% coverage 0.762 against 0.952 with five)."""
    if folds is not None or holdout <= 0:
        plans = {"held_out": plan_folds(data, 0 if folds is None else folds, holdout, seed)}
        conditions = condition_folds(data, folds if folds and folds >= 2 and holdout > 0
                                     else 0, seed)
    else:
        probe = condition_folds(data, MAX_FOLDS, seed)
        budget = HELD_OUT_ROWS // 2 if probe else HELD_OUT_ROWS
        # Rows are counted as the network fits them: dense curves thinned
        # (training.thinning), by about the same share in every fold.
        network = network_rows(data.x, data.groups, data.covariates)
        share = 1.0 if network is None else network.size / data.rows
        each = max(share * data.rows * (MAX_FOLDS - 1) / MAX_FOLDS, 1.0)  # per fold fit
        fits = max(1, min(MAX_FOLDS, int(budget // each)))
        material = (plan_folds(data, 1, holdout, seed) if fits == 1
                    else first_folds(plan_folds(data, MAX_FOLDS, holdout, seed), fits))
        plans = {"held_out": material}
        conditions = None
        if probe:  # each held-out fit trains on the rows its fold does not hold out
            used = share * (material.count * data.rows - np.count_nonzero(material.fold >= 0))
            per_condition = share * (data.rows - np.count_nonzero(probe.fold >= 0) / probe.count)
            conditions = condition_folds(
                data, min(MAX_FOLDS, int((HELD_OUT_ROWS - used) // per_condition)), seed)
    if conditions is not None:
        plans["held_out_conditions"] = conditions
    return plans


def plan_folds(data: TrainingData, folds: int, holdout: float, seed: int) -> Folds:
    """`folds` >= 2: K folds by material (by row without a material column), K at most the
    number of materials (rows); 1: the single split `holdout_split`; 0, or `holdout` 0:
    nothing held out. Fewer than 3 materials split by rows; fewer than 10 rows, not at
    all (as `holdout_split`)."""
    if folds <= 0 or holdout <= 0:
        return no_folds(data)
    if folds == 1:
        return _single(data, holdout_split(data, holdout, seed), holdout)
    rng = np.random.default_rng(seed)
    if data.groups is not None and np.unique(data.groups).size >= 3:
        groups = _by_condition(data, rng.permutation(np.unique(data.groups)))
        count = min(folds, groups.size)
        fold_of = dict(zip(groups.tolist(), np.arange(groups.size) % count, strict=True))
        fold = np.array([fold_of[g] for g in data.groups.tolist()])
        return Folds("group", fold, data.groups, "material", 1.0 / count)
    if data.rows < 10:
        return no_folds(data)
    count = min(folds, data.rows)
    fold = np.empty(data.rows, dtype=int)
    fold[rng.permutation(data.rows)] = np.arange(data.rows) % count
    return Folds("rows", fold, np.arange(data.rows), "row", 1.0 / count)


def _by_condition(data: TrainingData, groups: np.ndarray) -> np.ndarray:
    """`groups` (in random order) sorted by their mean covariates, ties kept in that order:
    dealt round-robin, the materials of one condition go to different folds, so no fold's
    fit loses every material at a condition (three specimens at each of four temperatures
    dealt at random left some fold fits one or none at a temperature, and the held-out
    scores described fits far worse than the served one). Without covariates: unchanged."""
    if data.covariates is None:
        return groups
    means = pd.DataFrame(data.covariates).groupby(data.groups).mean().loc[groups].to_numpy()
    return groups[np.lexsort(means.T[::-1])]


def condition_folds(data: TrainingData, count: int, seed: int) -> Folds | None:
    """Leave tested conditions out, one per fit, scored by material: up to `count` fits,
    each without every curve at one interior condition (chosen at random, `seed`, when
    there are more), scored on those curves.

    A condition is a combination of the covariates that vary within a material (the
    temperature and rate a compound was tested at); covariates fixed per material (its
    filler fraction) are its properties, held out with it by the folds of materials.
    Interior conditions lie strictly inside the tested range of every such covariate, so
    each fit answers between tested conditions, as a user asking for an untested one
    does. None without covariates, materials, a condition that varies within a material
    or an interior condition, and with `count` 0."""
    if data.covariates is None or data.groups is None or count < 1:
        return None
    varying = [j for j in range(data.covariates.shape[1])
               if pd.Series(data.covariates[:, j]).groupby(data.groups).nunique().max() > 1]
    if not varying:
        return None
    values = data.covariates[:, varying]
    conditions, inverse = np.unique(values, axis=0, return_inverse=True)
    inside = np.all((conditions > values.min(axis=0)) & (conditions < values.max(axis=0)),
                    axis=1)
    interior = np.flatnonzero(inside)
    if interior.size == 0:
        return None
    if interior.size > count:
        interior = np.sort(np.random.default_rng(seed).choice(interior, count, replace=False))
    fold_of = np.full(len(conditions), -1)
    fold_of[interior] = np.arange(interior.size)
    columns = [data.covariate_columns[j] for j in varying]
    names = tuple(", ".join(f"{c.name}={v:g} {c.unit}"
                            for c, v in zip(columns, conditions[i], strict=True))
                  for i in interior)
    return Folds("condition", fold_of[inverse.reshape(-1)], data.groups, "material",
                 1.0 / len(conditions), names)


def first_folds(folds: Folds, count: int) -> Folds:
    """`folds` with only its first `count` folds fitted: the other folds' rows only train.
    Each fit holds out as much as before; fewer units are scored."""
    if folds.count <= count:
        return folds
    return replace(folds, fold=np.where(folds.fold < count, folds.fold, -1))


def _single(data: TrainingData, split: Split, fraction: float) -> Folds:
    fold = np.full(data.rows, -1)
    fold[split.test] = 0
    if split.by == "group":
        return Folds("group", fold, data.groups, "material", fraction)
    return Folds(split.by, fold, np.arange(data.rows), "row", fraction)


def split_section(folds: Folds, seed: int) -> dict[str, Any]:
    """The manifest's `metrics.split`: how the held-out fits divided the data."""
    held = folds.fold >= 0
    groups = ([str(g) for g in sorted({_label(u) for u in folds.unit[held]})]
              if folds.by == "group" else [])
    return {"by": folds.by, "folds": folds.count, "fraction": folds.fraction, "seed": seed,
            "test_rows": int(np.count_nonzero(held)), "held_out_groups": groups}


def held_out_section(folds: Folds, results: list[dict[str, Any]],
                     y_scale: float | None) -> dict[str, Any]:
    """The scores of every fold's held-out rows, each by its own fold's fit, pooled; their
    spread over units; and each fold's own scores. `results[k]` is fold k's
    `training.pipeline.held_out_fit` answer."""
    points = calibration.Pointwise.concatenate([r["pointwise"] for r in results])
    units = np.concatenate([folds.unit[folds.test_rows(k)] for k in range(folds.count)])
    section = calibration.summarise(points, y_scale)
    curves = [r["metrics"]["curves"] for r in results if r["metrics"].get("curves")]
    if curves:
        section["curves"] = curve_metrics.pool(curves)
    curve = section["calibration_curve"]
    bounds = [spread.fraction_interval(np.abs(points.pit - 0.5) <= level / 2, units)
              for level in curve["nominal"]]
    curve["low_95"] = [round(low, 4) for low, _ in bounds]
    curve["high_95"] = [round(high, 4) for _, high in bounds]
    section["spread"] = {
        "unit": folds.unit_name, "units": int(np.unique(units).size), "folds": folds.count,
        "nlpd": spread.mean_spread(-points.log_predictive, units),
        "crps": spread.mean_spread(points.crps, units),
        "coverage": {key: spread.fraction_spread(np.abs(points.pit - 0.5) <= float(key) / 2,
                                                 units)
                     for key in section["coverage"]},
    }
    section["folds"] = [_fold_entry(folds, k, result) for k, result in enumerate(results)]
    return section


def held_out_folds(data: TrainingData, folds: Folds, results: list[dict[str, Any]]
                   ) -> list[HeldOutFold]:
    """Each fold's held-out rows with its fit's draws there, for `training.widening`."""
    return [HeldOutFold(data.y[folds.test_rows(k)], result["draws"],
                        folds.unit[folds.test_rows(k)])
            for k, result in enumerate(results)]


def _fold_entry(folds: Folds, k: int, result: dict[str, Any]) -> dict[str, Any]:
    """One fold's own scores, as its fit alone would have stored them."""
    metrics = result["metrics"]
    held = [folds.names[k]] if folds.names else [str(g) for g in folds.split(k).held_out_groups]
    entry = {"fold": k + 1, "held_out": held,
             "rows": metrics["rows"], "train_rows": result["fit"]["train_rows"],
             "wall_time_s": result["fit"]["wall_time_s"], "nlpd": metrics["nlpd"],
             "crps": metrics["crps"], "coverage": metrics["coverage"],
             "miscalibration_area": metrics["miscalibration_area"]}
    if metrics.get("curves"):
        entry["curves"] = metrics["curves"]
    return entry


def summary_parts(held: dict[str, Any], what: str = "held-out") -> list[str]:
    """A held-out section's headline as text: what was held out (with its materials and
    folds), then NLPD and CRPS with their standard errors and the 95% coverage with its
    95% interval; without a spread (stored before folds), the scores alone."""
    spread = held.get("spread")
    if not spread:
        return [what, f"NLPD {held['nlpd']:.3f}", f"CRPS {held['crps']:.4f}",
                f"95% coverage {held['coverage']['0.95']:.3f}"]

    def se(key: str, spec: str) -> str:
        value = spread[key]["se"]
        return "" if value is None else f" ± {value:{spec}}"

    coverage = spread["coverage"]["0.95"]
    folds = f"{spread['folds']} fold{'s' if spread['folds'] != 1 else ''}"
    return [f"{what} ({spread['units']} {spread['unit']}s in {folds})",
            f"NLPD {held['nlpd']:.3f}{se('nlpd', '.3f')}",
            f"CRPS {held['crps']:.4f}{se('crps', '.4f')}",
            f"95% coverage {held['coverage']['0.95']:.3f} "
            f"[{coverage['low_95']:.3f}, {coverage['high_95']:.3f}]"]
