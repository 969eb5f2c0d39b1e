"""GET /v1/models/{name}/export: the model as a table a finite-element code reads
directly (CSV, JSON, Abaqus, LS-DYNA), or as fitted hyperelastic cards (CalculiX, and
Abaqus/JSON with `form=`); for a model with covariates at a condition, or as tables over
one covariate (cards over a temperature: a row of constants per value). Validation and
limits here (the covariate query: service.api.covariate_query); the table, the cards and
the formats in service.export (docs/export.md).

Why one module of this size: the export's options (format, grid, quantiles, curves, cards,
covariates) limit one another, and every 4xx must come before any work is admitted."""

from __future__ import annotations

import math
import secrets
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from service import export
from service.api.covariate_query import export_conditions
from service.api.deps import LiveRegistryDep, SessionDep, SettingsDep, work_of
from service.api.schemas import error_responses
from service.errors import InvalidInputError, PayloadTooLargeError
from service.inference.posterior import Posterior
from service.observability import record_model_version
from service.prediction import admission, pipeline
from service.prediction.request import MAX_NAME_LENGTH, MAX_SAMPLE_DRAWS, MAX_SEED, MAX_VERSION
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["export"])

_MAX_LEVELS = 99


def _invalid(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", [{"field": field, "message": message}])


def parse_levels(text: str | None) -> list[float]:
    """'0.05,0.5,0.95' -> [0.05, 0.5, 0.95]; each strictly inside (0, 1), no repeats."""
    if text is None:
        return []
    levels: list[float] = []
    for index, part in enumerate(text.split(",")):
        try:
            level = float(part)
        except ValueError:
            raise _invalid(f"quantiles[{index}]", f"{part.strip()!r} is not a number") from None
        if not 0.0 < level < 1.0:  # also refuses nan
            raise _invalid(f"quantiles[{index}]", f"{part.strip()} is not strictly between "
                           "0 and 1")
        if level in levels:
            raise _invalid(f"quantiles[{index}]", f"{level:g} is asked twice")
        levels.append(level)
    if len(levels) > _MAX_LEVELS:
        raise _invalid("quantiles", f"at most {_MAX_LEVELS} levels")
    return levels


def _strain_range(posterior: Posterior, strain_min: float | None,
                  strain_max: float | None) -> tuple[float, float]:
    low = posterior.domain[0] if strain_min is None else strain_min
    high = posterior.domain[1] if strain_max is None else strain_max
    for field, value in (("strain_min", low), ("strain_max", high)):
        if not math.isfinite(value):
            raise _invalid(field, "must be a finite number")
    if low >= high:
        raise InvalidInputError(
            f"strain_min ({low:g}) must be less than strain_max ({high:g})",
            [{"field": "strain_min", "message": f"must be less than strain_max ({high:g})"},
             {"field": "strain_max", "message": f"must be greater than strain_min ({low:g})"}])
    if not math.isfinite(high - low):
        raise _invalid("strain_max", "strain_max - strain_min must be a finite number")
    return low, high


def card_options(fmt: str, form: str | None, bulk_ratio: float | None,
                 bulk_modulus: float | None, count: int) -> tuple[str | None, export.Volumetric]:
    """The form to fit (None: no cards) and the volumetric setting; 422/413 naming the
    parameter when they do not apply or exceed the card limit."""
    if form is None:
        form = export.CARD_FORMATS.get(fmt)
    elif fmt not in export.CARD_FORMATS:
        raise _invalid("form", f"applies to formats {', '.join(export.CARD_FORMATS)}")
    elif form not in export.FORM_NAMES:
        raise _invalid("form", f"{form!r} is not one of {', '.join(export.FORM_NAMES)}")
    for field, value in (("bulk_ratio", bulk_ratio), ("bulk_modulus", bulk_modulus)):
        if value is not None and form is None:
            raise _invalid(field, "applies to fitted cards (format=calculix, or form=)")
    if bulk_ratio is not None and bulk_modulus is not None:
        raise _invalid("bulk_modulus", "give either bulk_ratio or bulk_modulus, not both")
    if form is not None and count > export.MAX_CARDS:
        raise PayloadTooLargeError(
            f"{count} curves would be {count} fitted cards; the limit is {export.MAX_CARDS}",
            [{"field": "curves", "limit": export.MAX_CARDS}])
    return form, export.Volumetric(bulk_modulus, bulk_ratio or export.DEFAULT_BULK_RATIO)


def _check_cards_over(fmt: str, posterior: Posterior, over: str, values: np.ndarray,
                      count: int) -> None:
    """Cards over a covariate hold a row of constants per value in the temperature column
    (service.export.card_rows): 422 naming `over` for a covariate that is not a
    temperature (JSON, which has no such column, takes any) or for two values one row
    would hold; 413 naming `over` past the card limit."""
    conditions = posterior.conditions
    assert conditions is not None
    unit = conditions.units[conditions.names.index(over)]
    if fmt != "json" and not export.is_temperature(over, unit):
        raise _invalid("over", f"{over} [{unit}] is not a temperature: a *HYPERELASTIC card's "
                       "rows differ only in their temperature column (CalculiX reads no field "
                       "variables; this export writes Abaqus cards over a temperature "
                       f"only); export the cards at one {over} with covariates={over}:VALUE, "
                       "or the constants per value with format=json")
    column = values[:, conditions.names.index(over)].tolist()
    index = export.indistinct_row(column)
    if index is not None:
        raise _invalid("over", f"{column[index]!r} and {column[index - 1]!r} are one "
                       "temperature in a card's 9 significant digits")
    if count * len(column) > export.MAX_CARDS:
        raise PayloadTooLargeError(
            f"{count} cards over {len(column)} values would be {count * len(column)} fitted "
            f"rows; the limit is {export.MAX_CARDS}",
            [{"field": "over", "limit": export.MAX_CARDS}])


def _largest_grid(settings: Settings, points: int | None, levels: list[float],
                  curves: int, tables: int = 1) -> int:
    """The largest grid this request may use; 422/413 when an explicit `points` exceeds it.
    `tables` over a covariate share the work limits (one grid each)."""
    limit = settings.max_export_points
    if points is not None and points > limit:
        raise _invalid("points", f"{points} exceeds the limit of {limit} points")
    if tables > 1:
        limit = max(2, limit // tables)
        if points is not None and points > limit:
            raise PayloadTooLargeError(
                f"{tables} tables of {points} points exceed the limit of "
                f"{settings.max_export_points} points per export",
                [{"field": "over", "limit": settings.max_export_points}])
    if levels:
        limit = min(limit, max(2, settings.max_export_quantile_points // tables))
        if points is not None and points > limit:
            raise PayloadTooLargeError(
                f"quantiles were asked on {points} points; the limit is {limit} points per "
                "export with quantiles",
                [{"field": "quantiles", "limit": settings.max_export_quantile_points}])
    if curves:
        # The curves are sampled on the grid and its midpoints.
        by_samples = (settings.max_samples_per_request // (curves * tables) + 1) // 2
        if by_samples < 2 or (points is not None and points > by_samples):
            # A table needs two strains at least: fewer curves is the only way out.
            raise PayloadTooLargeError(
                f"{curves} curves on {max(points or 2, 2)} points (and their midpoints) "
                f"exceed {settings.max_samples_per_request} samples per request",
                [{"field": "curves", "limit": settings.max_samples_per_request}])
        limit = min(limit, by_samples)
    return limit


# A target is refused before any grid is built when the coarse probe says it needs more
# than this many times the grid allowed (the probe's h^2 extrapolation is approximate, so a
# target just beyond it is built and measured).
_UNREACHABLE_FACTOR = 2


def _refuse_error_target(points: int, error: float | None, target: float, needed: int,
                         largest: int) -> None:
    if needed >= export.UNREACHABLE_POINTS:
        would = "no grid of this range would meet it"
    else:
        would = f"about {needed} points would meet it"
        if needed > largest:
            would += f"; the limit for this request is {largest} points"
    measured = (f"{points} points give an interpolation error of {error:.3g} total SD"
                if error is not None else f"at most {points} points may be used")
    raise _invalid("max_interpolation_error", f"{measured} > {target:g}; {would}")


@router.get(
    "/{name}/export",
    response_class=Response,
    responses={**error_responses(404, 413, 415, 422, 503, 504), 200: {"content": {
        "text/csv": {}, "application/json": {}, "text/plain": {}}}},
    summary="The model as a table for a finite-element code (CSV, JSON, Abaqus, LS-DYNA), "
    "or as fitted hyperelastic cards (CalculiX)",
    description="Mean, SDs, tangent (and optional quantiles and whole curves) on a uniform "
    "strain grid, with the table's linear-interpolation error (in total SDs) and the strain "
    "ranges where an exported curve does not rise. Abaqus: one Marlow material per curve; "
    "LS-DYNA: one *DEFINE_CURVE per curve; CalculiX (and Abaqus or JSON with form=): one "
    "fitted *HYPERELASTIC form per curve with its fit error and stable ranges. See "
    "docs/export.md.",
)
def export_table(
    request: Request,
    session: SessionDep,
    live: LiveRegistryDep,
    settings: SettingsDep,
    name: Annotated[str, Path(max_length=MAX_NAME_LENGTH)],
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    alias: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    strain_min: Annotated[float | None, Query(description="Default: the training "
                                              "domain's lower end.")] = None,
    strain_max: Annotated[float | None, Query(description="Default: the training "
                                              "domain's upper end.")] = None,
    points: Annotated[int | None, Query(ge=2, description="Grid size (default: the "
                                        "smallest keeping the interpolation error <= 1e-3 "
                                        "total SD, or max_interpolation_error).")] = None,
    quantiles: Annotated[str | None, Query(description="Comma-separated levels in (0, 1), "
                                           "e.g. 0.05,0.5,0.95.")] = None,
    curves: Annotated[int | None, Query(ge=1, le=MAX_SAMPLE_DRAWS)] = None,
    seed: Annotated[int | None, Query(ge=0, le=MAX_SEED)] = None,
    max_interpolation_error: Annotated[float | None, Query(gt=0, le=1)] = None,
    first_curve_id: Annotated[int, Query(ge=1, le=export.MAX_CURVE_ID)] =
        export.DEFAULT_FIRST_CURVE_ID,
    format: Annotated[Literal["csv", "json", "abaqus", "lsdyna", "calculix"],  # noqa: A002
                      Query()] = "csv",
    form: Annotated[str | None, Query(max_length=32, description="Hyperelastic form of "
                                      "the cards: auto (default for calculix), neo_hooke, "
                                      "mooney_rivlin, polynomial_n1..n3, "
                                      "reduced_polynomial_n1..n3, yeoh, ogden_n1..n3, "
                                      "arruda_boyce.")] = None,
    bulk_ratio: Annotated[float | None, Query(gt=1, le=1e7, description="Cards: initial "
                                              "bulk modulus / initial shear modulus "
                                              "(default 1000).")] = None,
    bulk_modulus: Annotated[float | None, Query(gt=0, le=1e300, description="Cards: "
                                                "initial bulk modulus, in the stress "
                                                "unit.")] = None,
    stable_strain_min: Annotated[float | None, Query(gt=-1, le=0, description="Cards: "
                                                     "form=auto requires Drucker stability "
                                                     "down to this nominal strain (default: "
                                                     "the exported range).")] = None,
    stable_strain_max: Annotated[float | None, Query(ge=0, le=100, description="Cards: "
                                                     "... and up to this one.")] = None,
    covariates: Annotated[str | None, Query(
        max_length=4096, description="Models with covariates: the condition, every "
        "covariate as NAME:VALUE, e.g. temperature:353.15,rate:0.01 (with `over`: the "
        "others).")] = None,
    over: Annotated[str | None, Query(
        max_length=4096, description="Models with covariates: one table per value of one "
        "covariate, NAME:V1,V2,... (or NAME alone: the values it was tested at), in each "
        "format's own convention (Abaqus temperature column, LS-DYNA *DEFINE_TABLE; "
        "cards: a row of constants per temperature).")] =
        None,
) -> Response:
    if version is not None and alias is not None:
        raise _invalid("alias", "give either version or alias, not both")
    if seed is not None and curves is None:
        raise _invalid("seed", "seed applies to curves; give curves too")
    if over is not None and format not in export.OVER_FORMATS:
        raise _invalid("over", f"format={format} writes one condition; give covariates=... "
                       "instead")
    levels = parse_levels(quantiles)
    count = curves or 0
    form, volumetric = card_options(format, form, bulk_ratio, bulk_modulus,
                                    1 + len(levels) + count)
    for field, value in (("stable_strain_min", stable_strain_min),
                         ("stable_strain_max", stable_strain_max)):
        if value is not None and form is None:
            raise _invalid(field, "applies to fitted cards (format=calculix, or form=)")
    if first_curve_id + len(levels) + count > export.MAX_CURVE_ID:
        raise _invalid("first_curve_id", f"curve ids would exceed {export.MAX_CURVE_ID}")
    ref, posterior = pipeline.resolve(live, session, name, version, alias, settings)
    where, over_name = export_conditions(posterior.conditions, covariates, over, ref.name,
                                         ref.version)
    tables = 1 if where is None or over_name is None else where.shape[0]
    if over_name is not None:
        if form is not None:
            _check_cards_over(format, posterior, over_name, where, 1 + len(levels) + count)
        if export.last_id(1 + len(levels) + count, first_curve_id,
                          tables) > export.MAX_CURVE_ID:
            raise _invalid("first_curve_id", f"table and curve ids would exceed "
                           f"{export.MAX_CURVE_ID}")
    largest = _largest_grid(settings, points, levels, count, tables)
    low, high = _strain_range(posterior, strain_min, strain_max)
    definitions = export.Definitions.from_manifest(posterior.spec)
    if form is not None and definitions.nominal_strain(low) <= -1.0:
        raise _invalid("strain_min", "fitted cards need a positive stretch (nominal strain "
                       "above -1)")
    if count and seed is None:
        seed = secrets.randbits(32)
    target = max_interpolation_error or export.DEFAULT_MAX_ERROR
    # A coarse table of the summaries (milliseconds) predicts the grid the target needs:
    # the default grid's cost, and a target no admissible grid meets, known up front.
    # The strain-only posteriors the tables come from: the model, or its view at each
    # condition (a model with covariates answers no strain alone).
    views = [posterior] if where is None else [posterior.at(row) for row in where]
    needed = max(export.probe_points(view, low, high, target) for view in views)
    if max_interpolation_error is not None and needed > _UNREACHABLE_FACTOR * (
            points or largest):
        _refuse_error_target(points or largest, None, target, needed, largest)
    grid = points or min(largest, needed)
    work = work_of(request)
    with work.admitted(lambda n: admission.export_estimate(views[0], n, len(levels), count,
                                                           searched=points is None,
                                                           tables=tables, form=form),
                       grid, "points", unit="points"):
        table, condition = export.tables_at(posterior, where, over_name, low, high, points,
                                            largest, target, levels, count, seed)
        if max_interpolation_error is not None and table.max_interpolation_error > target:
            _refuse_error_target(
                table.points, table.max_interpolation_error, target,
                export.needed_points(table.points, table.max_interpolation_error, target),
                largest)
        meta = export.ExportMeta(ref.name, ref.version, ref.sha256, definitions,
                                 posterior.domain, condition)
        stable_range = (0.0 if stable_strain_min is None else stable_strain_min,
                        0.0 if stable_strain_max is None else stable_strain_max)
        cards: export.Cards | None = None
        if form is not None and isinstance(condition, export.OverTables):
            cards = export.fit_row_cards(meta, condition, form, volumetric, stable_range)
        elif form is not None:
            cards = export.fit_cards(meta, table, form, volumetric, stable_range)
        content = export.render(format, meta, table, first_curve_id, cards)
    record_model_version(request, ref.name, ref.version, tables * (2 * table.points - 1))
    return Response(content, media_type=export.MEDIA_TYPES[format], headers={
        "content-disposition": f'attachment; filename="{ref.name}-v{ref.version}.'
                               f'{export.EXTENSIONS[format]}"',
        "x-model-version": str(ref.version),
        "x-interpolation-error": f"{table.max_interpolation_error:.6g}",
    })
