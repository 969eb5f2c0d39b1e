"""Abaqus input-file fragment: one material per exported curve, Marlow hyperelasticity
from uniaxial test data (Abaqus Keywords Guide: *MATERIAL, *HYPERELASTIC, *UNIAXIAL TEST
DATA; Analysis User's Guide, input syntax rules).

    ** comment lines (two stars in columns 1-2)
    *MATERIAL, NAME=<label>
    *HYPERELASTIC, MARLOW              (no data lines with MARLOW)
    *UNIAXIAL TEST DATA
    <nominal stress>, <nominal strain>  (one data line per point)

A Marlow data line is: nominal stress, nominal strain, then optional nominal lateral
strain, temperature and field variables. A table at one condition (or of a model without
covariates) depends on none of those, so each line has the first two entries only: Abaqus
then takes the material as incompressible (Standard) or uses its default compressibility
(Explicit), with no temperature dependence.
With `form=` the fragment holds fitted forms instead (service.export.cards).
Tension and compression are both allowed, compression as negative values;
Marlow needs the nominal strains and stresses in ascending order, so a curve listed in
unstable_strain_ranges is refused by Abaqus (a comment above that material says so).

Tables over a covariate (conditions.OverTables) put its value in the data lines' own
column, one block of lines per value: the temperature (4th entry) when the covariate is a
temperature, else the first field variable (5th entry, with DEPENDENCIES=1). The 3rd entry,
the nominal lateral strain, is then left empty, which the Keywords Guide allows only with
the POISSON parameter on *HYPERELASTIC: the writer sets POISSON=0.5, the incompressibility
Abaqus/Standard assumes for the two-entry lines.
"""

from __future__ import annotations

from service.export.card_rows import Cards, card_lines
from service.export.cards import wrap_comments
from service.export.conditions import OverTables
from service.export.header import ExportMeta, header_lines
from service.export.labels import material_label
from service.export.table import ExportTable

# The Poisson's ratio written with a temperature or field-variable column (see above).
OVER_POISSON = 0.5


def fitted_file(meta: ExportMeta, table: ExportTable, cards: Cards, solver: str) -> bytes:
    """An input-file fragment of fitted *HYPERELASTIC cards (the same syntax for CalculiX
    and Abaqus), one *MATERIAL per curve."""
    d = meta.definitions
    lines = wrap_comments([
        *header_lines(meta, table),
        f"{solver} fragment for *INCLUDE: one *MATERIAL per curve (mean, quantiles, "
        "curves), a fitted hyperelastic form each; assign one with *SOLID SECTION, "
        "ELSET=..., MATERIAL=<name>.",
        f"Fitted to nominal stress [{d.output_unit}] against nominal strain "
        f"[{d.input_unit}] on the grid above; {d.describe()}.",
        *_temperature_lines(meta),
    ])
    lines += card_lines(meta, table, cards)
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _temperature_lines(meta: ExportMeta) -> list[str]:
    """Over a temperature: how the analysis selects a card's rows."""
    condition = meta.condition
    if not isinstance(condition, OverTables):
        return []
    return [f"Each card: one row of constants per {condition.over} [{condition.over_unit}] "
            "in its temperature column. Give the analysis its temperatures in the same unit "
            "(*INITIAL CONDITIONS, TYPE=TEMPERATURE, and *TEMPERATURE in a step): CalculiX "
            "takes the first row's constants when no temperature is defined."]


def to_abaqus(meta: ExportMeta, table: ExportTable, cards: Cards | None = None) -> bytes:
    """Marlow test data by default (over a covariate: its column); fitted forms when
    `cards` are given."""
    if cards is not None:
        return fitted_file(meta, table, cards, "Abaqus")
    d = meta.definitions
    over = meta.condition if isinstance(meta.condition, OverTables) else None
    lines = [f"** {line}" for line in header_lines(meta, table)]
    lines += [
        "** Abaqus fragment: one *MATERIAL per curve (mean, quantiles, curves), Marlow "
        "hyperelasticity from uniaxial test data.",
        f"** Data lines: nominal stress [{d.output_unit}], nominal strain "
        f"[{d.input_unit}]{_over_columns(over)}; {d.describe()}.",
    ]
    blocks = (list(zip(over.values, over.tables, strict=True)) if over is not None
              else [(None, table)])
    unstable = {r.curve for _, block in blocks for r in block.unstable_strain_ranges}
    for column in table.stress_curves:
        lines.append(f"** curve {column}")
        if column in unstable:
            lines.append("** WARNING: this curve's stress does not rise everywhere "
                         "(unstable_strain_ranges); Marlow needs ascending stresses.")
        lines += [f"*MATERIAL, NAME={material_label(meta.model, meta.version, column)}",
                  "*HYPERELASTIC, MARLOW" + (f", POISSON={OVER_POISSON}" if over else ""),
                  "*UNIAXIAL TEST DATA" + (", DEPENDENCIES=1" if over and not
                                           over.in_temperature else "")]
        for value, block in blocks:
            strain = d.nominal_strain(block.strain)
            stress = d.nominal_stress(block.columns[column], block.strain)
            tail = "" if over is None or value is None else _tail(over, value)
            lines += [f"{s!r}, {e!r}{tail}"
                      for s, e in zip(stress.tolist(), strain.tolist(), strict=True)]
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _over_columns(over: OverTables | None) -> str:
    if over is None:
        return ""
    where = "temperature" if over.in_temperature else "first field variable"
    return (f", empty lateral strain (POISSON={OVER_POISSON} instead), {where}: "
            f"{over.over} [{over.over_unit}]; one block of lines per value")


def _tail(over: OverTables, value: float) -> str:
    """The entries after stress and strain: empty lateral strain, then the temperature,
    or an empty temperature and the first field variable."""
    return f", , {value!r}" if over.in_temperature else f", , , {value!r}"
