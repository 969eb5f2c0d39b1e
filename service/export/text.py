"""CSV and JSON renderings of an export table.

CSV: '#' comment lines (header_lines), one line of column names, then one row per strain;
numbers with 17 significant digits, so they parse back to the same doubles.
JSON: the same columns as arrays under the same names, with the header as fields, and
with `form=` the fitted cards' constants (`cards`).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson

from service.export.cards import card_dict
from service.export.fit import TARGET_ERROR, Card
from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable


def column_names(table: ExportTable) -> list[str]:
    return ["strain", *table.columns]


def to_csv(meta: ExportMeta, table: ExportTable) -> bytes:
    out = io.StringIO()
    for line in header_lines(meta, table):
        out.write(f"# {line}\n")
    names = column_names(table)
    out.write(",".join(names) + "\n")
    matrix = np.column_stack([table.strain, *table.columns.values()])
    np.savetxt(out, matrix, fmt="%.17g", delimiter=",")
    return out.getvalue().encode("ascii")


def to_json_dict(meta: ExportMeta, table: ExportTable,
                 cards: list[Card] | None = None) -> dict[str, Any]:
    d = meta.definitions
    result: dict[str, Any] = {
        "model": meta.model,
        "version": meta.version,
        "artifact_sha256": meta.artifact_sha256,
        "input_name": d.input_name, "input_unit": d.input_unit,
        "output_name": d.output_name, "output_unit": d.output_unit,
        "training_domain": list(meta.training_domain),
        "points": table.points,
        "strain_min": float(table.strain[0]),
        "strain_max": float(table.strain[-1]),
        "max_interpolation_error": table.max_interpolation_error,
        "interpolation_error_by_column": table.error_by_column,
        "unstable_strain_ranges": [r.as_dict() for r in table.unstable_strain_ranges],
        "quantile_levels": table.quantile_levels,
        "curves": len(table.curve_columns),
        "seed": table.seed,
        "columns": column_names(table),
        "strain": table.strain,
    }
    result.update(table.columns)
    if cards is not None:
        # Fitted hyperelastic forms (docs/export.md): constants a Python solver can use.
        result["cards"] = [card_dict(meta, card) for card in cards]
        result["card_target_error"] = TARGET_ERROR
    return result


def to_json(meta: ExportMeta, table: ExportTable, cards: list[Card] | None = None) -> bytes:
    return orjson.dumps(to_json_dict(meta, table, cards), option=orjson.OPT_SERIALIZE_NUMPY)
