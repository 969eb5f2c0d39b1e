"""Export a model version as tables finite-element codes read directly (docs/export.md):
`table` computes the grid, its interpolation error and unstable ranges; `text` (CSV,
JSON), `abaqus` and `lsdyna` write it; `forms`, `fit` and `cards` turn each curve into a
fitted hyperelastic card, which `calculix` (and `abaqus`, `text` with `form=`) write;
`card_rows` makes a card over a temperature, a row of constants per value."""

from service.export.abaqus import to_abaqus
from service.export.calculix import to_calculix
from service.export.card_rows import Cards, RowCard, fit_row_cards, indistinct_row
from service.export.cards import MAX_CARDS, card_dict, fit_cards
from service.export.conditions import (
    Condition,
    OverTables,
    conditions_of,
    is_temperature,
    tables_at,
    tables_over,
)
from service.export.definitions import Definitions
from service.export.fit import (
    DEFAULT_BULK_RATIO,
    TARGET_ERROR,
    Card,
    Volumetric,
    fitting_seconds,
)
from service.export.forms import FORMS
from service.export.header import ExportMeta
from service.export.lsdyna import DEFAULT_FIRST_CURVE_ID, MAX_CURVE_ID, last_id, to_lsdyna
from service.export.table import (
    DEFAULT_MAX_ERROR,
    UNREACHABLE_POINTS,
    ExportTable,
    build_table,
    default_table,
    needed_points,
    probe_points,
)
from service.export.text import to_csv, to_json
from service.inference.stability import unstable_ranges

FORMATS = ("csv", "json", "abaqus", "lsdyna", "calculix")
# The formats that write tables over a covariate (conditions.OverTables); the card formats
# write one card a column with a row of constants per value (card_rows).
OVER_FORMATS = ("csv", "json", "abaqus", "lsdyna", "calculix")
# The formats that carry fitted cards (`form=`), and the form each uses by default
# (None: no cards unless asked).
CARD_FORMATS = {"calculix": "auto", "abaqus": None, "json": None}
FORM_NAMES = ("auto", *FORMS)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
               "abaqus": "text/plain; charset=utf-8", "lsdyna": "text/plain; charset=utf-8",
               "calculix": "text/plain; charset=utf-8"}
EXTENSIONS = {"csv": "csv", "json": "json", "abaqus": "inp", "lsdyna": "k", "calculix": "inp"}


def render(fmt: str, meta: ExportMeta, table: ExportTable,
           first_curve_id: int = DEFAULT_FIRST_CURVE_ID,
           cards: Cards | None = None) -> bytes:
    """The file in format `fmt` (one of FORMATS); `cards` for the card formats."""
    if fmt == "csv":
        return to_csv(meta, table)
    if fmt == "json":
        return to_json(meta, table, cards)
    if fmt == "abaqus":
        return to_abaqus(meta, table, cards)
    if fmt == "lsdyna":
        return to_lsdyna(meta, table, first_curve_id)
    if fmt == "calculix":
        assert cards is not None
        return to_calculix(meta, table, cards)
    raise ValueError(f"unknown format {fmt!r}")

__all__ = [
    "CARD_FORMATS", "Cards", "DEFAULT_BULK_RATIO", "DEFAULT_FIRST_CURVE_ID", "DEFAULT_MAX_ERROR",
    "EXTENSIONS", "FORMATS", "FORM_NAMES", "MAX_CARDS", "MAX_CURVE_ID", "MEDIA_TYPES",
    "OVER_FORMATS", "TARGET_ERROR", "UNREACHABLE_POINTS", "Card", "Condition", "Definitions",
    "RowCard", "fit_row_cards", "indistinct_row", "is_temperature",
    "ExportMeta", "ExportTable", "OverTables", "Volumetric", "build_table", "card_dict",
    "conditions_of", "default_table", "fit_cards", "fitting_seconds", "last_id", "needed_points",
    "probe_points", "render", "tables_at", "tables_over", "to_abaqus", "to_calculix", "to_csv",
    "to_json", "to_lsdyna", "unstable_ranges",
]
