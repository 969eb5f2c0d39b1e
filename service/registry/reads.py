"""Registry reads: version lookup and resolution, blobs, model and version details, the
audit log and the routing snapshot. Functions take a Session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.artifact import sha256_hex
from service.errors import ConflictError, NotFoundError
from service.registry.tables import (
    AuditEntry,
    ModelAlias,
    ModelBlob,
    ModelInferenceData,
    ModelVersion,
    ModelVersionFile,
    RegisteredModel,
    VersionStatus,
)


@dataclass(frozen=True)
class VersionRef:
    """What answers a request: a model name, a version number and the blob's checksum."""

    name: str
    version: int
    sha256: str


def get_version(session: Session, name: str, version: int) -> ModelVersion:
    row = session.get(ModelVersion, (name, version))
    if row is None:
        require_model(session, name)
        raise NotFoundError(f"model {name!r} has no version {version}")
    return row


def require_model(session: Session, name: str) -> None:
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
        require_model(session, name)
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    latest = session.execute(
        select(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.status == VersionStatus.READY)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None:
        require_model(session, name)
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


def aliases_of(session: Session, name: str, version: int) -> list[str]:
    return list(session.scalars(
        select(ModelAlias.alias).where(ModelAlias.name == name, ModelAlias.version == version)
        .order_by(ModelAlias.alias)
    ))


def load_inference_data(session: Session, name: str, version: int) -> bytes:
    get_version(session, name, version)
    row = session.get(ModelInferenceData, (name, version))
    if row is None:
        raise NotFoundError(f"model {name!r} version {version} was registered without "
                            "ArviZ inference data")
    if sha256_hex(row.data) != row.sha256:
        raise ConflictError(f"stored inference data of {name!r} version {version} fails its "
                            "sha256 check")
    return row.data


def file_summary(row: ModelVersionFile) -> dict[str, Any]:
    """A file's metadata and where the public API serves it."""
    return {"path": row.path, "media_type": row.media_type, "size": row.size,
            "sha256": row.sha256,
            "url": f"/v1/models/{row.name}/versions/{row.version}/files/{row.path}"}


def list_files(session: Session, name: str, version: int) -> list[dict[str, Any]]:
    """Metadata of a version's files, by path (the bytes are not read)."""
    get_version(session, name, version)
    rows = session.scalars(
        select(ModelVersionFile)
        .where(ModelVersionFile.name == name, ModelVersionFile.version == version)
        .order_by(ModelVersionFile.path))
    return [file_summary(row) for row in rows]


def load_file(session: Session, name: str, version: int, path: str) -> ModelVersionFile:
    """One file with its bytes, checked against its stored sha256."""
    get_version(session, name, version)
    row = session.get(ModelVersionFile, (name, version, path))
    if row is None:
        raise NotFoundError(f"model {name!r} version {version} has no file {path!r}")
    if sha256_hex(row.content) != row.sha256:
        raise ConflictError(f"stored file {path!r} of {name!r} version {version} fails its "
                            "sha256 check")
    return row


def version_detail(session: Session, name: str, version: int) -> dict[str, Any]:
    row = get_version(session, name, version)
    has_idata = session.scalar(
        select(func.count()).select_from(ModelInferenceData)
        .where(ModelInferenceData.name == name, ModelInferenceData.version == version))
    manifest = row.manifest
    return {
        "name": row.name, "version": row.version, "status": row.status,
        "created_at": row.created_at, "description": row.description, "tags": row.tags,
        "aliases": aliases_of(session, name, version),
        "sha256": row.sha256, "size_bytes": row.size_bytes,
        "source": row.source, "data_sha256": row.data_sha256,
        "registered_by": row.registered_by, "lineage": row.lineage,
        "metrics": row.metrics, "diagnostics": manifest.get("diagnostics", {}),
        "manifest": manifest, "has_inference_data": bool(has_idata),
        "files": list_files(session, name, version),
    }


def model_detail(session: Session, name: str) -> dict[str, Any]:
    row = session.get(RegisteredModel, name)
    if row is None:
        raise NotFoundError(f"model {name!r} is not registered")
    versions = session.execute(
        select(ModelVersion.version, ModelVersion.status, ModelVersion.created_at,
               ModelVersion.description, ModelVersion.tags, ModelVersion.sha256)
        .where(ModelVersion.name == name).order_by(ModelVersion.version)
    ).all()
    aliases = {a.alias: a.version for a in session.scalars(
        select(ModelAlias).where(ModelAlias.name == name).order_by(ModelAlias.alias))}
    return {
        "name": row.name, "description": row.description, "tags": row.tags,
        "created_at": row.created_at, "aliases": aliases,
        "versions": [
            {"version": v.version, "status": v.status, "created_at": v.created_at,
             "description": v.description, "tags": v.tags, "sha256": v.sha256}
            for v in versions
        ],
    }


def list_audit(session: Session, name: str | None = None, limit: int = 100,
               before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; page with `before_id`."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if name is not None:
        query = query.where(AuditEntry.model_name == name)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class RegistrySnapshot:
    """What every replica needs to route requests without asking the database: each
    version's checksum and status, every alias, and the latest ready version per model."""

    versions: dict[tuple[str, int], tuple[str, str]]  # (name, version) -> (sha256, status)
    aliases: dict[tuple[str, str], int]
    latest: dict[str, int]

    def ref(self, name: str, version: int) -> VersionRef | None:
        entry = self.versions.get((name, version))
        return None if entry is None else VersionRef(name, version, entry[0])


def read_snapshot(session: Session) -> RegistrySnapshot:
    versions: dict[tuple[str, int], tuple[str, str]] = {}
    latest: dict[str, int] = {}
    for row in session.execute(
        select(ModelVersion.name, ModelVersion.version, ModelVersion.sha256,
               ModelVersion.status)
    ):
        versions[(row.name, row.version)] = (row.sha256, row.status)
        if row.status == VersionStatus.READY and row.version > latest.get(row.name, 0):
            latest[row.name] = row.version
    aliases = {(row.name, row.alias): row.version
               for row in session.execute(select(ModelAlias.name, ModelAlias.alias,
                                                 ModelAlias.version))}
    return RegistrySnapshot(versions=versions, aliases=aliases, latest=latest)
