"""A real service process for client and fuzz tests: uvicorn on a free loopback port over a
migrated SQLite registry holding random-weight versions of model 'demo'."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.artifact import Artifact
from service.settings import PROJECT_ROOT
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    seed_registry,
    service_command,
)

__all__ = ["PROJECT_ROOT", "LiveServer", "live_server"]


@dataclass
class LiveServer:
    artifacts: dict[int, Artifact]
    running: ServerProcess

    @property
    def base_url(self) -> str:
        return self.running.url

    @property
    def log(self) -> Path:
        return self.running.log

    def alive(self) -> bool:
        return self.running.process.poll() is None


@contextmanager
def live_server(folder: Path, **env: str) -> Iterator[LiveServer]:
    """Model 'demo' v1 (alias production) and v2, served until the block ends."""
    url = f"sqlite:///{folder / 'registry.db'}"
    artifacts = {1: random_artifact(seed=41), 2: random_artifact(seed=42)}
    seed_registry(url, "demo", [artifacts[1], artifacts[2]], production=1)
    port = free_port()
    running = ServerProcess.launch(
        service_command(port), port,
        {"SURROGATE_DATABASE_URL": url, "SURROGATE_ACCESS_LOG": "false", **env},
        folder / "server.log")
    try:
        running.wait_until_ok()
        yield LiveServer(artifacts, running)
    finally:
        running.stop()
