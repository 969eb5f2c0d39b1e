"""Fitted cards over a covariate (`over=` with `format=calculix` or `form=`): per exported
column ONE card, its data lines one coefficient row per value of the covariate with the
value in the row's temperature column, the form Abaqus and CalculiX read (docs/export.md,
"Cards over a temperature").

    *MATERIAL, NAME=HOT_V1_MEAN
    *HYPERELASTIC, MOONEY-RIVLIN
    C10, C01, D1, 273.15          (constants, D terms, temperature; one row per value)
    C10, C01, D1, 296.15

Each row is fitted to the model's view at its condition, as a single card is, and states
its own fit error, stable range and volumetric terms. A card has one form, so every row
has the same form. Between rows the solvers interpolate every constant (and D) linearly
in temperature and keep the end rows' constants beyond them, so a card also states
whether the interpolated constants stay Drucker-stable (checked at a few points of each
interval) and how far, halfway between two rows, their stress strays from the mean of
the two rows' stresses (nowhere for the polynomial family, whose stress is linear in its
constants; Ogden's exponents and Arruda-Boyce's locking stretch are not). form=auto takes
the form with the smallest largest fit error over the rows among those stable at every
row and between them with that stray within the target (fit.choose), relaxing the
between-rows condition, then the rows' stability, when no form meets them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.export import forms
from service.export.cards import (
    card_dict,
    curves_of,
    data_lines,
    fit_lines,
    material_lines,
    modes_statement,
    number,
    range_text,
    volumetric_line,
    wrap_comments,
)
from service.export.conditions import OverTables
from service.export.fit import (
    TARGET_ERROR,
    Card,
    Curve,
    Volumetric,
    card_of,
    checked_range,
    choose,
    fit_candidates,
    stable_over,
)
from service.export.forms import FORMS
from service.export.header import ExportMeta
from service.export.labels import material_label
from service.export.table import ExportTable

# Where between two rows the interpolated constants are checked for stability.
_BETWEEN = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class RowCard:
    """One column's card over the covariate `over`: a Card per value, all of one form."""

    column: str
    over: str
    unit: str
    values: tuple[float, ...]  # ascending, one per row
    cards: tuple[Card, ...]
    # form -> (largest fit error over the rows, stable at every row and between them)
    candidates: dict[str, tuple[float, bool]]
    # (value, next value) of each interval where the interpolated constants are not
    # Drucker-stable over the range checked
    unstable_between: tuple[tuple[float, float], ...]
    # Largest |card halfway between two rows - mean of the rows' cards|, total SDs
    departure: float

    @property
    def form(self) -> forms.Form:
        return self.cards[0].form

    @property
    def chosen(self) -> str:
        return self.cards[0].chosen

    @property
    def fit_error(self) -> float:
        return max(card.fit_error for card in self.cards)

    def describe(self, index: int) -> str:
        """'temperature=273.15 K' for the index-th row."""
        return f"{self.over}={self.values[index]!r} {self.unit}"


Cards = list[Card] | list[RowCard]


def fit_row_cards(meta: ExportMeta, over: OverTables, form_name: str, volumetric: Volumetric,
                  stable_range: tuple[float, float] | None = None) -> list[RowCard]:
    """A RowCard per stress column of the tables over a covariate (ascending values)."""
    values = tuple(over.values)
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), "ascending rows"
    per_table = [curves_of(meta, table) for table in over.tables]
    cards = []
    for k, column in enumerate(over.tables[0].stress_curves):
        curves = [curves[k] for curves in per_table]
        fitted = [fit_candidates(curve, form_name, stable_range) for curve in curves]
        low, high = checked_range(curves[0], stable_range)
        between = {name: _between_ok(FORMS[name], [row[name].values for row in fitted],
                                     curves, low, high) for name in fitted[0]}
        name, candidates = choose(fitted, between)
        rows = tuple(card_of(curve, name, row, form_name, volumetric, stable_range)
                     for curve, row in zip(curves, fitted, strict=True))
        form, constants = rows[0].form, [row.values for row in rows]
        unstable = _unstable_between(form, constants, low, high)
        cards.append(RowCard(column, over.over, over.over_unit, values, rows, candidates,
                             tuple((values[i], values[i + 1]) for i in unstable),
                             _departure(form, constants, curves, [row.d for row in rows])))
    return cards


