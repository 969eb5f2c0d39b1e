"""Version numbers under concurrent registration, against real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from service.registry.db import make_engine, make_session_factory
from service.registry.tables import ModelVersion
from service.testing import random_artifact
from training.pipeline import register_artifact

pytestmark = pytest.mark.backends("sqlite", "postgresql")

WRITERS = 20


def test_twenty_concurrent_registrations_get_twenty_consecutive_versions(
    database_url: str,
) -> None:
    data = random_artifact(draws=10).to_bytes()
    start = threading.Barrier(WRITERS)

    def register(_: int) -> int:
        start.wait(timeout=30)  # all writers hit the database at the same moment
        return register_artifact(database_url, "steel", data)

    with ThreadPoolExecutor(WRITERS) as pool:
        versions = list(pool.map(register, range(WRITERS), timeout=120))

    assert sorted(versions) == list(range(1, WRITERS + 1))
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        stored = session.scalars(select(ModelVersion.version)
                                 .where(ModelVersion.name == "steel")).all()
    engine.dispose()
    assert sorted(stored) == list(range(1, WRITERS + 1))
