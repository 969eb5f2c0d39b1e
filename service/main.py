"""The FastAPI application. `uvicorn service.main:app` serves it."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from service import __version__
from service.api.admin_listener import AdminListenerGuard
from service.api.body_guard import BodyGuard
from service.api.errors import install_error_handlers
from service.api.fast_predict import FastPredict
from service.api.interrupts import RequestInterrupts
from service.api.routes import admin, export, health, models, predict
from service.inference import kernel_cache
from service.lifecycle import CloseWhileDraining, Drain
from service.observability import Metrics, ObservabilityMiddleware, configure_logging
from service.observability import router as metrics_router
from service.oip import routes as oip
from service.oip.http_binary import BinaryTensorBody
from service.prediction.gate import WorkGate
from service.registry.cache import ModelCache
from service.registry.db import check_schema_at_head, make_engine, make_session_factory
from service.registry.routing import LiveRegistry
from service.settings import Settings, get_settings
from service.ui import routes as ui

logger = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001


def listen_url(engine: Engine) -> str | None:
    """On PostgreSQL, replicas also LISTEN for change announcements (faster than polling)."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.render_as_string(hide_password=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app_settings = settings or get_settings()
        engine = make_engine(app_settings.database_url,
                             connect_timeout=app_settings.database_timeout_s, must_exist=True)
        try:
            check_schema_at_head(engine)
        except Exception:
            engine.dispose()
            raise
        app.state.settings = app_settings
        # A large request's pure-Python stretches (rendering an export, building a JSON
        # answer) hold the GIL for the interpreter's switch interval at a time, 5 ms by
        # default; a small predict needs the GIL several times on its way through, so it
        # waited tens of ms behind one. 1 ms keeps small predicts quick beside it.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        configure_logging(app_settings.log_format, access_log=app_settings.access_log)
        logger.info(kernel_cache.report().describe())
        app.state.metrics.access_log = app_settings.access_log
        app.state.work_gate = WorkGate(app_settings.max_heavy_requests)
        app.state.session_factory = make_session_factory(engine)
        app.state.model_cache = ModelCache()
        # Routing table polled from the registry: live alias changes, DB-outage tolerance.
        app.state.live_registry = LiveRegistry(app.state.session_factory,
                                               app.state.model_cache,
                                               app_settings.reload_interval_s,
                                               app_settings.default_alias,
                                               listen_url=listen_url(engine)
                                               if app_settings.listen_for_changes else None)
        app.state.live_registry.start()
        grpc_listener = None
        try:
            # Imported only when on: its protocol classes would clash with an OIP client's
            # (tritonclient.grpc) in the same process.
            if app_settings.grpc_port is not None:
                from service.oip.grpc_server import GrpcListener
                grpc_listener = await GrpcListener.start(app)
                app.state.drain.on_listeners_closing(grpc_listener.close)
            yield
        finally:
            if grpc_listener is not None:
                await grpc_listener.closed()
            app.state.live_registry.stop()
            engine.dispose()

    app = FastAPI(
        title="Material surrogate service",
        version=__version__,
        description="Heteroskedastic Bayesian neural network surrogates: mean, aleatoric, "
        "epistemic and total SD of stress per strain, in physical units.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Metrics, request id, access log: one pure-ASGI middleware (cheap on the hot path).
    def loaded_versions() -> list[tuple[str, int]]:
        cache = getattr(app.state, "model_cache", None)
        return cache.loaded_versions() if cache is not None else []

    app.state.metrics = Metrics(loaded_versions,
                                lambda: getattr(app.state, "work_gate", None))
    app.state.drain = Drain()  # begun by SIGTERM (service.lifecycle.DrainingServer)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(predict.router)
    app.include_router(export.router)
    app.include_router(oip.router)
    app.include_router(metrics_router)
    app.include_router(admin.router)
    ui.install(app)  # the read-only registry pages under /ui/, and / linking to them
    # The last middleware added is the outermost: the lean predict path runs inside the
    # observability layer, so its requests are counted, logged and size-guarded too.
    app.add_middleware(FastPredict, route=predict.route())
    app.add_middleware(RequestInterrupts)  # deadline and disconnect of computing requests
    app.add_middleware(BinaryTensorBody)  # OIP binary tensors: JSON header to FastAPI
    app.add_middleware(BodyGuard)  # every body, the lean path's too, is size-bounded
    app.add_middleware(AdminListenerGuard)  # /admin only on SURROGATE_ADMIN_PORT, if set
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.add_middleware(CloseWhileDraining, drain=app.state.drain)
    return app


app = create_app()
