"""The in-memory routing table: resolution from memory, background swap, memory bound."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.orm import Session

from service.registry.cache import ModelCache
from service.registry.db import make_engine, make_session_factory
from service.registry.routing import LiveRegistry
from service.registry.writes import register, set_alias
from tests.service_process import random_artifact

pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def live(database_url: str):
    engine = make_engine(database_url)
    registry = LiveRegistry(make_session_factory(engine), ModelCache(), interval_s=60,
                            spare_versions=2)
    yield registry
    engine.dispose()


def test_alias_changes_are_served_only_after_the_next_poll_loaded_them(
    live: LiveRegistry, session: Session
) -> None:
    for seed in (1, 2):
        register(session, "m", random_artifact(seed=seed).to_bytes(), actor="test")
    set_alias(session, "m", "production", 1, actor="test")
    session.commit()
    live.refresh()
    assert live.resolve(session, "m").version == 1
    assert live.cache.loaded_versions() == [("m", 1)]  # latest (2) is not preloaded
    set_alias(session, "m", "production", 2, actor="test")
    session.commit()
    assert live.resolve(session, "m").version == 1  # not polled yet: the old routing
    live.refresh()
    assert live.cache.loaded_versions() == [("m", 1), ("m", 2)]
    assert live.resolve(session, "m").version == 2
    assert live.status()["serving"] == {"m": {"production": 2}}


def test_loaded_versions_no_alias_needs_are_unloaded_beyond_the_spares(
    live: LiveRegistry, session: Session
) -> None:
    for seed in range(6):
        register(session, "m", random_artifact(seed=seed, draws=10).to_bytes(), actor="test")
    set_alias(session, "m", "production", 6, actor="test")
    session.commit()
    live.refresh()
    for version in range(1, 7):  # explicit-version requests load old versions on demand
        live.posterior(session, live.resolve(session, "m", version=version))
    assert len(live.cache.loaded_versions()) == 6
    live.refresh()
    # production's version plus the two most recently used others
    assert live.cache.loaded_versions() == [("m", 4), ("m", 5), ("m", 6)]


@pytest.mark.backends("postgresql")
def test_on_postgresql_a_change_is_picked_up_at_once_by_listen_notify(
    database_url: str, session: Session
) -> None:
    """Poll interval 30 s: only the NOTIFY sent with the commit can explain a fast swap."""
    for seed in (1, 2):
        register(session, "m", random_artifact(seed=seed).to_bytes(), actor="test")
    set_alias(session, "m", "production", 1, actor="test")
    session.commit()
    engine = make_engine(database_url)
    live = LiveRegistry(make_session_factory(engine), ModelCache(), interval_s=30,
                        listen_url=database_url)
    live.start()
    try:
        assert live.resolve(session, "m").version == 1
        time.sleep(0.5)  # the listener has connected and issued LISTEN
        set_alias(session, "m", "production", 2, actor="test")
        session.commit()
        moved = time.monotonic()
        while live.resolve(session, "m").version != 2:
            assert time.monotonic() - moved < 3, "the notification did not wake the poller"
            time.sleep(0.01)
        print(f"\nswapped {time.monotonic() - moved:.3f} s after the commit (poll: 30 s)")
    finally:
        live.stop()
        engine.dispose()
