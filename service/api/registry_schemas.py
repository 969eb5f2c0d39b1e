"""Bodies of the registry views and the admin API (kept apart from the predict schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.schemas import UtcDateTime

Tags = dict[str, str]


class VersionBrief(BaseModel):
    version: int
    status: str
    created_at: UtcDateTime
    description: str | None = None
    tags: Tags = {}
    sha256: str


class ModelDetail(BaseModel):
    name: str
    description: str | None
    tags: Tags
    created_at: UtcDateTime
    aliases: dict[str, int]
    versions: list[VersionBrief]


class VersionFile(BaseModel):
    path: str = Field(description="Relative name within the version, e.g. 'report/fit.png'.")
    media_type: str
    size: int = Field(description="Bytes.")
    sha256: str
    url: str = Field(description="Where `GET` returns the bytes (relative to the service).")


class VersionDetail(BaseModel):
    name: str
    version: int
    status: Literal["ready", "archived"]
    created_at: UtcDateTime
    description: str | None
    tags: Tags
    aliases: list[str] = Field(description="Aliases that point at this version.")
    sha256: str = Field(description="sha256 of the stored artifact; checked on every load.")
    size_bytes: int
    source: str | None = Field(description="Where the fit came from (e.g. training command).")
    data_sha256: str | None = Field(description="sha256 of the training data.")
    registered_by: str | None
    lineage: dict[str, Any] = Field(description="Fit configuration, inference settings, "
                                                "data summary and library versions.")
    metrics: dict[str, Any]
    diagnostics: dict[str, Any]
    manifest: dict[str, Any]
    has_inference_data: bool
    files: list[VersionFile] = Field(description="Files stored with the version: the fit "
                                                 "report figures.")


class AliasUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 3}]})

    version: int = Field(..., ge=1, description="Version the alias should point to.")


class AliasChange(BaseModel):
    name: str
    alias: str
    version: int | None = Field(description="Where the alias points now (null: deleted).")
    previous_version: int | None


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=10_000)
    tags: Tags | None = Field(None, description="Replaces all tags.")


class VersionUpdate(ModelUpdate):
    status: Literal["ready", "archived"] | None = Field(
        None, description="`archived`: not served by default and cannot hold an alias.")


class AuditRecord(BaseModel):
    id: int
    at: UtcDateTime
    actor: str
    action: str
    model: str | None
    version: int | None
    alias: str | None
    details: dict[str, Any]
