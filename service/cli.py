"""`surrogate-serve`: run the API, or migrate the registry schema."""

from __future__ import annotations

import typer
import uvicorn

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
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"API: http://{shown}:{port}/ (OpenAPI docs: /docs)   "
                   f"UI: http://{shown}:{port}/ui/", err=True)
        uvicorn.run("service.main:app", host=host, port=port, workers=workers)


@cli.command()
def migrate() -> None:
    """Bring the registry database (SURROGATE_DATABASE_URL) to the latest schema."""
    upgrade_to_head(get_settings().database_url)
    typer.echo("registry schema is at head")


def main() -> None:
    cli()
