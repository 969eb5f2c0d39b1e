"""Registry writes, one function per change: register a version, attach its inference data
or a file, set, move or delete an alias, edit a model or a version (archive, restore).

Each takes the session of a unit of work (`unit_of_work.py`) and the acting operator, and
records its audit entry in that same unit, so a change is never stored without who made
it. None of them commits: the unit of work does, or rolls everything back. Every input is
checked before the first write, with the same rules whichever way a caller comes in (the
admin API or `surrogate-train`, see `names.py`).

The writes that decide on a row (an alias's previous version, a version's status) lock
that row first on PostgreSQL, and on SQLite the unit of work holds the write lock: racing
writers are serialised, and the loser of a race sees the winner's result (a 404, a 409),
never a database error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.artifact import Artifact, ArtifactError, sha256_hex
from service.errors import ConflictError, InvalidInputError, NotFoundError
from service.registry import files as version_files
from service.registry.db import announce_change
from service.registry.files import insert_if_absent
from service.registry.names import check_actor, check_alias, check_model_name
from service.registry.reads import aliases_of, file_summary, require_model
from service.registry.tables import (
    AuditEntry,
    ModelAlias,
    ModelInferenceData,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)
from service.registry.versions import store_version

# An alias that is deleted and re-created between this write's two statements sends it
# round again; more rounds than this would need a writer storm on one alias.
_ALIAS_ROUNDS = 20


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
    """Store a fit as the next version of `name`, move `alias` to it, and attach its
    InferenceData (netCDF) and `files` ({"report/fit.png": bytes, ...}); returns the
    version. The audit entries are the ones the admin API's register, attach-inference-data
    and attach-file calls record, so both ways of registering leave the same trace.

    Everything is checked before the first write (InvalidInputError naming what is wrong).
    """
    check_model_name(name)
    check_actor(actor)
    if alias is not None:
        check_alias(alias)
    try:
        artifact = Artifact.from_bytes(artifact_bytes, max_unpacked_bytes=max_unpacked_bytes)
    except ArtifactError as exc:
        raise InvalidInputError(f"artifact rejected, nothing was registered: {exc}",
                                [{"field": "artifact", "message": str(exc)}]) from exc
    if inference_data is not None:
        version_files.check_inference_data(inference_data)
    for path, data in (files or {}).items():
        version_files.check_version_file(path, data)
    version = store_version(session, name, artifact, artifact_bytes, description=description,
                             tags=tags, source=source, registered_by=actor)
    if alias is not None:
        _point_alias(session, name, alias, version)
    _audit(session, actor, "register_version", name, version, alias,
           {"sha256": sha256_hex(artifact_bytes), "size_bytes": len(artifact_bytes)})
    if inference_data is not None:
        attach_inference_data(session, name, version, inference_data, actor=actor)
    for path, data in (files or {}).items():
        attach_file(session, name, version, path, data, actor=actor)
    return version


def attach_inference_data(session: Session, name: str, version: int, data: bytes, *,
                          actor: str) -> None:
    """Store the fit's ArviZ InferenceData with a version, once (versions are immutable)."""
    check_actor(actor)
    version_files.check_inference_data(data)
    _version_row(session, name, version)
    digest = sha256_hex(data)
    inserted = insert_if_absent(session, ModelInferenceData, {
        "name": name, "version": version, "sha256": digest, "data": data},
        ["name", "version"])
    if not inserted:
        raise ConflictError(f"version {version} of {name!r} already has inference data "
                            "(versions are immutable)")
    _audit(session, actor, "attach_inference_data", name, version,
           details={"sha256": digest, "size_bytes": len(data)})


def attach_file(session: Session, name: str, version: int, path: str, data: bytes, *,
                actor: str) -> tuple[dict[str, Any], bool]:
    """Attach a file (a report figure) to a version: (its summary, whether it was new).
    The same bytes again change nothing and record nothing; other bytes are a 409."""
    check_actor(actor)
    row, created = version_files.attach_file(session, name, version, path, data)
    if created:
        _audit(session, actor, "attach_file", name, version,
               details={"path": path, "sha256": row.sha256, "size_bytes": row.size})
    return file_summary(row), created


def set_alias(session: Session, name: str, alias: str, version: int, *,
              actor: str) -> int | None:
    """Point `alias` of `name` at `version` (creating or moving it); returns the version
    it pointed at before (None: it is new). Only a ready version can hold an alias."""
    check_alias(alias)
    check_actor(actor)
    target = _version_row(session, name, version, lock="share")
    if target.status != VersionStatus.READY:
        raise InvalidInputError(f"version {version} of {name!r} is {target.status}; "
                                "only ready versions can hold an alias")
    previous = _point_alias(session, name, alias, version)
    _audit(session, actor, "set_alias", name, version, alias,
           {"previous_version": previous})
    return previous


