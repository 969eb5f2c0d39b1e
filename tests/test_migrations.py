from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from service.main import create_app
from service.registry.db import (
    SchemaNotAtHeadError,
    alembic_config,
    check_schema_at_head,
    make_engine,
)
from service.settings import Settings

TABLES = {"registered_models", "model_versions", "model_blobs", "model_aliases"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade_round_trips_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert tables(url) == TABLES
    command.downgrade(config, "base")
    assert tables(url) == set()
    command.upgrade(config, "head")
    engine = make_engine(url)
    check_schema_at_head(engine)
    engine.dispose()


def test_service_refuses_to_start_on_unmigrated_database_and_names_the_fix(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaNotAtHeadError, match="surrogate-serve migrate"):
        with TestClient(create_app(settings)):
            pass
