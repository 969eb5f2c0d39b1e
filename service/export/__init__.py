"""Export a model version as tables finite-element codes read directly (docs/export.md):
`table` computes the grid, its interpolation error and unstable ranges; `text` (CSV,
JSON), `abaqus` and `lsdyna` write it."""

from service.export.abaqus import to_abaqus
from service.export.conditions import Condition, OverTables, conditions_of, tables_over
from service.export.definitions import Definitions
from service.export.header import ExportMeta
from service.export.lsdyna import DEFAULT_FIRST_CURVE_ID, MAX_CURVE_ID, last_id, to_lsdyna
from service.export.table import (
    DEFAULT_MAX_ERROR,
    UNREACHABLE_POINTS,
    ExportTable,
    build_table,
    default_table,
    needed_points,
    unstable_ranges,
)
from service.export.text import to_csv, to_json

FORMATS = ("csv", "json", "abaqus", "lsdyna")
# The formats that write tables over a covariate (conditions.OverTables).
OVER_FORMATS = ("csv", "json", "abaqus", "lsdyna")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
               "abaqus": "text/plain; charset=utf-8", "lsdyna": "text/plain; charset=utf-8"}
EXTENSIONS = {"csv": "csv", "json": "json", "abaqus": "inp", "lsdyna": "k"}


def render(fmt: str, meta: ExportMeta, table: ExportTable,
           first_curve_id: int = DEFAULT_FIRST_CURVE_ID) -> bytes:
    """The file in format `fmt` (one of FORMATS)."""
    if fmt == "csv":
        return to_csv(meta, table)
    if fmt == "json":
        return to_json(meta, table)
    if fmt == "abaqus":
        return to_abaqus(meta, table)
    if fmt == "lsdyna":
        return to_lsdyna(meta, table, first_curve_id)
    raise ValueError(f"unknown format {fmt!r}")

__all__ = [
    "DEFAULT_FIRST_CURVE_ID", "DEFAULT_MAX_ERROR", "EXTENSIONS", "FORMATS", "MAX_CURVE_ID",
    "MEDIA_TYPES", "OVER_FORMATS", "UNREACHABLE_POINTS", "Condition", "Definitions",
    "ExportMeta", "ExportTable", "OverTables", "build_table", "conditions_of",
    "default_table", "last_id", "needed_points", "render", "tables_over", "to_abaqus",
    "to_csv", "to_json", "to_lsdyna", "unstable_ranges",
]
