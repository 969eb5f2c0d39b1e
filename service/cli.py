"""`surrogate-serve`: run the API, or migrate the registry schema."""

from __future__ import annotations

import typer
import uvicorn

from service.http_protocol import HeadTimeoutProtocol
from service.registry.db import upgrade_to_head
from service.settings import get_settings

cli = typer.Typer(add_completion=False, help="Serve the material surrogate API.")


@cli.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the API (the default command)."""
    if ctx.invoked_subcommand is None:
        # The head deadline is in the HTTP protocol; the body's in the app (BodyGuard).
        # uvicorn's own access lines are off: the service writes one per request, with
        # its request id (SURROGATE_ACCESS_LOG).
        uvicorn.run("service.main:app", host=host, port=port, workers=workers,
                    http=HeadTimeoutProtocol, access_log=False)


@cli.command()
def migrate() -> None:
    """Bring the registry database (SURROGATE_DATABASE_URL) to the latest schema."""
    upgrade_to_head(get_settings().database_url)
    typer.echo("registry schema is at head")


def main() -> None:
    cli()
