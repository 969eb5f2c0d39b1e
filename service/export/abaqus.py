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
(Explicit), with no temperature dependence. Tension and compression are both allowed,
compression as negative values; Marlow needs the nominal strains and stresses in ascending
order, so a curve listed in unstable_strain_ranges is refused by Abaqus (a comment above
that material says so).

Tables over a covariate (conditions.OverTables) put its value in the data lines' own
column, one block of lines per value: the temperature (4th entry) when the covariate is a
temperature, else the first field variable (5th entry, with DEPENDENCIES=1). The 3rd entry,
the nominal lateral strain, is then left empty, which the Keywords Guide allows only with
the POISSON parameter on *HYPERELASTIC: the writer sets POISSON=0.5, the incompressibility
Abaqus/Standard assumes for the two-entry lines.
"""

from __future__ import annotations

import re

from service.export.conditions import OverTables
from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable

# Keyword and data lines are limited to 256 characters; labels to 80.
MAX_LABEL = 80
# The Poisson's ratio written with a temperature or field-variable column (see above).
OVER_POISSON = 0.5


def material_label(model: str, version: int, column: str) -> str:
    """<MODEL>_V<version>_<COLUMN>: letters, digits and underscores only (no quoting
    needed), starting with a letter; q0.05 -> Q0P05, curve_3 -> CURVE_3."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", model).upper()
    if not base[:1].isalpha():
        base = "M" + base
    suffix = f"_V{version}_" + column.upper().replace(".", "P").replace("-", "M")
    return base[: MAX_LABEL - len(suffix)] + suffix


def is_temperature(name: str, unit: str) -> bool:
    """Whether a covariate goes into Abaqus' temperature column: named temperature (or
    temp_*, ...) or in kelvin or degrees Celsius."""
    return name.lower().startswith("temp") or unit in ("K", "degC", "C")


def to_abaqus(meta: ExportMeta, table: ExportTable) -> bytes:
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
                                           _in_temperature(over) else "")]
        for value, block in blocks:
            strain = d.nominal_strain(block.strain)
            stress = d.nominal_stress(block.columns[column], block.strain)
            tail = "" if value is None else _tail(over, value)
            lines += [f"{s!r}, {e!r}{tail}" for s, e in zip(stress.tolist(), strain.tolist(),
                                                             strict=True)]
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _in_temperature(over: OverTables) -> bool:
    return is_temperature(over.over, over.over_unit)


def _over_columns(over: OverTables | None) -> str:
    if over is None:
        return ""
    where = "temperature" if _in_temperature(over) else "first field variable"
    return (f", empty lateral strain (POISSON={OVER_POISSON} instead), {where}: "
            f"{over.over} [{over.over_unit}]; one block of lines per value")


def _tail(over: OverTables, value: float) -> str:
    """The entries after stress and strain: empty lateral strain, then the temperature,
    or an empty temperature and the first field variable."""
    return f", , {value!r}" if _in_temperature(over) else f", , , {value!r}"