def delete_alias(session: Session, name: str, alias: str, *, actor: str) -> int:
    """Remove `alias` of `name`; returns the version it pointed at. One DELETE ...
    RETURNING: of two racing deletes, the second finds nothing and is a 404."""
    check_actor(actor)
    previous = session.execute(
        delete(ModelAlias).where(ModelAlias.name == name, ModelAlias.alias == alias)
        .returning(ModelAlias.version).execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if previous is None:
        require_model(session, name)
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    announce_change(session)
    _audit(session, actor, "delete_alias", name, previous, alias)
    return previous


def update_model(session: Session, name: str, *, actor: str, description: str | None = None,
                 tags: dict[str, str] | None = None) -> None:
    """Edit a model's description and/or tags (replacing all tags)."""
    check_actor(actor)
    row = session.get(RegisteredModel, name)
    if row is None:
        raise NotFoundError(f"model {name!r} is not registered")
    if description is not None:
        row.description = description
    if tags is not None:
        row.tags = dict(tags)
    session.flush()
    _audit(session, actor, "update_model", name,
           details=_given(description=description, tags=tags))


def update_version(session: Session, name: str, version: int, *, actor: str,
                   description: str | None = None, tags: dict[str, str] | None = None,
                   status: str | None = None) -> None:
    """Edit a version's description/tags, or archive / restore it (`status`). Its
    posterior, manifest and lineage never change. An archived version cannot hold an alias,
    so archiving one that still does is refused (move the alias first)."""
    check_actor(actor)
    if status not in (None, VersionStatus.READY, VersionStatus.ARCHIVED):
        raise InvalidInputError(f"unknown status {status!r}", [{"field": "status"}])
    # Locked: an alias being pointed at this version waits, then sees the new status.
    row = _version_row(session, name, version, lock="update")
    if status == VersionStatus.ARCHIVED:
        held = aliases_of(session, name, version)
        if held:
            raise ConflictError(
                f"version {version} of {name!r} still holds alias(es) {held}; move or delete "
                "them before archiving", [{"aliases": held}])
    if description is not None:
        row.description = description
    if tags is not None:
        row.tags = dict(tags)
    if status is not None:
        row.status = status
    session.flush()
    if status is not None:
        announce_change(session)
    _audit(session, actor, "update_version", name, version,
           details=_given(description=description, tags=tags, status=status))


# --- steps of the writes above ------------------------------------------------------------


def _given(**values: Any) -> dict[str, Any]:
    """The fields a caller set, for the audit entry."""
    return {key: value for key, value in values.items() if value is not None}


def _version_row(session: Session, name: str, version: int,
                 lock: str | None = None) -> ModelVersion:
    """The version's row, locked on PostgreSQL when `lock` says so ("share": it must not
    change until commit; "update": this unit changes it); NotFoundError if absent."""
    options: dict[str, Any] = {}
    if lock is not None:  # FOR SHARE, or FOR NO KEY UPDATE (foreign keys still see it)
        options["with_for_update"] = ({"read": True} if lock == "share"
                                      else {"key_share": True})
    row = session.get(ModelVersion, (name, version), **options)
    if row is None:
        require_model(session, name)
        raise NotFoundError(f"model {name!r} has no version {version}")
    return row


def _point_alias(session: Session, name: str, alias: str, version: int) -> int | None:
    """Point the alias at `version`; returns where it pointed before (None: new).

    No read-then-write gap: an INSERT ... ON CONFLICT DO NOTHING either creates the alias
    or finds it there, and then the row is locked (SELECT ... FOR UPDATE) before it is
    moved. A concurrent delete between the two statements sends it round again.
    """
    key = (ModelAlias.name == name, ModelAlias.alias == alias)
    for _ in range(_ALIAS_ROUNDS):
        if insert_if_absent(session, ModelAlias,
                            {"name": name, "alias": alias, "version": version},
                            ["name", "alias"]):
            announce_change(session)
            return None
        previous = session.scalar(select(ModelAlias.version).where(*key).with_for_update())
        if previous is not None:
            session.execute(update(ModelAlias).where(*key).values(version=version)
                            .execution_options(synchronize_session=False))
            announce_change(session)
            return previous
    raise ConflictError(f"alias {alias!r} of {name!r} kept changing under this write; "
                        "try again")


def _audit(session: Session, actor: str, action: str, name: str | None = None,
           version: int | None = None, alias: str | None = None,
           details: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, model_name=name, version=version,
                           alias=alias, details=details or {}))
    session.flush()
