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
"""

from __future__ import annotations

from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable

DEFAULT_FIRST_CURVE_ID = 1000
# LCID is an I10 field.
MAX_CURVE_ID = 10**10 - 1
TITLE_WIDTH = 80


def curve_ids(table: ExportTable, first: int) -> dict[str, int]:
    return {column: first + k for k, column in enumerate(table.stress_curves)}


def _field20(value: float) -> str:
    # 13 significant digits in a 20-character E field; 3-digit exponents still fit.
    text = f"{value:20.12e}"
    assert len(text) == 20, text
    return text


def to_lsdyna(meta: ExportMeta, table: ExportTable,
              first_curve_id: int = DEFAULT_FIRST_CURVE_ID) -> bytes:
    d = meta.definitions
    strain = d.nominal_strain(table.strain)
    ids = curve_ids(table, first_curve_id)
    lines = ["*KEYWORD"]
    lines += [f"$ {line}" for line in header_lines(meta, table)]
    lines += [
        f"$ one *DEFINE_CURVE per curve: abscissa nominal strain [{d.input_unit}], "
        f"ordinate nominal stress [{d.output_unit}]",
        f"$ {d.describe()}",
        "$ curve ids: " + ", ".join(f"{column}={lcid}" for column, lcid in ids.items()),
    ]
    unstable = {r.curve for r in table.unstable_strain_ranges}
    for column, lcid in ids.items():
        stress = d.nominal_stress(table.columns[column], table.strain)
        title = f"{meta.model} v{meta.version} {column}"
        if column in unstable:
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
    lines.append("*END")
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")
