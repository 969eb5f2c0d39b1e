"""What the registry pages show, read in a fixed number of queries per page.

Every field here is also in the public read API (`GET /v1/models`, `/v1/models/{name}`,
`/v1/models/{name}/versions/{v}`); the pages only read it more cheaply. The versions table
takes its metrics out of the JSON columns in SQL (SQLite `json_extract`, PostgreSQL `#>>`)
so a model with hundreds of versions costs one query, not one per version, and never
loads whole manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.registry.tables import ModelAlias, ModelVersion, RegisteredModel


@dataclass
class ModelRow:
    """One line of the models page."""

    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    version_count: int = 0
    latest_version: int | None = None
    latest_status: str | None = None
    last_registered_at: datetime | None = None
    last_registered_by: str | None = None


@dataclass
class VersionRow:
    """One line of the versions table."""

    version: int
    status: str
    created_at: datetime
    registered_by: str | None
    description: str | None
    method: str | None
    fit_time_s: float | None
    nlpd: float | None
    coverage_95: float | None
    crps: float | None
    aleatoric_sd_error: float | None
    aliases: list[str] = field(default_factory=list)
    spread: HeldOutSpread | None = None  # None for versions stored without one


@dataclass
class HeldOutSpread:
    """How far the held-out NLPD and 95% coverage could move with other materials: the
    NLPD's standard error and 95% intervals of both (`training.spread`), over `units`."""

    units: int
    unit: str  # "material", or "row" for data without a material column
    nlpd_se: float | None
    nlpd_low: float | None
    nlpd_high: float | None
    coverage_95_low: float | None
    coverage_95_high: float | None


@dataclass
class ModelPage:
    name: str
    description: str | None
    tags: dict[str, str]
    created_at: datetime
    aliases: dict[str, int]
    versions: list[VersionRow]


def _aliases_by_model(session: Session, name: str | None = None) -> dict[str, dict[str, int]]:
    query = select(ModelAlias.name, ModelAlias.alias, ModelAlias.version).order_by(
        ModelAlias.name, ModelAlias.alias)
    if name is not None:
        query = query.where(ModelAlias.name == name)
    aliases: dict[str, dict[str, int]] = {}
    for row in session.execute(query):
        aliases.setdefault(row.name, {})[row.alias] = row.version
    return aliases


def models_overview(session: Session) -> list[ModelRow]:
    """Every model with its aliases and its latest version (three queries)."""
    aliases = _aliases_by_model(session)
    rows = {
        row.name: ModelRow(row.name, row.description, dict(row.tags or {}),
                           aliases.get(row.name, {}))
        for row in session.execute(
            select(RegisteredModel.name, RegisteredModel.description, RegisteredModel.tags)
            .order_by(RegisteredModel.name))
    }
    latest = (select(ModelVersion.name, func.max(ModelVersion.version).label("version"),
                     func.count().label("count"))
              .group_by(ModelVersion.name).subquery())
    for row in session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.status,
               ModelVersion.created_at, ModelVersion.registered_by, latest.c.count)
        .join(latest, (ModelVersion.name == latest.c.name)
              & (ModelVersion.version == latest.c.version))
    ):
        model = rows.get(row.name)
        if model is None:
            continue
        model.version_count = int(row.count)
        model.latest_version = row.version
        model.latest_status = row.status
        model.last_registered_at = row.created_at
        model.last_registered_by = row.registered_by
    return list(rows.values())


# Where each field of `HeldOutSpread` sits under `metrics.held_out.spread`.
_SPREAD_COLUMNS = {
    "units": ("units",), "nlpd_se": ("nlpd", "se"), "nlpd_low": ("nlpd", "low_95"),
    "nlpd_high": ("nlpd", "high_95"), "coverage_95_low": ("coverage", "0.95", "low_95"),
    "coverage_95_high": ("coverage", "0.95", "high_95"),
}


def _spread(row: Any) -> HeldOutSpread | None:
    if row.units is None:  # stored before held-out metrics had a spread
        return None
    values = {name: getattr(row, name) for name in _SPREAD_COLUMNS}
    return HeldOutSpread(**{**values, "units": int(values["units"]), "unit": row.unit})


def model_page(session: Session, name: str) -> ModelPage:
    """A model and all its versions with their headline metrics (three queries)."""
    model = session.execute(
        select(RegisteredModel.name, RegisteredModel.description, RegisteredModel.tags,
               RegisteredModel.created_at).where(RegisteredModel.name == name)
    ).first()
    if model is None:
        raise NotFoundError(f"model {name!r} is not registered")
    aliases = _aliases_by_model(session, name).get(name, {})
    held_out = ModelVersion.metrics
    inference = ModelVersion.manifest
    query = (
        select(ModelVersion.version, ModelVersion.status, ModelVersion.created_at,
               ModelVersion.registered_by, ModelVersion.description,
               inference[("inference", "method")].as_string().label("method"),
               inference[("inference", "wall_time_s")].as_float().label("fit_time_s"),
               held_out[("held_out", "nlpd")].as_float().label("nlpd"),
               held_out[("held_out", "coverage", "0.95")].as_float().label("coverage_95"),
               held_out[("held_out", "crps")].as_float().label("crps"),
               held_out[("aleatoric_sd_error",)].as_float().label("aleatoric_sd_error"),
               *(held_out[("held_out", "spread", *path)].as_float().label(label)
                 for label, path in _SPREAD_COLUMNS.items()),
               held_out[("held_out", "spread", "unit")].as_string().label("unit"))
        .where(ModelVersion.name == name).order_by(ModelVersion.version)
    )
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    versions = [
        VersionRow(row.version, row.status, row.created_at, row.registered_by,
                   row.description, row.method, row.fit_time_s, row.nlpd, row.coverage_95,
                   row.crps, row.aleatoric_sd_error, sorted(by_version.get(row.version, [])),
                   _spread(row))
        for row in session.execute(query)
    ]
    return ModelPage(model.name, model.description, dict(model.tags or {}), model.created_at,
                     aliases, versions)


def version_numbers(session: Session, name: str) -> list[int]:
    """All version numbers of `name` (the compare menu)."""
    return list(session.scalars(
        select(ModelVersion.version).where(ModelVersion.name == name)
        .order_by(ModelVersion.version)))
