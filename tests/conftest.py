"""Shared fixtures: a migrated registry per test (SQLite, or a real PostgreSQL server),
the app through TestClient.

Modules marked `pytestmark = pytest.mark.backends("sqlite", "postgresql")` run every test
that uses `database_url` against both databases; other modules use SQLite only.
PostgreSQL comes from a throwaway server the session starts (tests/postgres_server.py);
without PostgreSQL binaries those parameters are skipped, unless
SURROGATE_REQUIRE_POSTGRES=1 (set by `.ci/run`), which turns that into a failure.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import training  # noqa: F401  (sets PyTensor's BLAS flags before any test imports PyMC)

# The suite runs one test process per core; held-out fits in each would otherwise add one
# worker process per core to each (and import PyMC in every one of them).
os.environ.setdefault("SURROGATE_FIT_WORKERS", "1")
from service.main import create_app
from service.registry.db import make_engine, make_session_factory, upgrade_to_head
from service.registry.tables import Base
from service.settings import Settings
from tests.cli_helpers import CliFit, tiny_cli_fit
from tests.parallel import (
    keep_module_fixtures_on_one_worker,
    pytensor_compiledir_per_worker,
    slow_first,
    start_kernel_warmup,
)
from tests.postgres_server import PostgresServer, find_pg_bin

pytensor_compiledir_per_worker()  # nothing above imports PyTensor; tests do, later

PG_TEMPLATE = "registry_template"
_database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run database tests against these registries "
        "(sqlite, postgresql)")
    start_kernel_warmup(config)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker (`make test`)
        slow_first(items)
        keep_module_fixtures_on_one_worker(items)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        metafunc.parametrize("db_backend", marker.args, indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, with a migrated template database."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("SURROGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries not found (scripts/system-deps.sh --ci installs "
                        "the Debian postgresql package)")
        pytest.skip("PostgreSQL binaries not installed")
    server = PostgresServer.create(bin_dir)
    try:
        server.start()
        admin = make_engine(server.url())
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"CREATE DATABASE {PG_TEMPLATE}"))
        admin.dispose()
        upgrade_to_head(server.url(PG_TEMPLATE))
        yield server
    finally:
        server.destroy()


def create_pg_database(server: PostgresServer, migrated: bool = True) -> str:
    """A fresh database on the session server (a copy of the migrated template)."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    template = f" TEMPLATE {PG_TEMPLATE}" if migrated else ""
    admin = make_engine(server.url())
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"CREATE DATABASE {name}{template}"))
    admin.dispose()
    return server.url(name)


@pytest.fixture(scope="session")
def _pg_shared_database(postgres_server: PostgresServer) -> Iterator[tuple[str, Engine]]:
    url = create_pg_database(postgres_server)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def pg_database_url(_pg_shared_database: tuple[str, Engine]) -> str:
    """A migrated PostgreSQL database with empty registry tables for one test.

    Emptying one database (TRUNCATE) is several times faster than creating one per test;
    tests that need a database of their own call `create_pg_database`.
    """
    url, engine = _pg_shared_database
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test is slower)."""
    path = tmp_path_factory.mktemp("template") / "registry.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def shared_tiny_fit(tmp_path_factory: pytest.TempPathFactory, migrated_template: Path) -> CliFit:
    """One TINY `surrogate-train fit` into a registry of its own, for the tests that only
    read what it wrote and registered. Mark them `xdist_group("tiny_cli_fit")`, so that
    under pytest-xdist they share one worker and this one fit."""
    folder = tmp_path_factory.mktemp("tiny-cli-fit")
    shutil.copy(migrated_template, folder / "registry.db")
    return tiny_cli_fit(folder, f"sqlite:///{folder / 'registry.db'}")


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if db_backend == "postgresql":
        return request.getfixturevalue("pg_database_url")
    path = tmp_path / "registry.db"
    shutil.copy(request.getfixturevalue("migrated_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def covariate_fit(tmp_path_factory: pytest.TempPathFactory):  # -> covariate_fit.CovariateFit
    """One tiny real fit of a model with covariates (and its report) per test session
    (about 20 s), shared by the export, OIP, web page and report tests."""
    from tests.covariate_fit import fit_covariate_model

    return fit_covariate_model(tmp_path_factory.mktemp("covariate_report"))
