"""Registry tables, in the spirit of MLflow's model registry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names so Alembic migrations can drop what they create.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Existing rows get an empty JSON object when migration 0002 adds tag/lineage columns.
EMPTY_JSON = text("'{}'")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON}


class VersionStatus:
    READY = "ready"
    ARCHIVED = "archived"


class RegisteredModel(Base):
    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Highest version number handed out; incremented atomically to allocate the next one.
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=EMPTY_JSON)


class ModelVersion(Base):
    """One immutable fit. The posterior blob lives in `model_blobs` so listings stay light."""

    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.READY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    description: Mapped[str | None] = mapped_column(Text)
    manifest: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default=EMPTY_JSON)
    # Lineage: where the fit came from (copied from the manifest, plus what the uploader said).
    source: Mapped[str | None] = mapped_column(Text)  # e.g. the training command line
    data_sha256: Mapped[str | None] = mapped_column(String(64))
    lineage: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default=EMPTY_JSON)
    registered_by: Mapped[str | None] = mapped_column(String(128))


def _belongs_to_version() -> ForeignKeyConstraint:
    """(name, version) refers to a model version and is deleted with it."""
    return ForeignKeyConstraint(["name", "version"],
                                ["model_versions.name", "model_versions.version"],
                                ondelete="CASCADE")


class ModelBlob(Base):
    __tablename__ = "model_blobs"
    __table_args__ = (
        _belongs_to_version(),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ModelAlias(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (
        _belongs_to_version(),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utc_now, onupdate=utc_now
    )


class ModelInferenceData(Base):
    """The fit's ArviZ InferenceData as netCDF bytes, produced at training time (optional).

    Stored apart from the posterior blob because it is large and only read on export; the
    service serves the bytes as they are and never imports ArviZ.
    """

    __tablename__ = "model_inference_data"
    __table_args__ = (
        _belongs_to_version(),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEntry(Base):
    """Append-only record of admin actions (nothing updates or deletes these rows)."""

    __tablename__ = "audit_log"

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(sqlite.INTEGER(), "sqlite"), primary_key=True,
        autoincrement=True,
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(128), index=True)
    version: Mapped[int | None] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelVersionFile(Base):
    """A file that belongs to a version, e.g. its fit report figures ("report/fit.png").

    Stored in the registry (not on the training machine's disk) so every replica and
    operator can fetch them; immutable once attached, like the rest of a version.
    """

    __tablename__ = "model_version_files"
    __table_args__ = (
        _belongs_to_version(),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: listings and version details read the metadata, not the bytes.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
