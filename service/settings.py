"""Service settings, read once from SURROGATE_* environment variables (or a `.env` file in
the working directory; the environment wins)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'registry.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SURROGATE_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the model registry (SQLite file or PostgreSQL).",
    )
    default_alias: str = Field("production", description="Alias served when none is asked.")
    max_points_per_request: int = Field(1_000_000, gt=0)
    admin_token: SecretStr | None = Field(None, description="Bearer token for /admin.")
    # Prediction API: sample budget, request size, logs.
    max_samples_per_request: int = Field(
        10_000_000, gt=0, description="Largest points x draws of posterior-predictive samples "
        "one request may ask for (more is a 413).")
    max_quantile_points_per_request: int = Field(
        100_000, gt=0, description="Largest number of strains one request may ask quantiles "
        "for (more is a 413): each strain solves the mixture CDF over all draws, ~50 us per "
        "strain at 1000 draws, so 10^6 strains would hold a worker for about a minute.")
    max_observed_points: int = Field(
        1_000, gt=0, description="Most measured points of one material a predict request "
        "may condition on (`observed`; more is a 422 naming observed.strain). Conditioning "
        "costs one network pass over them plus a k x k solve, so this bounds request size "
        "more than time.")
    # Export (docs/export.md): grid size and the quantile work one export may ask for.
    max_export_points: int = Field(
        1_000_001, gt=1, description="Largest strain grid of GET /v1/models/{name}/export "
        "(more is a 422 naming `points`); the default grid is chosen within it.")
    max_export_quantile_points: int = Field(
        100_001, gt=1, description="Largest grid an export may compute quantiles on (more "
        "is a 413). Predict's limit is 100,000 strains; an export of 100,000 intervals has "
        "100,001 points and also solves the quantiles at every midpoint to measure its "
        "interpolation error, about twice predict's largest quantile request. It is allowed "
        "because a solver downloads a table once per analysis, not per evaluation.")
    max_request_bytes: int = Field(
        0, ge=0, description="Largest request body outside the admin API, counted as it "
        "arrives, chunked or not (more is a 413 before any parsing). 0 (the default): "
        "derived from the point limits, JSON_BYTES_PER_NUMBER per strain and observed value "
        "plus 64 KiB (26 MB for 1,000,000 strains).")
    # Admission by cost (service/prediction/admission.py, docs/performance.md).
    request_time_budget_s: float = Field(
        10.0, gt=0, description="Longest one request may run, in seconds of the reference "
        "machine. Its work, estimated from its shape before any work starts, may take "
        "three quarters of it: the rest is for light requests sharing the cores and for the "
        "estimate's error. More is a 413 that says what to reduce. 10 s keeps an "
        "admissible request inside the balancer's 60 s server timeout on a 2-core replica "
        "at a load of several times its cores.")
    request_memory_mb: int = Field(
        384, gt=0, description="Most memory one request may need (decoded request, results, "
        "encoded answer; more is a 413). max_heavy_requests of these, plus the replica's "
        "own memory, must fit the pod's memory limit (docs/performance.md).")
    max_heavy_requests: int = Field(
        2, ge=1, description="Requests above ~50 ms of work computing at once; another is a "
        "503 with Retry-After (no queue). Light requests are not counted.")
    request_deadline_s: float = Field(
        50.0, gt=0, description="A request still computing this long after it was admitted "
        "stops (504): the balancer's server timeout (60 s) has answered its client already. "
        "A gRPC call's own deadline applies when shorter.")
    max_head_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request head (request line and headers) "
        "`surrogate-serve` reads; more is a 431 and the connection is closed. The same as "
        "the balancer's buffer (tune.bufsize), for deployments that reach replicas without it.")
    max_header_count: int = Field(
        100, ge=10, description="Most header lines one request may have (more is a 431).")
    header_timeout_s: float = Field(
        10.0, gt=0, description="A connection that has not sent a complete request head "
        "this long after it opened (or after its previous response) is closed.")
    body_timeout_s: float = Field(
        60.0, gt=0, description="A request body must arrive whole within this many seconds "
        "of the request head (else a 408 and the connection is closed).")
    log_format: Literal["json", "text"] = Field(
        "json", description="Service logs as one JSON object per line, or plain text.")
    access_log: bool = Field(True, description="Log one line per request (with request id).")
    fast_predict: bool = Field(
        True, description="Answer plain predict requests (strain, optional version or alias) "
        "by a lean ASGI path in front of FastAPI (service/api/fast_predict.py); false sends "
        "every request through the FastAPI route. Same bytes either way.")
    # Registry: uploads, live reload, database timeouts.
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest artifact or netCDF upload accepted.")
    reload_interval_s: float = Field(
        0.5, gt=0, le=60,
        description="How often each replica polls the registry for alias/version changes.")
    database_timeout_s: float = Field(
        3.0, gt=0, description="Connect timeout for the registry database (PostgreSQL).")
    grpc_port: int | None = Field(
        None, ge=1, le=65535, description="Also serve the Open Inference Protocol over gRPC "
        "on this port, in the same process (off when unset).")
    admin_port: int | None = Field(
        None, ge=1, le=65535, description="Serve the admin API (/admin) on this port only, a "
        "second listener of `surrogate-serve` on the same interface, so a network policy "
        "can keep it apart from predict clients (off when unset: /admin on the main port).")
    grpc_host: str = Field(
        "127.0.0.1", description="Interface the gRPC server binds: loopback, as "
        "`surrogate-serve --host`; a container sets 0.0.0.0 (compose, deploy/k8s).")
    listen_for_changes: bool = Field(
        True, description="On PostgreSQL, also LISTEN for change announcements so replicas "
        "swap within milliseconds; polling stays the fallback.")
    # Deployment: draining on shutdown.
    shutdown_drain_s: float = Field(
        0.0, ge=0, le=300, description="On SIGTERM, answer /readyz with 503 and keep serving "
        "this long before closing the listener, so a load balancer's health checks take the "
        "replica out before it stops accepting connections (docs/deployment.md). 0 exits at "
        "once (after the requests in flight).")
    shutdown_grace_s: float = Field(
        30.0, gt=0, le=600, description="After the drain, when the HTTP listener and the gRPC "
        "server stop accepting, how long requests and calls in flight have to finish before "
        "they are cancelled. The drain plus this must fit the orchestrator's grace period "
        "(Kubernetes terminationGracePeriodSeconds, compose stop_grace_period).")


    @model_validator(mode="after")
    def _byte_limit_follows_the_point_limits(self) -> Settings:
        if self.max_request_bytes == 0:
            self.max_request_bytes = json_values_allowed(self) * JSON_BYTES_PER_NUMBER \
                + 64 * 1024
        return self


# A double at full precision in JSON with its separator: "-1.2345678901234567e-123, ".
JSON_BYTES_PER_NUMBER = 26


def json_values_allowed(settings: Settings) -> int:
    """Most numbers a predict or OIP JSON body may hold: the strains, the observed points
    (strain and stress), and room for the options."""
    return settings.max_points_per_request + 2 * settings.max_observed_points + 1024


@lru_cache
def get_settings() -> Settings:
    return Settings()
