"""Registry operations. Functions take a Session; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.artifact import Artifact, sha256_hex
from service.errors import InvalidInputError, NotFoundError
from service.registry.models import (
    ModelAlias,
    ModelBlob,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)


@dataclass(frozen=True)
class VersionRef:
    """What answers a request: a model name, a version number and the blob's checksum."""

    name: str
    version: int
    sha256: str


def _ensure_registered_model(session: Session, name: str) -> None:
    """Insert the registered-model row if absent, without racing concurrent registrations."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RegisteredModel).values(name=name, last_version=0)
    session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))


def allocate_version(session: Session, name: str) -> int:
    """Next version number for `name`.

    A single UPDATE ... RETURNING increments the counter: PostgreSQL holds the row lock and
    SQLite the database write lock until commit, so concurrent registrations serialise and
    get consecutive, distinct numbers.
    """
    _ensure_registered_model(session, name)
    statement = (
        update(RegisteredModel)
        .where(RegisteredModel.name == name)
        .values(last_version=RegisteredModel.last_version + 1)
        .returning(RegisteredModel.last_version)
    )
    return int(session.execute(statement).scalar_one())


def register_version(
    session: Session,
    name: str,
    artifact_bytes: bytes,
    metrics: dict[str, Any] | None = None,
    description: str | None = None,
) -> int:
    """Validate an encoded artifact and store it as the next version of `name`."""
    artifact = Artifact.from_bytes(artifact_bytes)  # raises ArtifactError before any write
    version = allocate_version(session, name)
    session.add(ModelVersion(
        name=name,
        version=version,
        status=VersionStatus.READY,
        description=description,
        manifest=artifact.manifest,
        metrics=metrics if metrics is not None else artifact.manifest.get("metrics", {}),
        sha256=sha256_hex(artifact_bytes),
        size_bytes=len(artifact_bytes),
    ))
    session.flush()
    session.add(ModelBlob(name=name, version=version, data=artifact_bytes))
    session.flush()
    return version


def set_alias(session: Session, name: str, alias: str, version: int) -> None:
    """Point `alias` of model `name` at `version` (creating or moving it)."""
    target = get_version(session, name, version)
    if target.status != VersionStatus.READY:
        raise InvalidInputError(f"version {version} of {name!r} is {target.status}; "
                                "only ready versions can hold an alias")
    existing = session.get(ModelAlias, (name, alias))
    if existing is None:
        session.add(ModelAlias(name=name, alias=alias, version=version))
    else:
        existing.version = version
    session.flush()


def get_version(session: Session, name: str, version: int) -> ModelVersion:
    row = session.get(ModelVersion, (name, version))
    if row is None:
        _require_model(session, name)
        raise NotFoundError(f"model {name!r} has no version {version}")
    return row


def _require_model(session: Session, name: str) -> None:
    if session.get(RegisteredModel, name) is None:
        raise NotFoundError(f"model {name!r} is not registered")


def resolve_version(
    session: Session,
    name: str,
    version: int | None = None,
    alias: str | None = None,
    default_alias: str = "production",
) -> VersionRef:
    """Which version answers: the one asked for, else the alias's, else the latest ready."""
    if version is not None:
        row = get_version(session, name, version)
        return VersionRef(row.name, row.version, row.sha256)
    alias_to_find = alias or default_alias
    alias_row = session.get(ModelAlias, (name, alias_to_find))
    if alias_row is not None:
        row = get_version(session, name, alias_row.version)
        return VersionRef(row.name, row.version, row.sha256)
    if alias is not None:
        _require_model(session, name)
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    latest = session.execute(
        select(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.status == VersionStatus.READY)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None:
        _require_model(session, name)
        raise NotFoundError(f"model {name!r} has no ready version")
    return VersionRef(latest.name, latest.version, latest.sha256)


def load_blob(session: Session, name: str, version: int) -> bytes:
    blob = session.get(ModelBlob, (name, version))
    if blob is None:
        raise NotFoundError(f"model {name!r} version {version} has no stored posterior")
    return blob.data


def model_exists(session: Session, name: str) -> bool:
    return session.get(RegisteredModel, name) is not None


def list_models(session: Session) -> list[dict[str, Any]]:
    """Every registered model with its versions (light columns only) and aliases."""
    versions: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.status,
               ModelVersion.created_at).order_by(ModelVersion.name, ModelVersion.version)
    ):
        versions.setdefault(row.name, []).append({
            "version": row.version, "status": row.status, "created_at": row.created_at,
        })
    aliases: dict[str, dict[str, int]] = {}
    for alias in session.scalars(select(ModelAlias).order_by(ModelAlias.name, ModelAlias.alias)):
        aliases.setdefault(alias.name, {})[alias.alias] = alias.version
    names = session.scalars(select(RegisteredModel.name).order_by(RegisteredModel.name))
    return [
        {"name": name, "versions": versions.get(name, []), "aliases": aliases.get(name, {})}
        for name in names
    ]


def count_versions(session: Session, name: str) -> int:
    return int(session.scalar(
        select(func.count()).select_from(ModelVersion).where(ModelVersion.name == name)
    ) or 0)
