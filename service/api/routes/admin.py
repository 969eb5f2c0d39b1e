"""Admin API: register versions, attach their files, move aliases, archive, edit metadata,
read the audit log.

Every call needs `Authorization: Bearer <SURROGATE_ADMIN_TOKEN>`. The token is compared in
constant time and never logged or echoed; with no token configured every call is refused.
Every route is the same three steps: the token check (`require_admin`, which also names
the actor), one write of `service.registry.writes` in its own unit of work (the change and
its audit entry are committed together, or neither), then this replica refreshes its
routing table at once (other replicas pick the change up within their poll interval).
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service.api.deps import LiveRegistryDep, SessionDep, SessionFactoryDep, SettingsDep
from service.api.registry_schemas import (
    AliasChange,
    AliasUpdate,
    AuditRecord,
    ModelDetail,
    ModelUpdate,
    VersionDetail,
    VersionFile,
    VersionUpdate,
)
from service.api.schemas import ErrorBody
from service.artifact import sha256_hex
from service.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from service.registry import reads, writes
from service.registry.names import ACTOR_PATTERN, ALIAS_PATTERN, MODEL_NAME_PATTERN
from service.registry.unit_of_work import SessionFactory, unit_of_work

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="SURROGATE_ADMIN_TOKEN")


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_actor: Annotated[str | None, Header(pattern=ACTOR_PATTERN,
                                          description="Who is acting (audit log).")] = None,
) -> str:
    """The acting operator's name for the audit log, once the bearer token checks out."""
    configured = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not configured:
        raise ForbiddenError("the admin API is disabled: SURROGATE_ADMIN_TOKEN is not set")
    if credentials is None:
        raise UnauthorizedError("admin calls need an 'Authorization: Bearer <token>' header")
    if not hmac.compare_digest(credentials.credentials.encode(), configured.encode()):
        raise ForbiddenError("the admin token is not valid")
    return x_actor or "admin"


ActorDep = Annotated[str, Depends(require_admin)]
NamePath = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="Registered model name.")]
AliasPath = Annotated[str, Path(pattern=ALIAS_PATTERN)]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]  # 32-bit column: no overflow 500

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses={code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)},
)


def binary_body(media_type: str) -> dict[str, Any]:
    """OpenAPI for a route whose required body is raw bytes of `media_type` (the route
    reads the stream itself, so FastAPI cannot infer it)."""
    return {"requestBody": {"required": True, "content": {
        media_type: {"schema": {"type": "string", "format": "binary"}}}}}


async def read_body(request: Request, what: str) -> bytes:
    """The raw body (its size is bounded by service.api.body_guard, the time it may take
    by service.http_protocol)."""
    data = b"".join([chunk async for chunk in request.stream()])
    if not data:
        raise InvalidInputError(f"{what} is empty: send the file as the request body")
    return data


def parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"tag {pair!r} must look like key=value",
                                    [{"field": "tag"}])
        tags[key] = value
    return tags


def _register(sessions: SessionFactory, actor: str, name: str, data: bytes,
              options: dict[str, Any]) -> dict[str, Any]:
    """Register in one unit of work, which also gives the connection back before the
    caller waits for the routing refresh (that needs a connection of its own: holding this
    one meanwhile starves the pool under concurrent registrations)."""
    with unit_of_work(sessions) as session:
        version = writes.register(session, name, data, actor=actor, **options)
        return reads.version_detail(session, name, version)


@router.post(
    "/models/{name}/versions",
    status_code=201,
    response_model=VersionDetail,
    summary="Register a new version by uploading a fit artifact",
    description="The request body is the artifact file exactly as `surrogate-train` writes "
    "it (`--artifact-out`), sent as `application/octet-stream`. It is checked before "
    "anything is written: size limit, npz without pickle, every array's shape against the "
    "manifest, finite values, the manifest's content hash and (if given) the file's "
    "sha256. A rejected upload leaves the registry unchanged and says why. Versions are "
    "numbered 1, 2, ... per model, safely under concurrent registration.",
    openapi_extra=binary_body("application/octet-stream"),
)
async def register(
    request: Request,
    name: NamePath,
    actor: ActorDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    live: LiveRegistryDep,
    # Query strings stay short enough for any HTTP server's request-line limit; longer
    # descriptions go through PATCH (JSON body).
    description: Annotated[str | None, Query(max_length=1_000)] = None,
    tag: Annotated[list[str], Query(description="key=value, repeatable")] = [],  # noqa: B006
    source: Annotated[str | None, Query(max_length=1_000,
                                        description="e.g. the training command")] = None,
    alias: Annotated[str | None, Query(pattern=ALIAS_PATTERN,
                                       description="Point this alias at the new version")]
    = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$",
                                        description="Expected sha256 of the body")] = None,
) -> dict[str, Any]:
    data = await read_body(request, "artifact")
    if sha256 is not None and sha256_hex(data) != sha256:
        raise InvalidInputError("artifact rejected, nothing was registered: the body's sha256 "
                                "does not match the `sha256` parameter (corrupted upload)")
    options = {"alias": alias, "description": description, "tags": parse_tags(tag),
               "source": source, "max_unpacked_bytes": 2 * settings.max_upload_bytes}
    detail = await run_in_threadpool(_register, sessions, actor, name, data, options)
    logger.info("%s registered %s v%d", actor, name, detail["version"])
    await run_in_threadpool(live.catch_up)
    return detail


