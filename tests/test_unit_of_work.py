"""The registry's unit of work: a write and its audit entry are committed together at the
end of the block, or rolled back together by any exception; the session is closed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.registry.db import make_engine, make_session_factory
from service.registry.reads import list_audit, list_models
from service.registry.tables import RegisteredModel
from service.registry.unit_of_work import unit_of_work
from service.registry.writes import register, set_alias
from tests.service_process import random_artifact

pytestmark = pytest.mark.backends("sqlite", "postgresql")


class Interrupted(BaseException):
    """Not an Exception: cancellation and interrupts must roll back too."""


def test_a_unit_commits_its_write_with_the_audit_entry_and_closes(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        register(session, "steel", random_artifact().to_bytes(), actor="alice")
    assert not session.in_transaction()  # closed: its connection went back to the pool
    with sessions() as reader:
        assert [m["name"] for m in list_models(reader)] == ["steel"]
        assert [(e.actor, e.action) for e in list_audit(reader)] == [
            ("alice", "register_version")]
    engine.dispose()


@pytest.mark.parametrize("failure", [RuntimeError, Interrupted])
def test_any_exception_rolls_back_the_change_and_its_audit_entry(
    database_url: str, failure: type[BaseException]
) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        register(session, "steel", random_artifact().to_bytes(), actor="alice")
    with pytest.raises(failure):
        with unit_of_work(sessions) as session:
            set_alias(session, "steel", "production", 1, actor="bob")
            register(session, "iron", random_artifact().to_bytes(), actor="bob")
            raise failure("after the writes, before the end of the unit")
    with sessions() as reader:
        assert [m["name"] for m in list_models(reader)] == ["steel"]
        assert list_models(reader)[0]["aliases"] == {}
        assert [e.actor for e in list_audit(reader)] == ["alice"]
    engine.dispose()


def sqlite_copy(template: Path, folder: Path) -> str:
    """A migrated SQLite registry of this test's own (PostgreSQL writes lock the rows they
    decide on instead of the whole database, so these tests are SQLite's only)."""
    shutil.copy(template, folder / "registry.db")
    return str(folder / "registry.db")


def test_on_sqlite_the_unit_holds_the_write_lock_from_its_first_read(
    migrated_template: Path, tmp_path: Path
) -> None:
    """A writer that read first cannot be overtaken by another writer before it writes
    (which in WAL mode would fail it with 'database is locked')."""
    path = sqlite_copy(migrated_template, tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    with unit_of_work(make_session_factory(engine)) as session:
        assert session.scalars(select(RegisteredModel)).all() == []  # a read, nothing more
        other = sqlite3.connect(path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("INSERT INTO registered_models (name, last_version, tags, created_at) "
                          "VALUES ('x', 0, '{}', '2026-01-01 00:00:00')")
        other.close()
    engine.dispose()


def test_a_plain_session_outside_a_unit_takes_no_early_lock(migrated_template: Path,
                                                            tmp_path: Path) -> None:
    path = sqlite_copy(migrated_template, tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        other = sqlite3.connect(path, timeout=0)
        other.execute("INSERT INTO registered_models (name, last_version, tags, created_at) "
                      "VALUES ('x', 0, '{}', '2026-01-01 00:00:00')")
        other.commit()
        other.close()
    engine.dispose()
