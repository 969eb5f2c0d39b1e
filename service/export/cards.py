"""Hyperelastic cards of an export: one fitted strain-energy form per stress column
(mean, each quantile, each curve), the lines a CalculiX or Abaqus input file holds for it,
and the same as JSON.

Each card states in comment lines what a user needs before trusting it: the fit error
(total SDs of the served answer), where it is Drucker-stable in each mode, whether that
covers the exported range, which deformation modes the uniaxial data determine and which
it extrapolates to, and how its D terms were set.

Card layouts (CalculiX 2.20 *HYPERELASTIC, the same in Abaqus): the deviatoric constants
in card order, then D1..DN, at most 8 values per line (OGDEN N=3 and POLYNOMIAL N=3 take
two lines). CalculiX reads at most 132 characters a line and each value from the first 20
characters of its field, so every number has 9 significant digits (15 characters) and the
values are separated by a bare comma (8 values: 127 characters); comments are wrapped.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from service.export import forms
from service.export.fit import SCAN, TARGET_ERROR, Card, Curve, Volumetric, make_card
from service.export.header import ExportMeta
from service.export.labels import material_label
from service.export.table import ExportTable

# Cards fitted per request: each takes a few hundred milliseconds (docs/export.md).
MAX_CARDS = 256
# CalculiX reads 132 characters of a line.
MAX_LINE = 132
_PER_LINE = 8


def curves_of(meta: ExportMeta, table: ExportTable) -> list[Curve]:
    """The stress columns as nominal stress against stretch (what the forms give)."""
    d = meta.definitions
    stretch = 1.0 + d.nominal_strain(table.strain)
    sd = d.nominal_stress(table.columns["total_sd"], table.strain)
    return [Curve(column, stretch, d.nominal_stress(table.columns[column], table.strain), sd)
            for column in table.stress_curves]


def fit_cards(meta: ExportMeta, table: ExportTable, form: str, volumetric: Volumetric,
              stable_range: tuple[float, float] | None = None) -> list[Card]:
    return [make_card(curve, form, volumetric, stable_range)
            for curve in curves_of(meta, table)]


def number(value: float) -> str:
    return f"{value:.8e}"  # the precision fit.written rounds to


def _strains(low: float, high: float) -> str:
    return f"{low:.3g} to {high:.3g}"


def _zero_strain_error(card_curve: Curve) -> float | None:
    """|stress at zero strain| / SD there: no card (zero stress at zero strain) can be
    closer than this to a curve that does not pass through the origin."""
    stretch = card_curve.stretch
    if not stretch[0] <= 1.0 <= stretch[-1]:
        return None
    stress = float(np.interp(1.0, stretch, card_curve.stress))
    return abs(stress) / float(np.interp(1.0, stretch, card_curve.sd))


def modes_statement(low: float, high: float, form: forms.Form) -> list[str]:
    """Which deformation modes the uniaxial data from stretch `low` to `high` determine.
    A uniaxial state at stretch l is the equibiaxial state at l^-1/2: compression data
    cover equibiaxial tension and tension data equibiaxial compression; no planar state
    is a uniaxial one."""
    lines = [f"modes: uniaxial {_strains(low - 1, high - 1)} fitted; equibiaxial "
             f"{_strains(high ** -0.5 - 1, low ** -0.5 - 1)} is the same deformation as the "
             "fitted uniaxial data;",
             "  extrapolated: planar at every strain (no planar state is uniaxial) and every "
             "mode beyond these strains"]
    if low >= 1.0:
        lines.append("  tension only: an I2 dependence is not identified from uniaxial "
                     "tension alone; " + ("this form's I2 terms rest on the curve's shape"
                                          if form.uses_i2 else "this form depends on I1 "
                                          "only") + "; a compression branch would help")
    return lines


def range_text(card: Card, curve: Curve) -> str:
    """What the card's stability was checked over, in words."""
    low, high = float(curve.stretch[0]), float(curve.stretch[-1])
    own = (min(low, 1.0) - 1.0, max(high, 1.0) - 1.0)
    return ("the exported range" if card.stable_range == own else
            f"nominal strains {_strains(*card.stable_range)} (stable_strain_min/max)")


def comment_lines(card: Card, label: str, curve: Curve, unit: str) -> list[str]:
    over = range_text(card, curve)
    how = (f"form=auto: the smallest fit error among the forms Drucker-stable over {over}"
           if card.chosen == "auto" else "form asked for")
    if card.chosen == "auto" and not any(stable for _, stable in card.candidates.values()):
        how = f"form=auto: NO form is Drucker-stable over {over}; smallest error"
    unmet = "no stable form reaches it" if card.chosen == "auto" else "not met"
    return [f"card {label} ({card.column}): {card.form.keyword} ({how})",
            *fit_lines(card, curve, unmet),
            *modes_statement(float(curve.stretch[0]), float(curve.stretch[-1]), card.form),
            volumetric_line(card, unit)]


