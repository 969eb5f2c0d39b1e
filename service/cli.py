"""`surrogate-serve`: run the API, migrate the registry schema, or fill the kernel cache."""

from __future__ import annotations

import logging

import typer
import uvicorn

from service.http_protocol import ServiceProtocol
from service.registry.db import upgrade_to_head
from service.settings import get_settings

cli = typer.Typer(add_completion=False, help="Serve the material surrogate API.")


@cli.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes (more than one: no drain on "
                                "SIGTERM; run one process per replica behind a balancer)."),
) -> None:
    """Serve the API (the default command). On SIGTERM: drain, then stop
    (SURROGATE_SHUTDOWN_DRAIN_S, docs/deployment.md)."""
    if ctx.invoked_subcommand is not None:
        return
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"API: http://{shown}:{port}/ (OpenAPI docs: /docs)   "
               f"UI: http://{shown}:{port}/ui/", err=True)
    # The head and body deadlines and whole-response writes are in the HTTP protocol; the
    # body's size limit in the app (BodyGuard). uvicorn's own access lines are off: the
    # service writes one per request, with its request id (SURROGATE_ACCESS_LOG).
    options = {"host": host, "port": port, "http": ServiceProtocol, "access_log": False}
    settings = get_settings()
    if workers > 1:
        if settings.admin_port is not None:
            raise typer.BadParameter("SURROGATE_ADMIN_PORT needs --workers 1")
        uvicorn.run("service.main:app", workers=workers, **options)
        return
    from service.lifecycle import DrainingServer
    from service.main import app

    config = uvicorn.Config(app, timeout_graceful_shutdown=settings.shutdown_grace_s, **options)
    sockets = None
    if settings.admin_port is not None:  # the admin API's own listener (admin_listener.py)
        typer.echo(f"admin API: http://{shown}:{settings.admin_port}/admin", err=True)
        sockets = [config.bind_socket(),
                   uvicorn.Config(app, host=host, port=settings.admin_port).bind_socket()]
    DrainingServer(config, app.state.drain, settings.shutdown_drain_s).run(sockets=sockets)


@cli.command()
def migrate() -> None:
    """Bring the registry database (SURROGATE_DATABASE_URL) to the latest schema."""
    upgrade_to_head(get_settings().database_url)
    typer.echo("registry schema is at head")


@cli.command()
def warmup() -> None:
    """Compile the prediction kernels (summaries and quantiles) into their on-disk cache
    (NUMBA_CACHE_DIR), so that later starts, also from a read-only copy of that directory,
    load them instead."""
    logging.basicConfig(level=logging.WARNING)
    # Importing compiles every variant.
    from service.inference import kernel, kernel_cache, quantile_kernel  # noqa: F401

    report = kernel_cache.report()
    typer.echo(report.describe())
    if report.directory is None or (report.compiled and not report.writable):
        typer.echo("error: the compiled kernel could not be cached: set NUMBA_CACHE_DIR to a "
                   "writable directory", err=True)
        raise typer.Exit(1)


def main() -> None:
    cli()
