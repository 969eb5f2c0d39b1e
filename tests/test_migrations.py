"""Schema discipline: migrations round-trip with real downgrades on SQLite and PostgreSQL,
the models match the migrations (`alembic check`), and the service refuses a schema that
is not at head, naming the fix."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from service.main import create_app
from service.registry.db import (
    SchemaNotAtHeadError,
    alembic_config,
    check_schema_at_head,
    make_engine,
)
from service.settings import PROJECT_ROOT, Settings
from tests.conftest import create_pg_database
from tests.service_process import random_artifact

TABLES_0001 = {"registered_models", "model_versions", "model_blobs", "model_aliases"}
TABLES = TABLES_0001 | {"model_inference_data", "audit_log", "model_version_files"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'r.db'}"
    return create_pg_database(request.getfixturevalue("postgres_server"), migrated=False)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    names = {c["name"] for c in inspect(engine).get_columns(table)}
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade_round_trips(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "head")
    assert tables(empty_url) == TABLES
    command.downgrade(config, "base")
    assert tables(empty_url) == set()
    command.upgrade(config, "head")
    assert tables(empty_url) == TABLES
    engine = make_engine(empty_url)
    check_schema_at_head(engine)
    engine.dispose()


def test_downgrade_of_0002_keeps_existing_versions_and_removes_its_columns(
    empty_url: str,
) -> None:
    """Rows written under 0001 survive 0002 (new columns get defaults) and its downgrade."""
    config = alembic_config(empty_url)
    command.upgrade(config, "0001")
    engine = make_engine(empty_url)
    data = random_artifact().to_bytes()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO registered_models (name, last_version, created_at) "
            "VALUES ('m', 1, CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO model_versions (name, version, status, created_at, manifest, "
            "metrics, sha256, size_bytes) VALUES ('m', 1, 'ready', CURRENT_TIMESTAMP, "
            "'{}', '{}', 'x', :size)"), {"size": len(data)})
        connection.execute(text("INSERT INTO model_blobs (name, version, data) "
                                "VALUES ('m', 1, :data)"), {"data": data})
    command.upgrade(config, "head")
    with engine.connect() as connection:
        tags, lineage = connection.execute(text(
            "SELECT tags, lineage FROM model_versions")).one()
    assert tags in ({}, "{}") and lineage in ({}, "{}")
    command.downgrade(config, "0001")
    assert tables(empty_url) == TABLES_0001
    assert "tags" not in columns(empty_url, "model_versions")
    assert "registered_by" not in columns(empty_url, "model_versions")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM model_versions")).scalar() == 1
        # Rebuilding the parent table on SQLite must not cascade into its children.
        assert connection.execute(text("SELECT data FROM model_blobs")).scalar() == data
    engine.dispose()


def test_alembic_check_finds_no_drift_between_models_and_migrations(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "head")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "alembic"), "-c", str(PROJECT_ROOT / "alembic.ini"),
         "check"],
        env={**os.environ, "SURROGATE_DATABASE_URL": empty_url}, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout


def test_service_refuses_to_start_on_unmigrated_database_and_names_the_fix(
    empty_url: str,
) -> None:
    with pytest.raises(SchemaNotAtHeadError, match="surrogate-serve migrate"):
        with TestClient(create_app(Settings(database_url=empty_url))):
            pass


def test_service_refuses_a_schema_behind_head(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0001")
    with pytest.raises(SchemaNotAtHeadError, match="revision 0001.*surrogate-serve migrate"):
        with TestClient(create_app(Settings(database_url=empty_url))):
            pass


def test_the_audit_log_is_append_only_in_the_database(empty_url: str) -> None:
    from sqlalchemy.exc import DatabaseError

    command.upgrade(alembic_config(empty_url), "head")
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_log (at, actor, action, details) "
            "VALUES (CURRENT_TIMESTAMP, 'alice', 'set_alias', '{}')"))
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT actor FROM audit_log")).scalar() == "alice"
    engine.dispose()
