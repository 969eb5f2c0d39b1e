"""Registry writes: registering versions (one unit of work), aliases, status, metadata and
the audit log. Functions take a Session; callers own the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from service.artifact import Artifact, sha256_hex
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.registry.files import (
    check_inference_data,
    check_version_file,
    file_values,
    insert_if_absent,
)
from service.registry.reads import aliases_of, get_version, require_model
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

# PostgreSQL channel on which routing changes are announced (see LiveRegistry).
NOTIFY_CHANNEL = "surrogate_registry"


def announce_change(session: Session) -> None:
    """Tell listening replicas that aliases or versions changed. PostgreSQL delivers the
    notification at commit (and drops it on rollback); elsewhere replicas just poll."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def _ensure_registered_model(session: Session, name: str) -> None:
    """Insert the registered-model row if absent, without racing concurrent registrations."""
    insert_if_absent(session, RegisteredModel, {"name": name, "last_version": 0}, ["name"])


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


def lineage_from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts of a manifest that say where a fit came from."""
    keys = ("config", "library_versions", "inference", "data")
    return {key: manifest[key] for key in keys if key in manifest}


def _data_sha256(data: dict[str, Any] | None) -> str | None:
    """The training data's sha256 as the manifest records it, if it looks like one."""
    value = (data or {}).get("sha256")
    return value if isinstance(value, str) and len(value) == 64 else None


def register(
    session: Session,
    name: str,
    artifact_bytes: bytes,
    *,
    actor: str,
    alias: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    source: str | None = None,
    inference_data: bytes | None = None,
    files: dict[str, bytes] | None = None,
    max_unpacked_bytes: int | None = None,
) -> int:
    """Register a fit: the next version of `name` with its files, `alias` moved to it, and
    the audit entry, as one unit of work (the caller commits or rolls back). The admin API
    and `surrogate-train` both register through here, so every version is recorded alike.

    Everything is checked before the first write (ArtifactError, InvalidInputError), so
    a rejected registration changes nothing even if the caller commits.
    """
    version = register_version(session, name, artifact_bytes, description=description,
                               tags=tags, source=source, registered_by=actor,
                               inference_data=inference_data, files=files,
                               max_unpacked_bytes=max_unpacked_bytes)
    if alias:
        set_alias(session, name, alias, version)
    record_audit(session, actor, "register_version", name, version, alias,
                 {"sha256": sha256_hex(artifact_bytes), "size_bytes": len(artifact_bytes),
                  "files": sorted(files or {})})
    return version


def register_version(
    session: Session,
    name: str,
    artifact_bytes: bytes,
    description: str | None = None,
    *,
    tags: dict[str, str] | None = None,
    source: str | None = None,
    registered_by: str | None = None,
    inference_data: bytes | None = None,
    files: dict[str, bytes] | None = None,
    max_unpacked_bytes: int | None = None,
) -> int:
    """Validate an encoded artifact and store it as the next version of `name`, with its
    optional ArviZ netCDF and `files` ({"report/fit.png": bytes, ...}); no alias, no
    audit entry (`register` adds both; tests seed registries with this step alone).

    Everything is checked before the first write, so a rejected upload changes nothing
    even if the caller commits.
    """
    # Raises ArtifactError before any write.
    artifact = Artifact.from_bytes(artifact_bytes, max_unpacked_bytes=max_unpacked_bytes)
    spec = artifact.spec
    if inference_data is not None:
        check_inference_data(inference_data)
    media_types = {path: check_version_file(path, data) for path, data in (files or {}).items()}
    version = allocate_version(session, name)
    session.add(ModelVersion(
        name=name,
        version=version,
        status=VersionStatus.READY,
        description=description,
        manifest=artifact.manifest,
        metrics=spec.metrics,
        sha256=sha256_hex(artifact_bytes),
        size_bytes=len(artifact_bytes),
        tags=dict(tags or {}),
        source=source,
        data_sha256=_data_sha256(spec.data),
        lineage=lineage_from_manifest(artifact.manifest),
        registered_by=registered_by,
    ))
    session.flush()
    session.add(ModelBlob(name=name, version=version, data=artifact_bytes))
    if inference_data is not None:
        session.add(ModelInferenceData(name=name, version=version,
                                       sha256=sha256_hex(inference_data), data=inference_data))
    for path, data in (files or {}).items():
        session.add(ModelVersionFile(**file_values(name, version, path, media_types[path],
                                                    data)))
    session.flush()
    announce_change(session)
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
    announce_change(session)


# --- admin operations (each caller records an audit entry in the same transaction) ------


def record_audit(
    session: Session,
    actor: str,
    action: str,
    name: str | None = None,
    version: int | None = None,
    alias: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, model_name=name, version=version,
                           alias=alias, details=details or {}))
    session.flush()


def delete_alias(session: Session, name: str, alias: str) -> int:
    """Remove `alias` of `name`; returns the version it pointed to."""
    row = session.get(ModelAlias, (name, alias))
    if row is None:
        require_model(session, name)
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    version = row.version
    session.delete(row)
    session.flush()
    announce_change(session)
    return version


def set_version_status(session: Session, name: str, version: int, status: str) -> ModelVersion:
    """Archive or restore a version. An archived version cannot hold an alias, so archiving
    one that still does is refused (move the alias first)."""
    if status not in (VersionStatus.READY, VersionStatus.ARCHIVED):
        raise InvalidInputError(f"unknown status {status!r}")
    row = get_version(session, name, version)
    if status == VersionStatus.ARCHIVED:
        held = aliases_of(session, name, version)
        if held:
            raise ConflictError(
                f"version {version} of {name!r} still holds alias(es) {held}; move or delete "
                "them before archiving", [{"aliases": held}])
    row.status = status
    session.flush()
    announce_change(session)
    return row


def update_model(session: Session, name: str, description: str | None = None,
                 tags: dict[str, str] | None = None) -> RegisteredModel:
    row = session.get(RegisteredModel, name)
    if row is None:
        raise NotFoundError(f"model {name!r} is not registered")
    if description is not None:
        row.description = description
    if tags is not None:
        row.tags = dict(tags)
    session.flush()
    return row


def update_version(session: Session, name: str, version: int, description: str | None = None,
                   tags: dict[str, str] | None = None) -> ModelVersion:
    """Edit a version's description/tags (its posterior, manifest and lineage never change)."""
    row = get_version(session, name, version)
    if description is not None:
        row.description = description
    if tags is not None:
        row.tags = dict(tags)
    session.flush()
    return row
