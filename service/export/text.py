"""CSV and JSON renderings of an export table.

CSV: '#' comment lines (header_lines), one line of column names, then one row per strain;
numbers with 17 significant digits, so they parse back to the same doubles.
JSON: the same columns as arrays under the same names, with the header as fields, and
with `form=` the fitted cards' constants (`cards`; over a covariate, a row of constants
per value).

A model with covariates gets one column per covariate before the strain, holding each
row's condition: one block of rows for a table at one condition, one block per value for
tables over a covariate (all blocks on the same strain grid).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson

from service.export.card_rows import Cards, card_dicts
from service.export.conditions import Condition, OverTables
from service.export.fit import TARGET_ERROR
from service.export.header import ExportMeta, header_lines
from service.export.table import ExportTable


def _blocks(meta: ExportMeta, table: ExportTable
            ) -> tuple[list[str], list[tuple[Condition | None, ExportTable]]]:
    """(covariate column names, [(condition, table) per block of rows])."""
    condition = meta.condition
    if condition is None:
        return [], [(None, table)]
    if isinstance(condition, Condition):
        return list(condition.names), [(condition, table)]
    return (list(condition.conditions[0].names),
            list(zip(condition.conditions, condition.tables, strict=True)))


def column_names(table: ExportTable, covariates: list[str] | None = None) -> list[str]:
    return [*(covariates or []), "strain", *table.columns]


def _columns(blocks: list[tuple[Condition | None, ExportTable]]) -> list[np.ndarray]:
    """Every column (covariates, strain, values) over all blocks, in column order."""
    parts = [[*(np.full(t.points, v) for v in (c.values if c else ())), t.strain,
              *t.columns.values()] for c, t in blocks]
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def to_csv(meta: ExportMeta, table: ExportTable) -> bytes:
    out = io.StringIO()
    for line in header_lines(meta, table):
        out.write(f"# {line}\n")
    covariates, blocks = _blocks(meta, table)
    names = column_names(blocks[0][1], covariates)
    out.write(",".join(names) + "\n")
    np.savetxt(out, np.column_stack(_columns(blocks)), fmt="%.17g", delimiter=",")
    return out.getvalue().encode("ascii")


def to_json_dict(meta: ExportMeta, table: ExportTable,
                 cards: Cards | None = None) -> dict[str, Any]:
    d = meta.definitions
    covariates, blocks = _blocks(meta, table)
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
    }
    if meta.condition is not None:
        first = blocks[0][0]
        assert first is not None
        result["covariates"] = [{"name": n, "unit": u}
                                for n, u in zip(first.names, first.units, strict=True)]
        result["over"] = (meta.condition.over if isinstance(meta.condition, OverTables)
                          else None)
        result["conditions"] = [
            {**c.as_dict(), "max_interpolation_error": t.max_interpolation_error,
             "unstable_strain_ranges": [r.as_dict() for r in t.unstable_strain_ranges]}
            for c, t in blocks if c is not None]
    names = column_names(blocks[0][1], covariates)
    result["columns"] = names
    result.update(zip(names, _columns(blocks), strict=True))
    if cards is not None:
        # Fitted hyperelastic forms (docs/export.md): constants a Python solver can use.
        result["cards"] = card_dicts(meta, cards)
        result["card_target_error"] = TARGET_ERROR
    return result


def to_json(meta: ExportMeta, table: ExportTable, cards: Cards | None = None) -> bytes:
    return orjson.dumps(to_json_dict(meta, table, cards), option=orjson.OPT_SERIALIZE_NUMPY)