def _between_ok(form: forms.Form, rows: list[Any], curves: list[Curve], low: float,
                high: float) -> bool:
    """What form=auto asks between the rows: the interpolated constants Drucker-stable,
    and halfway between two rows within the target of the rows' mean stress."""
    return (not _unstable_between(form, rows, low, high)
            and _departure(form, rows, curves) <= TARGET_ERROR)


def _unstable_between(form: forms.Form, rows: list[Any], low: float, high: float
                      ) -> list[int]:
    """The intervals (index of their first row) where the linearly interpolated constants
    are not Drucker-stable over the stretches `low` to `high`. Drucker's matrix is linear
    in the polynomial family's constants, so there this never happens when both rows are
    stable; Ogden's exponents and Arruda-Boyce's locking stretch interpolate nonlinearly."""
    unstable = []
    for i in range(len(rows) - 1):
        a, b = np.asarray(rows[i], dtype=float), np.asarray(rows[i + 1], dtype=float)
        if not all(stable_over(form, (1 - t) * a + t * b, low, high) for t in _BETWEEN):
            unstable.append(i)
    return unstable


def _departure(form: forms.Form, rows: list[Any], curves: list[Curve],
               d: list[tuple[float, ...]] | None = None) -> float:
    """The largest |card with the constants (and `d`, when given; else incompressible)
    interpolated halfway between two rows - the mean of the two rows' stresses|, in total
    SDs (their mean): how far interpolating the constants strays from interpolating the
    stresses. Zero for the polynomial family (its stress is linear in the constants) but
    for the D terms' small part."""
    def stress(values: np.ndarray, terms: np.ndarray | None, stretch: np.ndarray
               ) -> np.ndarray:
        if terms is None:
            return forms.nominal_stress(form, values, stretch)
        return forms.compressible_uniaxial_stress(form, values, terms, stretch)

    worst = 0.0
    for i in range(len(rows) - 1):
        a, b = np.asarray(rows[i], dtype=float), np.asarray(rows[i + 1], dtype=float)
        da, db = (None, None) if d is None else (np.array(d[i]), np.array(d[i + 1]))
        half = None if da is None or db is None else 0.5 * (da + db)
        stretch = curves[i].stretch
        with np.errstate(all="ignore"):
            off = np.abs(stress(0.5 * (a + b), half, stretch) - 0.5 * (
                stress(a, da, stretch) + stress(b, db, stretch))) / (
                0.5 * (curves[i].sd + curves[i + 1].sd))
            value = float(np.max(off))
        worst = max(worst, value if np.isfinite(value) else np.inf)
    return worst


def row_comment_lines(card: RowCard, label: str, curves: list[Curve], unit: str) -> list[str]:
    """What the card states: its form and why, the temperature column, then per row the
    fit error, stable ranges and volumetric terms, the rows between, and the modes."""
    over = range_text(card.cards[0], curves[0])
    name = card.form.name
    if card.chosen != "auto":
        how = "form asked for"
    elif card.candidates[name][1]:
        how = ("form=auto: one form for every row, the smallest largest-row fit error among "
               f"the forms Drucker-stable over {over} at every row and between the rows, "
               f"whose interpolated stress there stays within {TARGET_ERROR:g} total SD of "
               "the rows'")
    elif all(row.candidates[name][1] for row in card.cards):
        how = (f"form=auto: NO form stays stable and within {TARGET_ERROR:g} total SD between "
               "the rows; the smallest largest-row fit error among the forms Drucker-stable "
               f"over {over} at every row")
    else:
        how = (f"form=auto: NO form is Drucker-stable over {over} at every row; smallest "
               "largest-row error")
    unmet = "no form stable at every row reaches it here" if card.chosen == "auto" \
        else "not met"
    values = ", ".join(f"{v!r}" for v in card.values)
    lines = [f"card {label} ({card.column}): {card.form.keyword} over {card.over} "
             f"[{card.unit}], {len(card.cards)} rows ({how})",
             f"data lines: constants, D terms, then the temperature: {card.over} [{card.unit}] "
             f"({values}), in the model's unit, so the analysis' temperatures must be in "
             f"{card.unit} too; between rows the solver interpolates each constant and D "
             "linearly in temperature, beyond the first and last row it keeps theirs"]
    for index, (row, curve) in enumerate(zip(card.cards, curves, strict=True)):
        lines.append(f"row {card.describe(index)}:")
        lines += [f"  {line}" for line in (*fit_lines(row, curve, unmet),
                                           volumetric_line(row, unit))]
    if len(card.cards) > 1:
        checked = "constants interpolated linearly, checked at 1/4, 1/2 and 3/4 of each interval"
        if card.unstable_between:
            where = "; ".join(f"{a!r} to {b!r}" for a, b in card.unstable_between)
            lines.append(f"between rows ({checked}): WARNING: the interpolated constants are "
                         f"NOT Drucker-stable over {over} for {card.over} {where}")
        else:
            lines.append(f"between rows ({checked}): Drucker-stable over {over}")
        lines.append(f"between rows: halfway between two rows the interpolated constants give "
                     f"{_departure_words(card.departure)}; the card is fitted at the rows only")
    low, high = float(curves[0].stretch[0]), float(curves[0].stretch[-1])
    return lines + modes_statement(low, high, card.form)


