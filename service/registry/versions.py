"""A new version's storage step (`writes.register` calls it): the next number, the row
with its manifest, metrics and lineage, and the blob."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.artifact import Artifact, sha256_hex
from service.registry.db import announce_change
from service.registry.files import insert_if_absent
from service.registry.tables import ModelBlob, ModelVersion, RegisteredModel, VersionStatus


def store_version(session: Session, name: str, artifact: Artifact, artifact_bytes: bytes, *,
                  description: str | None, tags: dict[str, str] | None, source: str | None,
                  registered_by: str) -> int:
    """The artifact (validated by the caller) as the next version of `name`: its number,
    row and blob."""
    spec = artifact.spec
    version = _allocate_version(session, name)
    session.add(ModelVersion(
        name=name, version=version, status=VersionStatus.READY, description=description,
        manifest=artifact.manifest, metrics=spec.metrics, sha256=sha256_hex(artifact_bytes),
        size_bytes=len(artifact_bytes), tags=dict(tags or {}), source=source,
        data_sha256=_data_sha256(spec.data), lineage=_lineage(artifact.manifest),
        registered_by=registered_by,
    ))
    session.flush()
    session.add(ModelBlob(name=name, version=version, data=artifact_bytes))
    session.flush()
    announce_change(session)
    return version


def _allocate_version(session: Session, name: str) -> int:
    """Next version number for `name`.

    A single UPDATE ... RETURNING increments the counter: PostgreSQL holds the row lock and
    SQLite the database write lock until commit, so concurrent registrations serialise and
    get consecutive, distinct numbers.
    """
    insert_if_absent(session, RegisteredModel, {"name": name, "last_version": 0}, ["name"])
    statement = (
        update(RegisteredModel)
        .where(RegisteredModel.name == name)
        .values(last_version=RegisteredModel.last_version + 1)
        .returning(RegisteredModel.last_version)
    )
    return int(session.execute(statement).scalar_one())


def _lineage(manifest: dict[str, Any]) -> dict[str, Any]:
    """The parts of a manifest that say where a fit came from."""
    keys = ("config", "library_versions", "inference", "data")
    return {key: manifest[key] for key in keys if key in manifest}


def _data_sha256(data: dict[str, Any] | None) -> str | None:
    """The training data's sha256 as the manifest records it, if it looks like one."""
    value = (data or {}).get("sha256")
    return value if isinstance(value, str) and len(value) == 64 else None
