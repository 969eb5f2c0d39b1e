"""A live service with gRPC on, for the real-client tests (tests/test_oip_clients.py,
tests/test_oip_grpc.py): model 'demo' v1 (production) and v2 (alias candidate), small
limits so the over-limit paths are cheap."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from service.registry.db import make_engine, make_session_factory
from service.registry.writes import set_alias
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    seed_registry,
    service_command,
)

MAX_POINTS = 50_000
MAX_BYTES = 1_000_000
OUTPUTS = ["mean", "aleatoric_sd", "epistemic_sd", "total_sd", "outside_training_domain"]
NUMERIC = OUTPUTS[:4]
STRAIN = np.linspace(-0.6, 0.6, 257)  # crosses the training domain's edges (flags)


@dataclass
class Service:
    http_url: str
    grpc_address: str
    log: Path

    @property
    def http_address(self) -> str:
        return self.http_url.removeprefix("http://")


@contextmanager
def live_service(folder: Path) -> Iterator[Service]:
    url = f"sqlite:///{folder / 'registry.db'}"
    seed_registry(url, "demo", [random_artifact(seed=51), random_artifact(seed=52)])
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        set_alias(session, "demo", "candidate", 2, actor="test")
        session.commit()
    engine.dispose()
    port, grpc_port = free_port(), free_port()
    running = ServerProcess.launch(
        service_command(port), port,
        {"SURROGATE_DATABASE_URL": url, "SURROGATE_ACCESS_LOG": "false",
         "SURROGATE_GRPC_PORT": str(grpc_port), "SURROGATE_GRPC_HOST": "127.0.0.1",
         "SURROGATE_MAX_POINTS_PER_REQUEST": str(MAX_POINTS),
         "SURROGATE_MAX_REQUEST_BYTES": str(MAX_BYTES)},
        folder / "server.log")
    try:
        running.wait_until_ok()
        yield Service(running.url, f"127.0.0.1:{grpc_port}", running.log)
    finally:
        running.stop()


def native(service: Service, strain: np.ndarray, **options) -> dict[str, np.ndarray]:
    """The native endpoint's answer, as arrays."""
    response = httpx.post(f"{service.http_url}/v1/models/demo/predict",
                          json={"strain": strain.tolist(), **options}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"version": body["version"],
            **{name: np.asarray(body[name]) for name in OUTPUTS}}


def assert_same(result, expected: dict[str, np.ndarray], names=OUTPUTS) -> None:
    for name in names:
        np.testing.assert_array_equal(result.as_numpy(name), expected[name], err_msg=name)
