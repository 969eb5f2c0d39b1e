"""Operations: Prometheus metrics, structured JSON logs and a request id on every request.

One pure-ASGI middleware does all three per request (no BaseHTTPMiddleware: no extra task,
no body buffering), so the cost on the 1-point prediction path is a few microseconds:
  - the request id: the caller's `X-Request-ID` when it is sane, else a new one; echoed in
    the response header and attached to every log line written while the request runs;
  - metrics: requests, latency histogram and errors by route template (never the raw path,
    so fuzzed URLs cannot explode label cardinality) and, once a route resolved a model,
    by model and version; points predicted by model and version; loaded versions;
  - one access log line per request (optional).

Why one module of this size: the middleware and the metrics and log formats it writes
are one per-request path; apart they would each need the other's state.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.prediction.gate import WorkGate

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# The request id of the request being served, for log lines written anywhere below it.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)
# Key in the ASGI scope's state where a route records the model version that answered.
MODEL_VERSION_KEY = "surrogate_model_version"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
access_logger = logging.getLogger("service.access")
# The *_created series (a timestamp per label set) double the exposition for nothing here.
disable_created_metrics()


class _LoadedVersions:
    """Collector: one gauge sample per model version loaded in this process."""

    def __init__(self, loaded: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._loaded = loaded

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("surrogate_loaded_versions",
                                  "Model versions loaded in memory (1 per version)",
                                  labels=["model", "version"])
        for name, version in self._loaded():
            gauge.add_metric([name, str(version)], 1.0)
        yield gauge


class _HeavyWork:
    """Collector: the heavy-work gate's state (service.prediction.gate)."""

    def __init__(self, gate: Callable[[], WorkGate | None]) -> None:
        self._gate = gate

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gate = self._gate()
        if gate is None:
            return
        yield GaugeMetricFamily("surrogate_heavy_requests_running",
                                "Heavy requests computing now", value=gate.running)
        yield GaugeMetricFamily(
            "surrogate_replica_slowdown", "Measured / estimated time of recent heavy "
            "requests (at least 1): how much slower than the reference machine this "
            "replica runs; the time budget is checked against estimates times it",
            value=gate.slowdown)


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app, so tests
    that build many apps never collide), and whether the middleware writes access lines
    (filled in by the app's lifespan, once the settings are known)."""

    access_log: bool = False

    def __init__(self, loaded_versions: Callable[[], Iterable[tuple[str, int]]],
                 gate: Callable[[], WorkGate | None] = lambda: None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["method", "route", "status", "model", "version"]
        self.requests = Counter("surrogate_http_requests", "HTTP requests answered",
                                labels, registry=self.registry)
        self.errors = Counter("surrogate_http_errors", "HTTP responses with status >= 400",
                              labels, registry=self.registry)
        self.latency = Histogram(
            "surrogate_http_request_duration_seconds",
            "Time from request start to the end of the response",
            ["method", "route", "model", "version"], buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.points = Counter("surrogate_points_predicted",
                              "Strains predicted (summed over requests)",
                              ["model", "version"], registry=self.registry)
        self.registry.register(_LoadedVersions(loaded_versions))
        self.registry.register(_HeavyWork(gate))

    def observe_request(self, method: str, route: str, status: int, model: str,
                        version: str, seconds: float) -> None:
        self.requests.labels(method, route, str(status), model, version).inc()
        if status >= 400:
            self.errors.labels(method, route, str(status), model, version).inc()
        self.latency.labels(method, route, model, version).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def record_model_version(request: Request, name: str, version: int, points: int) -> None:
    """Called by a prediction route once it knows which model version answered."""
    request.scope.setdefault("state", {})[MODEL_VERSION_KEY] = (name, version)
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.points.labels(name, str(version)).inc(points)


def _new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(candidate: str | None) -> str:
    """The caller's request id when it is sane, else a new one (for other transports)."""
    return candidate if candidate and _SANE_REQUEST_ID.fullmatch(candidate) \
        else _new_request_id()


class ObservabilityMiddleware:
    """Request id, metrics and access log; see the module docstring."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SANE_REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
        if request_id is None:
            request_id = _new_request_id()
        token = request_id_var.set(request_id)
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - start, request_id)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        model, version = scope.get("state", {}).get(MODEL_VERSION_KEY, ("", 0))
        version_label = str(version) if model else ""
        method = scope["method"]
        self.metrics.observe_request(method, template, status, model, version_label, seconds)
        if self.metrics.access_log:
            access_logger.info(
                "%s %s %d", method, scope["path"], status,
                extra={"fields": {
                    "method": method, "path": scope["path"], "route": template,
                    "status": status, "duration_ms": round(seconds * 1000.0, 3),
                    "request_id": request_id, "model": model or None,
                    "version": version if model else None,
                }})


# --- logs ------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any
    structured `extra={"fields": {...}}` of the call."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Characters that end or rewrite a terminal line: a path or message holding them could
# otherwise write what looks like a log line of its own.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_controls(text: str) -> str:
    return _LINE_BREAKING.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                              text)


class TextFormatter(logging.Formatter):
    """Plain text, one line per record: control characters in the message are escaped
    (`\\n`), and a traceback's lines are indented, so only a record's first line starts at
    column 0 and a URL holding `%0A` cannot forge a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = _escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + _escape_controls(line) for line in text.splitlines())


class _RequestIdFilter(logging.Filter):
    """Adds the request id to plain-text log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


_HANDLER_MARK = "_surrogate_handler"


def configure_logging(log_format: str = "json", level: int = logging.INFO,
                      access_log: bool = True) -> None:
    """Send every log line (the service's, and uvicorn's through the root logger) to stderr
    in the chosen format. Idempotent: re-running replaces only the handler installed here."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(TextFormatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, _HANDLER_MARK, False)]
    root.addHandler(handler)
    # The service's own loggers at `level`; third-party ones keep the root's (WARNING).
    logging.getLogger("service").setLevel(level)
    # uvicorn installs plain-text handlers of its own; route its lines through ours.
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.handlers = []
    uvicorn_logger.propagate = True
    if access_log:
        # Our access log carries the request id; uvicorn's would duplicate every line.
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


# --- /metrics --------------------------------------------------------------------------

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
                     "description": "Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
