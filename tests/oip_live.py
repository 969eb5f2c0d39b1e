"""A live service with gRPC on, for the real-client tests (tests/test_oip_clients.py,
tests/test_oip_grpc.py): model 'demo' v1 (production) and v2 (alias candidate), model
'hot' (a model with covariates temperature and rate: the session's tiny real fit), small
limits so the over-limit paths are cheap."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from service.artifact import Artifact
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


# The covariate model's strains and covariates: one temperature for all strains, a rate
# per strain (the last beyond the tested range).
HOT_STRAIN = np.linspace(-0.5, 0.5, 9)
HOT_TEMPERATURE = 310.0
HOT_RATE = np.array([0.01, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.1, 0.15])


@contextmanager
def live_service(folder: Path, covariate_model: Artifact | None = None) -> Iterator[Service]:
    url = f"sqlite:///{folder / 'registry.db'}"
    seed_registry(url, "demo", [random_artifact(seed=51), random_artifact(seed=52)])
    if covariate_model is not None:
        seed_registry(url, "hot", [covariate_model])
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


def native(service: Service, strain: np.ndarray, model: str = "demo",
           names: list[str] = OUTPUTS, **options) -> dict[str, np.ndarray]:
    """The native endpoint's answer, as arrays."""
    response = httpx.post(f"{service.http_url}/v1/models/{model}/predict",
                          json={"strain": strain.tolist(), **options}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"version": body["version"],
            **{name: np.asarray(body[name]) for name in names}}


# Every output of the covariate model's default answer (its curve model gives the scatter
# split, its covariates the condition distance).
HOT_OUTPUTS = [*OUTPUTS, "between_material_sd", "within_material_sd", "condition_distance"]


def hot_native(service: Service, rate: np.ndarray = HOT_RATE) -> dict[str, np.ndarray]:
    """The native answer for the covariate model at HOT_STRAIN, HOT_TEMPERATURE, `rate`."""
    return native(service, HOT_STRAIN, "hot", HOT_OUTPUTS, covariates={
        "temperature": HOT_TEMPERATURE, "rate": rate.tolist()})


def assert_same(result, expected: dict[str, np.ndarray], names=OUTPUTS) -> None:
    for name in names:
        np.testing.assert_array_equal(result.as_numpy(name), expected[name], err_msg=name)
