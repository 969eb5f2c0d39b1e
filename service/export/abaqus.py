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
dependence.
With `form=` the fragment holds fitted forms instead (service.export.cards).
Tension and compression are both allowed, compression as negative values;
Marlow needs the nominal strains and stresses in ascending order, so a curve listed in
unstable_strain_ranges is refused by Abaqus (a comment above that material says so).
"""

from __future__ import annotations

from service.export.cards import material_lines, wrap_comments
from service.export.fit import Card
from service.export.header import ExportMeta, header_lines
from service.export.labels import material_label
from service.export.table import ExportTable


def fitted_file(meta: ExportMeta, table: ExportTable, cards: list[Card], solver: str) -> bytes:
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
    ])
    lines += material_lines(meta, table, cards)
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def to_abaqus(meta: ExportMeta, table: ExportTable, cards: list[Card] | None = None) -> bytes:
    """Marlow test data by default; fitted forms when `cards` are given."""
    if cards is not None:
        return fitted_file(meta, table, cards, "Abaqus")
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
