"""Public, read-only registry views: models, versions (manifest, metrics, diagnostics), the
ArviZ export and the files stored with a version (its report figures)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from service.api.deps import SessionDep
from service.api.registry_schemas import ModelDetail, VersionDetail, VersionFile
from service.api.schemas import ErrorBody, ModelSummary
from service.artifact import sha256_hex
from service.errors import ConflictError
from service.registry import reads
from service.registry.reads import (
    list_files,
    list_models,
    load_blob,
    load_file,
    load_inference_data,
    model_detail,
    version_detail,
)

router = APIRouter(prefix="/v1/models", tags=["registry"],
                   responses={404: {"model": ErrorBody}})

NamePath = Annotated[str, Path(max_length=128, description="Registered model name.")]
# Stored files are served as their declared type only: a browser must not sniff a figure
# into HTML or script.
DOWNLOAD_HEADERS = {"x-content-type-options": "nosniff"}
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]  # 32-bit column: no overflow 500


@router.get("", response_model=list[ModelSummary], summary="Registered models")
def get_models(session: SessionDep) -> list[dict]:
    return list_models(session)


@router.get("/{name}", response_model=ModelDetail,
            summary="One model: description, tags, aliases and versions")
def get_model(name: NamePath, session: SessionDep) -> dict[str, Any]:
    return model_detail(session, name)


@router.get("/{name}/versions/{version}", response_model=VersionDetail,
            summary="One version: manifest, metrics, diagnostics, lineage")
def get_version(name: NamePath, version: VersionPath, session: SessionDep) -> dict[str, Any]:
    return version_detail(session, name, version)


@router.get(
    "/{name}/versions/{version}/inference-data",
    summary="The fit's ArviZ InferenceData as netCDF (open with arviz.from_netcdf)",
    response_class=Response,
    responses={200: {"content": {"application/x-netcdf": {}}}},
)
def get_inference_data(name: NamePath, version: VersionPath, session: SessionDep) -> Response:
    data = load_inference_data(session, name, version)
    return Response(data, media_type="application/x-netcdf", headers={
        "content-disposition": f'attachment; filename="{name}-v{version}.nc"',
        "x-model-version": str(version), **DOWNLOAD_HEADERS,
    })


@router.get(
    "/{name}/versions/{version}/artifact",
    summary="The version's artifact file (npz: posterior draws + manifest)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}},
               409: {"model": ErrorBody, "description": "stored bytes fail their sha256"}},
)
def get_artifact(name: NamePath, version: VersionPath, session: SessionDep) -> Response:
    """The bytes `surrogate-train fit --artifact-out` wrote, checked against the stored
    sha256 (also sent as `x-artifact-sha256`); `service.artifact.Artifact.from_bytes` opens it."""
    row = reads.get_version(session, name, version)
    data = load_blob(session, name, version)
    if sha256_hex(data) != row.sha256:
        raise ConflictError(f"stored artifact of {name!r} version {version} fails its sha256 "
                            "check")
    return Response(data, media_type="application/octet-stream", headers={
        "content-disposition": f'attachment; filename="{name}-v{version}.npz"',
        "x-model-version": str(version), "x-artifact-sha256": row.sha256,
    })


@router.get("/{name}/versions/{version}/files", response_model=list[VersionFile],
            summary="The files stored with a version (fit report figures)")
def get_files(name: NamePath, version: VersionPath, session: SessionDep) -> list[dict]:
    return list_files(session, name, version)


@router.get(
    "/{name}/versions/{version}/files/{path:path}",
    summary="One file of a version, e.g. report/fit.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def get_file(name: NamePath, version: VersionPath, path: str, session: SessionDep) -> Response:
    row = load_file(session, name, version, path)
    return Response(row.content, media_type=row.media_type,
                    headers={"x-model-version": str(version), **DOWNLOAD_HEADERS})
