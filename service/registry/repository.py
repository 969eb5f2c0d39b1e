"""Registry operations. Functions take a Session; callers own the transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.artifact import Artifact, ArtifactError, sha256_hex
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.png import check_png
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


# netCDF-4 files are HDF5 files; classic netCDF starts with "CDF" and a format byte.
_NETCDF_MAGICS = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


# Files a version may carry: relative paths of at most three segments, each starting with
# a letter or digit (so no "..", no hidden or absolute paths), and only PNG images so far
# (the fit report figures). The extension decides the media type; the bytes must be one
# whole file of that type (they are served back as they are).
_FILE_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_FILE_PATH = re.compile(rf"(?:{_FILE_SEGMENT}/){{0,2}}{_FILE_SEGMENT}")
_FILE_TYPES = {".png": ("image/png", check_png)}


@dataclass(frozen=True)
class VersionRef:
    """What answers a request: a model name, a version number and the blob's checksum."""

    name: str
    version: int
    sha256: str


def _insert_if_absent(session: Session, entity: type[Any], values: dict[str, Any],
                      key: list[str]) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING; whether the row was inserted. One statement,
    so a concurrent insert of the same key makes it a no-op, never a duplicate-key error
    (PostgreSQL waits for the other transaction; SQLite serialises writers)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = entity.__table__
    statement = (insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
                 # RETURNING says whether a row went in (rowcount came back -1 on PostgreSQL).
                 .returning(*(table.c[column] for column in key)))
    return session.execute(statement).first() is not None


def _ensure_registered_model(session: Session, name: str) -> None:
    """Insert the registered-model row if absent, without racing concurrent registrations."""
    _insert_if_absent(session, RegisteredModel, {"name": name, "last_version": 0}, ["name"])


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


def check_inference_data(data: bytes) -> None:
    """Refuse anything that is not a netCDF file (it is served back as is, never parsed)."""
    if not data.startswith(_NETCDF_MAGICS):
        raise ArtifactError("inference data is not a netCDF file (expected the netCDF-4/HDF5 "
                            "or classic netCDF signature)")


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
        session.add(ModelVersionFile(**_file_values(name, version, path, media_types[path],
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
        _require_model(session, name)
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    version = row.version
    session.delete(row)
    session.flush()
    announce_change(session)
    return version


def aliases_of(session: Session, name: str, version: int) -> list[str]:
    return list(session.scalars(
        select(ModelAlias.alias).where(ModelAlias.name == name, ModelAlias.version == version)
        .order_by(ModelAlias.alias)
    ))


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


def check_version_file(path: str, data: bytes) -> str:
    """The media type of a file to attach to a version; refuses unsafe paths, types other
    than PNG, and bytes that do not match the type (the file is served back as is)."""
    if not _FILE_PATH.fullmatch(path):
        raise InvalidInputError(
            f"file path {path!r} is not a safe relative name like 'report/fit.png'",
            [{"field": "path", "message": "up to 3 segments of letters, digits, '.', '_', "
              "'-', each starting with a letter or digit"}])
    suffix = path[path.rfind("."):] if "." in path else ""
    if suffix not in _FILE_TYPES:
        raise InvalidInputError(f"file path {path!r}: only {sorted(_FILE_TYPES)} files can "
                                "be attached", [{"field": "path", "message": "must end in .png"}])
    media_type, check = _FILE_TYPES[suffix]
    try:
        check(data)
    except ValueError as exc:
        raise InvalidInputError(f"file {path!r} is not a valid PNG image: {exc}",
                                [{"field": "body", "message": f"not {media_type}: {exc}"}]
                                ) from None
    return media_type


def _file_values(name: str, version: int, path: str, media_type: str,
                 data: bytes) -> dict[str, Any]:
    return {"name": name, "version": version, "path": path, "media_type": media_type,
            "size": len(data), "sha256": sha256_hex(data), "content": data}


def attach_file(session: Session, name: str, version: int, path: str,
                data: bytes) -> tuple[ModelVersionFile, bool]:
    """Attach a file to an existing version; returns (row, created).

    Files are immutable: sending the same bytes again is a no-op (created is False), so an
    interrupted upload can simply be retried; different bytes for the same path conflict.
    """
    media_type = check_version_file(path, data)
    get_version(session, name, version)
    key = (name, version, path)
    # Insert-if-absent rather than look-then-insert: an upload racing this one for the same
    # new path (a retry, a second operator) must end as a 200 or a 409, not a 500.
    created = _insert_if_absent(session, ModelVersionFile,
                                _file_values(name, version, path, media_type, data),
                                ["name", "version", "path"])
    stored = session.get(ModelVersionFile, key, populate_existing=True)
    if stored.sha256 != sha256_hex(data):
        raise ConflictError(f"version {version} of {name!r} already has a different file "
                            f"{path!r} (versions are immutable)",
                            [{"path": path, "sha256": stored.sha256}])
    return stored, created


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