def fit_lines(card: Card, curve: Curve, unmet: str) -> list[str]:
    """The card's fit error against the target (`unmet`: why, when it is missed), its
    Drucker-stable strains per mode and whether they cover the range checked."""
    low, high = float(curve.stretch[0]), float(curve.stretch[-1])
    over = range_text(card, curve)
    lines = [f"fit error: {card.fit_error:.3g} total SD (largest |card - model|, nominal "
             f"uniaxial strain {_strains(low - 1, high - 1)}, this card with its D terms)"]
    if card.meets_target:
        lines.append(f"target {TARGET_ERROR:g} total SD: met")
    else:
        floor = _zero_strain_error(curve)
        reason = unmet
        if floor is not None and floor > TARGET_ERROR:
            reason += (f"; this curve's own stress at zero strain is {floor:.3g} total SD, "
                       "and a hyperelastic card has none there")
        lines.append(f"target {TARGET_ERROR:g} total SD: NOT MET: {reason}")
    scanned = [f"{mode} " + (_strains(*span) if span else "unstable at zero strain")
               for mode, span in card.stable.items()]
    lines.append(f"Drucker-stable nominal strains (scanned {_strains(*SCAN)}): "
                 + "; ".join(scanned))
    lines.append((f"stable over {over}: yes (" if card.stable_over_range else
                  f"WARNING: NOT stable over {over} (") + mode_ranges(card.stable_range) + ")")
    return lines


def mode_ranges(stable_range: tuple[float, float]) -> str:
    """The strains of each mode within the deformations of a uniaxial strain range."""
    box = forms.stretch_box(1 + stable_range[0], 1 + stable_range[1])
    return "; ".join(f"{mode} {_strains(*(np.array(forms.mode_range(mode, box)) - 1))}"
                     for mode in forms.MODES)


def volumetric_line(card: Card, unit: str) -> str:
    poisson = (3 * card.bulk_modulus - 2 * card.shear_modulus) / (
        2 * (3 * card.bulk_modulus + card.shear_modulus))
    return (f"volumetric: D1 = 2/K0 = {card.d[0]:.6g} [1/{unit}], K0 = "
            f"{card.bulk_modulus:.6g} {unit}, mu0 = {card.shear_modulus:.6g} {unit}, "
            f"initial Poisson ratio {poisson:.5f}"
            + ("; WARNING: mu0 = 0, the card has no initial stiffness (with bulk_ratio, K0 "
               "is scaled to the curve's largest secant shear modulus, max|stress| / (3 "
               "max|strain|))" if card.shear_modulus == 0 else "")
            + ("; D2.. = D1 (CalculiX would replace a zero D by its own default)"
               if len(card.d) > 1 else ""))


def wrap_comments(lines: list[str]) -> list[str]:
    """'** ' comment lines of at most MAX_LINE characters (continuations indented)."""
    out: list[str] = []
    for line in lines:
        out += textwrap.wrap(line, MAX_LINE, initial_indent="** ", subsequent_indent="**   ",
                             break_on_hyphens=False)
    return out


def keyword_lines(card: Card) -> list[str]:
    """*HYPERELASTIC and its data line(s): constants, D terms."""
    return [f"*HYPERELASTIC, {card.form.keyword}", *data_lines(card)]


def data_lines(card: Card, temperature: float | None = None) -> list[str]:
    """One row of *HYPERELASTIC data: constants, D terms, (temperature), at most 8 values
    a line (the manual's line pairs of OGDEN N=3 and POLYNOMIAL N=3)."""
    values = [*card.values, *card.d]
    if temperature is not None:
        values.append(temperature)
    text = [number(v) for v in values]
    return [",".join(text[k:k + _PER_LINE]) for k in range(0, len(text), _PER_LINE)]


def material_lines(meta: ExportMeta, table: ExportTable, cards: list[Card]) -> list[str]:
    """One *MATERIAL per card, each after its comment lines ('**')."""
    lines: list[str] = []
    unit = meta.definitions.output_unit
    for card, curve in zip(cards, curves_of(meta, table), strict=True):
        label = material_label(meta.model, meta.version, card.column)
        lines += wrap_comments(comment_lines(card, label, curve, unit))
        lines += [f"*MATERIAL, NAME={label}", *keyword_lines(card)]
    return lines


def material_block(text: str, label: str) -> list[str]:
    """The *MATERIAL block of material `label` in an exported card file (its keyword and
    data lines, without the comment lines of the next card)."""
    lines = text.splitlines()
    start = lines.index(f"*MATERIAL, NAME={label}")
    stop = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("**")),
                len(lines))
    return lines[start:stop]


def card_dict(meta: ExportMeta, card: Card) -> dict[str, Any]:
    """A card as JSON: everything a Python solver needs to build the material."""
    return {
        "column": card.column,
        "material": material_label(meta.model, meta.version, card.column),
        "form": card.form.name,
        "keyword": card.form.keyword,
        "coefficients": dict(zip(card.form.coefficients, card.values, strict=True)),
        "d": list(card.d),
        "initial_shear_modulus": card.shear_modulus,
        "initial_bulk_modulus": card.bulk_modulus,
        "fit_error": card.fit_error,
        "meets_target": card.meets_target,
        "stable_strain_ranges": {mode: list(span) if span else None
                                 for mode, span in card.stable.items()},
        "stable_over_range": card.stable_over_range,
        "stable_range_checked": list(card.stable_range),
        "chosen": card.chosen,
        "candidates": {name: {"fit_error": error, "stable_over_range": stable}
                       for name, (error, stable) in card.candidates.items()},
    }
