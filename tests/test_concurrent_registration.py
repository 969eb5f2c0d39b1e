"""Version numbers under concurrent registration, against real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from service.registry.db import make_engine, make_session_factory
from service.registry.tables import ModelVersion
from tests.service_process import (
    ServerProcess,
    free_port,
    random_artifact,
    register_concurrently,
    service_command,
)
from training.registration import FitRegistration, register_in_database

pytestmark = pytest.mark.backends("sqlite", "postgresql")

WRITERS = 20


def test_twenty_concurrent_registrations_get_twenty_consecutive_versions(
    database_url: str,
) -> None:
    data = random_artifact(draws=10).to_bytes()
    start = threading.Barrier(WRITERS)

    def register(_: int) -> int:
        start.wait(timeout=30)  # all writers hit the database at the same moment
        return register_in_database(database_url, FitRegistration("steel", data))

    with ThreadPoolExecutor(WRITERS) as pool:
        versions = list(pool.map(register, range(WRITERS), timeout=120))

    assert sorted(versions) == list(range(1, WRITERS + 1))
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        stored = session.scalars(select(ModelVersion.version)
                                 .where(ModelVersion.name == "steel")).all()
    engine.dispose()
    assert sorted(stored) == list(range(1, WRITERS + 1))


def test_twenty_concurrent_registrations_through_the_admin_api(
    database_url: str, tmp_path: Path
) -> None:
    """Each register request gives its database connection back before it waits for the
    routing refresh, so twenty at once neither exhaust the pool nor stall reads."""
    port = free_port()
    token = "tok-concurrent"
    server = ServerProcess.launch(service_command(port), port, {
        "SURROGATE_DATABASE_URL": database_url, "SURROGATE_ADMIN_TOKEN": token,
        "SURROGATE_ACCESS_LOG": "false"}, tmp_path / "server.log")
    data = [random_artifact(draws=10, seed=seed).to_bytes() for seed in range(WRITERS)]
    try:
        server.wait_until_ok()
        results = register_concurrently(server.url, token, "steel", data)
    finally:
        server.stop()
    statuses = [result.status for result in results]
    assert statuses == [201] * WRITERS, (statuses, server.log.read_text()[-2000:])
    assert sorted(result.version for result in results) == list(range(1, WRITERS + 1))
