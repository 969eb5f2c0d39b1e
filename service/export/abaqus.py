"""Abaqus input-file fragment: one material per exported curve, Marlow hyperelasticity
from uniaxial test data (Abaqus Keywords Guide: *MATERIAL, *HYPERELASTIC, *UNIAXIAL TEST
DATA; Analysis User's Guide, input syntax rules).

    ** comment lines (two stars in columns 1-2)
    *MATERIAL, NAME=<label>
    *HYPERELASTIC, MARLOW              (no data lines with MARLOW)
    *UNIAXIAL TEST DATA
    <nominal stress>, <nominal strain>  (one data line per point)

A Marlow data line is: nominal stress, nominal strain, then optional nominal lateral
strain, temperature and field variables. The model depends on none of those, so each line
has the first two entries only: Abaqus then takes the material as incompressible
(Standard) or uses its default compressibility (Explicit), with no temperature
dependence. Tension and compression are both allowed, compression as negative values;
Marlow needs the nominal strains and stresses in ascending order, so a curve listed in
unstable_strain_ranges is refused by Abaqus (a comment above that material says so).
"""

from __future__ import annotations

import re

from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable

# Keyword and data lines are limited to 256 characters; labels to 80.
MAX_LABEL = 80


def material_label(model: str, version: int, column: str) -> str:
    """<MODEL>_V<version>_<COLUMN>: letters, digits and underscores only (no quoting
    needed), starting with a letter; q0.05 -> Q0P05, curve_3 -> CURVE_3."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", model).upper()
    if not base[:1].isalpha():
        base = "M" + base
    suffix = f"_V{version}_" + column.upper().replace(".", "P").replace("-", "M")
    return base[: MAX_LABEL - len(suffix)] + suffix


def to_abaqus(meta: ExportMeta, table: ExportTable) -> bytes:
    d = meta.definitions
    strain = d.nominal_strain(table.strain)
    lines = [f"** {line}" for line in header_lines(meta, table)]
    lines += [
        "** Abaqus fragment: one *MATERIAL per curve (mean, quantiles, curves), Marlow "
        "hyperelasticity from uniaxial test data.",
        f"** Data lines: nominal stress [{d.output_unit}], nominal strain "
        f"[{d.input_unit}]; {d.describe()}.",
    ]
    unstable = {r.curve for r in table.unstable_strain_ranges}
    for column in table.stress_curves:
        stress = d.nominal_stress(table.columns[column], table.strain)
        lines.append(f"** curve {column}")
        if column in unstable:
            lines.append("** WARNING: this curve's stress does not rise everywhere "
                         "(unstable_strain_ranges); Marlow needs ascending stresses.")
        lines += [f"*MATERIAL, NAME={material_label(meta.model, meta.version, column)}",
                  "*HYPERELASTIC, MARLOW",
                  "*UNIAXIAL TEST DATA"]
        lines += [f"{s!r}, {e!r}"
                  for s, e in zip(stress.tolist(), strain.tolist(), strict=True)]
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")
