"""LS-DYNA keyword deck: one load curve per exported curve (LS-DYNA Keyword User's
Manual: *KEYWORD, *DEFINE_CURVE_TITLE, *END).

    *KEYWORD
    $ comment lines ('$' in column 1)
    *DEFINE_CURVE_TITLE
    <title, up to 80 characters>
    card 1, eight 10-character fields: LCID SIDR SFA SFO OFFA OFFO DATTYP LCINT
    card 2 (repeated), two 20-character fields: A1 (abscissa) O1 (ordinate)
    *END

Fixed format throughout (no commas). Card 1 is written as LCID, SIDR=0 (curve used in the
transient analysis), SFA=SFO=1, OFFA=OFFO=0, DATTYP=0 (a general abscissa-ordinate
curve), LCINT blank (default discretisation), so the solver reads the points unscaled and
unshifted. Abscissa: nominal strain; ordinate: nominal stress, which *MAT_077's fit and
*MAT_181 take as "force versus change in gauge length" with a unit specimen.

Curve ids: first_curve_id for the mean, then one each for the quantiles in the order asked,
then the sample curves: mean = F, q_k = F + k, curve_j = F + len(quantiles) + j.

Tables over a covariate (conditions.OverTables; Keyword User's Manual, *DEFINE_TABLE): one
*DEFINE_TABLE_TITLE per exported curve, whose value cards (one 20-character field each,
ascending) are the covariate's values; the table's *DEFINE_CURVE_TITLEs, one per value,
follow it immediately in the same order, as the manual requires.

    *DEFINE_TABLE_TITLE
    <title>
    card 1, three 10-character fields: TBID SFA OFFA (written TBID, 1.0, 0.0)
    card 2 (repeated), one 20-character field: VALUE
    *DEFINE_CURVE_TITLE ... (one per value, ids TBID + 1, TBID + 2, ...)

Ids: the table of stress column c (mean = 0, then quantiles, then curves) is
TBID_c = F + c (m + 1) for m values; its curves are TBID_c + 1 ... TBID_c + m (tables and
curves share one id space).
"""

from __future__ import annotations

from service.export.conditions import OverTables
from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable

DEFAULT_FIRST_CURVE_ID = 1000
# LCID is an I10 field.
MAX_CURVE_ID = 10**10 - 1
TITLE_WIDTH = 80


def curve_ids(table: ExportTable, first: int, values: int = 0) -> dict[str, int]:
    """The id of each stress column's curve, or with `values` m > 0 of its table."""
    return {column: first + k * (values + 1 if values else 1)
            for k, column in enumerate(table.stress_curves)}


def last_id(columns: int, first: int, values: int = 0) -> int:
    """The largest id a deck of `columns` curves (tables over `values` values) uses."""
    return first + columns * (values + 1 if values else 1) - 1


def _field20(value: float) -> str:
    # 13 significant digits in a 20-character E field; 3-digit exponents still fit.
    text = f"{value:20.12e}"
    assert len(text) == 20, text
    return text


def to_lsdyna(meta: ExportMeta, table: ExportTable,
              first_curve_id: int = DEFAULT_FIRST_CURVE_ID) -> bytes:
    d = meta.definitions
    over = meta.condition if isinstance(meta.condition, OverTables) else None
    ids = curve_ids(table, first_curve_id, len(over.tables) if over else 0)
    lines = ["*KEYWORD"]
    lines += [f"$ {line}" for line in header_lines(meta, table)]
    if over is None:
        lines.append(f"$ one *DEFINE_CURVE per curve: abscissa nominal strain "
                     f"[{d.input_unit}], ordinate nominal stress [{d.output_unit}]")
    else:
        lines.append(f"$ one *DEFINE_TABLE per curve over {over.over} [{over.over_unit}], "
                     f"each followed by its {len(over.tables)} *DEFINE_CURVEs (ids table + "
                     f"1, ...): abscissa nominal strain [{d.input_unit}], ordinate nominal "
                     f"stress [{d.output_unit}]")
    lines += [f"$ {d.describe()}",
              f"$ {'table' if over else 'curve'} ids: "
              + ", ".join(f"{column}={lcid}" for column, lcid in ids.items())]
    for column, lcid in ids.items():
        title = f"{meta.model} v{meta.version} {column}"
        if over is None:
            lines += _curve(meta, table, column, lcid, title)
            continue
        lines += ["*DEFINE_TABLE_TITLE",
                  f"{title} over {over.over}"[:TITLE_WIDTH],
                  "$#    tbid       sfa      offa",
                  f"{lcid:>10d}{1.0:>10.1f}{0.0:>10.1f}",
                  "$#             value"]
        lines += [_field20(value) for value in over.values]
        for j, block in enumerate(over.tables):
            lines += _curve(meta, block, column, lcid + 1 + j, f"{title} {over.label(j)}")
    lines.append("*END")
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _curve(meta: ExportMeta, table: ExportTable, column: str, lcid: int,
           title: str) -> list[str]:
    """One *DEFINE_CURVE_TITLE of `column` (with its warning when it does not rise)."""
    d = meta.definitions
    strain = d.nominal_strain(table.strain)
    stress = d.nominal_stress(table.columns[column], table.strain)
    lines = []
    if column in {r.curve for r in table.unstable_strain_ranges}:
        lines.append(f"$ WARNING: curve {lcid} ({column}) does not rise everywhere "
                     "(unstable_strain_ranges)")
    lines += ["*DEFINE_CURVE_TITLE",
              title[:TITLE_WIDTH],
              "$#    lcid      sidr       sfa       sfo      offa      offo    dattyp",
              f"{lcid:>10d}{0:>10d}{1.0:>10.1f}{1.0:>10.1f}{0.0:>10.1f}{0.0:>10.1f}"
              f"{0:>10d}",
              "$#                a1                  o1"]
    lines += [_field20(e) + _field20(s)
              for e, s in zip(strain.tolist(), stress.tolist(), strict=True)]
    return lines
