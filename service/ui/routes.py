"""The read-only registry web pages under /ui/ (server-rendered, Jinja2 with autoescape).

The pages show what the public read API shows and link to it; they hold no token and
offer no admin action. Every response carries a Content-Security-Policy that allows only
this origin and no inline script or style, so a model description that smuggles in markup
is both escaped by the templates and unable to run if escaping ever failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from service.api.deps import SessionDep, SettingsDep
from service.errors import SurrogateError
from service.registry.reads import version_detail
from service.ui.covariates import MAX_LISTED_VALUES, covariates_view
from service.ui.data import model_page, models_overview, version_numbers

HERE = FilePath(__file__).parent
STATIC_PREFIX = "/ui/static"

# 'self' only: the vendored chart library, our one script and stylesheet, the figures and
# the predict API all live on this origin. No 'unsafe-inline' for scripts or styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

# Files a browser may download from a version page, next to the artifact (npz) and the
# InferenceData (netCDF): the export formats, when the service has the export route.
EXPORT_FORMATS = ("csv", "json", "abaqus", "lsdyna")
EXPORT_PATH = "/v1/models/{name}/export"

NamePath = Annotated[str, Path(max_length=128)]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _number(value: Any, spec: str = ".3f") -> str:
    """A metric as shown in the tables; an em dash when the version does not have it."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite returns naive datetimes; the registry stores UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["number"] = _number
    environment.filters["when"] = _when
    environment.globals["static"] = lambda path: f"{STATIC_PREFIX}/{path}"
    return environment


TEMPLATES = _environment()


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(error: SurrogateError) -> HTMLResponse:
    return render("error.html", status_code=error.status_code, message=error.message)


class SecureStaticFiles(StaticFiles):
    """The UI's static files with the same security headers as its pages."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home() -> HTMLResponse:
    return render("home.html")


@router.get("/ui/", response_class=HTMLResponse)
def models_index(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return render("index.html", models=models_overview(session),
                  default_alias=settings.default_alias)


@router.get("/ui/models/{name}", response_class=HTMLResponse)
def model_view(name: NamePath, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        page = model_page(session, name)
    except SurrogateError as error:
        return error_page(error)
    chart = {
        "model": page.name,
        "versions": [row.version for row in page.versions],
        "nlpd": [row.nlpd for row in page.versions],
        "coverage_95": [row.coverage_95 for row in page.versions],
        "aleatoric_sd_error": [row.aleatoric_sd_error for row in page.versions],
        # 95% intervals over held-out materials, drawn as bands (null: none stored)
        **{f"{metric}_{end}": [getattr(row.spread, f"{metric}_{end}", None)
                               for row in page.versions]
           for metric in ("nlpd", "coverage_95") for end in ("low", "high")},
        "production": page.aliases.get(settings.default_alias),
        "production_alias": settings.default_alias,
    }
    return render("model.html", model=page, chart=chart, default_alias=settings.default_alias)


@router.get("/ui/models/{name}/compare")
def compare(name: NamePath, a: Annotated[int, Query(ge=1, le=2**31 - 1)],
            b: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> RedirectResponse:
    """The compare form's target: version `a`'s page with `b` overlaid."""
    return RedirectResponse(f"/ui/models/{quote(name, safe='')}/versions/{a}?compare={b}",
                            status_code=303,
                            headers=SECURITY_HEADERS)


@router.get("/ui/models/{name}/versions/{version}", response_class=HTMLResponse)
def version_view(request: Request, name: NamePath, version: VersionPath, session: SessionDep,
                 settings: SettingsDep,
                 compare: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                 ) -> HTMLResponse:
    try:
        detail = version_detail(session, name, version)
        other = version_detail(session, name, compare) if compare not in (None, version) \
            else None
    except SurrogateError as error:
        return error_page(error)
    manifest = detail["manifest"]
    covariates = covariates_view(manifest)
    # A model with covariates exports at a condition: its central tested one.
    at = "" if covariates is None else "&covariates=" + quote(",".join(
        f"{row.name}:{row.start!r}" for row in covariates.rows), safe=":,")
    exports = [(fmt, f"{EXPORT_PATH.format(name=name)}?version={version}&format={fmt}{at}")
               for fmt in EXPORT_FORMATS] if has_public_path(request.app, EXPORT_PATH) else []
    try_it = {
        "model": name, "version": version,
        "compare": other["version"] if other else None,
        "domain": manifest.get("training_domain", {}),
        "x_label": _axis_label(manifest, "input"),
        "y_label": _axis_label(manifest, "output"),
        "predict_url": f"/v1/models/{name}/predict",
        "covariates": covariates.try_it() if covariates else [],
    }
    return render("version.html", v=detail, other=other, exports=exports, try_it=try_it,
                  covariates=covariates, max_listed_values=MAX_LISTED_VALUES,
                  versions=version_numbers(session, name), default_alias=settings.default_alias)


def _axis_label(manifest: dict[str, Any], side: str) -> str:
    architecture = manifest.get("architecture", {})
    name = architecture.get(f"{side}_name", side)
    unit = architecture.get(f"{side}_unit")
    return f"{name} [{unit}]" if unit else str(name)


def has_public_path(app: FastAPI, path: str) -> bool:
    """Whether the app's OpenAPI documents `path` (the public API as clients see it);
    looked up once per app, as the schema is built once."""
    known = getattr(app.state, "ui_public_paths", None)
    if known is None:
        known = app.state.ui_public_paths = frozenset(app.openapi().get("paths", {}))
    return path in known


def install(app: FastAPI) -> None:
    """Add the pages and their static files to `app`."""
    app.include_router(router)
    app.mount(STATIC_PREFIX, SecureStaticFiles(directory=HERE / "static"), name="ui-static")
