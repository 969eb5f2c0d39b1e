"""CalculiX (2.20) input-file fragment: one *MATERIAL per exported curve with a fitted
*HYPERELASTIC form (service.export.cards), ready for *INCLUDE.

CalculiX reads Abaqus-style input but has no Marlow form and no test-data keywords, so a
curve has to reach it as the constants of a strain-energy form. The file is the same
syntax Abaqus reads; only the header line names the solver. Over a temperature covariate
each card holds one row of constants per temperature (service.export.card_rows).
"""

from __future__ import annotations

from service.export.abaqus import fitted_file
from service.export.card_rows import Cards
from service.export.header import ExportMeta
from service.export.table import ExportTable


def to_calculix(meta: ExportMeta, table: ExportTable, cards: Cards) -> bytes:
    return fitted_file(meta, table, cards, "CalculiX 2.20")
