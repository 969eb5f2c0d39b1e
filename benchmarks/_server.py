"""A real service process for the HTTP benchmarks: `surrogate-serve` on a free loopback
port over a temporary, migrated SQLite registry holding one random-weight model version
(alias production), with the gRPC Open Inference Protocol on another free port."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.artifact import Artifact
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    seed_registry,
    service_command,
)

MODEL = "bench"
# Ten draws: prediction is cheap, so transports' own costs show (benchmarks/_transports.py).
LIGHT_MODEL = "bench-light"


@dataclass
class Server:
    artifact: Artifact
    running: ServerProcess
    grpc_port: int

    @property
    def base_url(self) -> str:
        return self.running.url

    @property
    def predict_url(self) -> str:
        return f"{self.base_url}/v1/models/{MODEL}/predict"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


@contextmanager
def serve(artifact: Artifact | None = None, quiet: bool = False) -> Iterator[Server]:
    """The deployed command (`surrogate-serve`), or with access logs off when quiet."""
    artifact = artifact or random_artifact(draws=1000, hidden_sizes=(16,), seed=0)
    with tempfile.TemporaryDirectory(prefix="surrogate-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'registry.db'}"
        seed_registry(url, MODEL, [artifact])
        seed_registry(url, LIGHT_MODEL, [random_artifact(draws=10, hidden_sizes=(16,), seed=1)])
        port, grpc_port = free_port(), free_port()
        env = {"SURROGATE_DATABASE_URL": url, "SURROGATE_GRPC_PORT": str(grpc_port),
               "SURROGATE_GRPC_HOST": "127.0.0.1"}
        if quiet:
            env["SURROGATE_ACCESS_LOG"] = "false"
        running = ServerProcess.launch(service_command(port), port, env,
                                       folder / "server.log")
        try:
            running.wait_until_ok(timeout_s=120)
            yield Server(artifact, running, grpc_port)
        finally:
            running.stop()