def _attach_inference_data(sessions: SessionFactory, actor: str, name: str, version: int,
                           data: bytes) -> None:
    with unit_of_work(sessions) as session:
        writes.attach_inference_data(session, name, version, data, actor=actor)


@router.put(
    "/models/{name}/versions/{version}/inference-data",
    status_code=204,
    summary="Attach the fit's ArviZ InferenceData (netCDF) to a version, once",
    description="Body: the netCDF file `surrogate-train fit --idata-out` writes. Served back "
    "by `GET /v1/models/{name}/versions/{version}/inference-data`.",
    openapi_extra=binary_body("application/x-netcdf"),
)
async def attach_inference_data(
    request: Request, name: NamePath, version: VersionPath, actor: ActorDep,
    sessions: SessionFactoryDep,
) -> Response:
    data = await read_body(request, "inference data")
    await run_in_threadpool(_attach_inference_data, sessions, actor, name, version, data)
    return Response(status_code=204)


def _attach_file(sessions: SessionFactory, actor: str, name: str, version: int, path: str,
                 data: bytes) -> tuple[dict[str, Any], bool]:
    with unit_of_work(sessions) as session:
        return writes.attach_file(session, name, version, path, data, actor=actor)


@router.put(
    "/models/{name}/versions/{version}/files/{path:path}",
    status_code=201,
    response_model=VersionFile,
    responses={200: {"model": VersionFile,
                     "description": "The same bytes were already attached (no change)."}},
    summary="Attach a file (a report figure such as report/fit.png) to a version",
    description="Body: the PNG file. `path` is a relative name of up to 3 segments of "
    "letters, digits, '.', '_' and '-' (each starting with a letter or digit) ending in "
    "`.png`. Files are immutable: the same bytes again answer 200 and change nothing, "
    "different bytes for an existing path are a 409. Served back by "
    "`GET /v1/models/{name}/versions/{version}/files/{path}`.",
    openapi_extra=binary_body("image/png"),
)
async def attach_file(
    request: Request, response: Response, name: NamePath, version: VersionPath, path: str,
    actor: ActorDep, sessions: SessionFactoryDep,
) -> dict[str, Any]:
    data = await read_body(request, "file")
    summary, created = await run_in_threadpool(_attach_file, sessions, actor, name, version,
                                               path, data)
    if not created:
        response.status_code = 200
    return summary


@router.put("/models/{name}/aliases/{alias}", response_model=AliasChange,
            summary="Set or move an alias (promote / roll back)")
def put_alias(name: NamePath, alias: AliasPath, body: AliasUpdate, actor: ActorDep,
              sessions: SessionFactoryDep, live: LiveRegistryDep) -> dict[str, Any]:
    with unit_of_work(sessions) as session:
        previous = writes.set_alias(session, name, alias, body.version, actor=actor)
    logger.info("%s moved %s@%s: %s -> %d", actor, name, alias, previous, body.version)
    live.catch_up()  # this replica serves the new version before the call returns
    return {"name": name, "alias": alias, "version": body.version,
            "previous_version": previous}


@router.delete("/models/{name}/aliases/{alias}", response_model=AliasChange,
               summary="Delete an alias")
def delete_alias(name: NamePath, alias: AliasPath, actor: ActorDep,
                 sessions: SessionFactoryDep, live: LiveRegistryDep) -> dict[str, Any]:
    with unit_of_work(sessions) as session:
        previous = writes.delete_alias(session, name, alias, actor=actor)
    live.catch_up()
    return {"name": name, "alias": alias, "version": None, "previous_version": previous}


@router.patch("/models/{name}", response_model=ModelDetail,
              summary="Edit a model's description and tags")
def patch_model(name: NamePath, body: ModelUpdate, actor: ActorDep,
                sessions: SessionFactoryDep) -> dict[str, Any]:
    with unit_of_work(sessions) as session:
        writes.update_model(session, name, actor=actor, description=body.description,
                            tags=body.tags)
        return reads.model_detail(session, name)


@router.patch(
    "/models/{name}/versions/{version}", response_model=VersionDetail,
    summary="Edit a version's description and tags, or archive / restore it",
    description="An archived version is not served by default (no alias, never 'latest'); "
    "it can still be asked for by number. Archiving a version that holds an alias is "
    "refused (409): move the alias first.",
)
def patch_version(name: NamePath, version: VersionPath, body: VersionUpdate, actor: ActorDep,
                  sessions: SessionFactoryDep, live: LiveRegistryDep) -> dict[str, Any]:
    with unit_of_work(sessions) as session:
        writes.update_version(session, name, version, actor=actor,
                              description=body.description, tags=body.tags,
                              status=body.status)
        detail = reads.version_detail(session, name, version)
    live.catch_up()
    return detail


@router.get("/audit", response_model=list[AuditRecord], summary="Read the audit log")
def audit_log(
    actor: ActorDep, session: SessionDep,
    model: Annotated[str | None, Query(pattern=MODEL_NAME_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, description="Page: entries older than")]
    = None,
) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "model": e.model_name,
         "version": e.version, "alias": e.alias, "details": e.details}
        for e in reads.list_audit(session, model, limit, before_id)
    ]