def _departure_words(departure: float) -> str:
    """The departure as the file states it; not finite where the interpolated constants
    leave the uniaxial stress undefined at some stretch (no volume makes the lateral
    stress zero there: unstable constants, which the solver cannot use either)."""
    if math.isfinite(departure):
        return (f"a stress up to {departure:.3g} total SD from the mean of the two rows' "
                "stresses")
    return "NO finite stress at some stretch (WARNING: the solver cannot use them there)"


def indistinct_row(values: list[float]) -> int | None:
    """The index of the first value written (9 significant digits) as its predecessor
    is: two rows at one temperature leave the solver's interpolation undefined."""
    text = [number(v) for v in values]
    return next((i for i in range(1, len(text)) if text[i] == text[i - 1]), None)


def card_lines(meta: ExportMeta, table: ExportTable, cards: Cards) -> list[str]:
    """One *MATERIAL per card after its comment lines: a single condition's cards
    (cards.material_lines), or cards over a covariate with a data row per value."""
    if not isinstance(meta.condition, OverTables):
        return material_lines(meta, table, cards)  # type: ignore[arg-type]
    per_table = [curves_of(meta, t) for t in meta.condition.tables]
    unit = meta.definitions.output_unit
    lines: list[str] = []
    for k, card in enumerate(cards):
        assert isinstance(card, RowCard)
        label = material_label(meta.model, meta.version, card.column)
        lines += wrap_comments(row_comment_lines(card, label, [c[k] for c in per_table], unit))
        lines += [f"*MATERIAL, NAME={label}", f"*HYPERELASTIC, {card.form.keyword}"]
        for value, row in zip(card.values, card.cards, strict=True):
            lines += data_lines(row, value)
    return lines


def card_dicts(meta: ExportMeta, cards: Cards) -> list[dict[str, Any]]:
    """The cards as JSON (cards.card_dict); over a covariate, one entry per column with
    its rows, each row the coefficients at one value of the covariate."""
    out = []
    for card in cards:
        if isinstance(card, Card):
            out.append(card_dict(meta, card))
            continue
        rows = []
        for value, row in zip(card.values, card.cards, strict=True):
            entry = card_dict(meta, row)
            for shared in ("column", "material", "form", "keyword", "chosen"):
                del entry[shared]
            rows.append({card.over: value, **entry})
        first = card_dict(meta, card.cards[0])
        out.append({
            **{key: first[key] for key in ("column", "material", "form", "keyword")},
            "over": card.over, "over_unit": card.unit,
            "fit_error": card.fit_error,
            "meets_target": all(row.meets_target for row in card.cards),
            "stable_over_range": all(row.stable_over_range for row in card.cards),
            "unstable_between": [list(pair) for pair in card.unstable_between],
            # null where it is not finite (_departure_words).
            "between_departure": card.departure if math.isfinite(card.departure) else None,
            "chosen": card.chosen,
            "candidates": {name: {"fit_error": error, "stable_over_range": stable}
                           for name, (error, stable) in card.candidates.items()},
            "rows": rows,
        })
    return out


