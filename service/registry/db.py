"""Engine and session set-up, and the schema-at-head check."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
MIGRATE_COMMAND = "surrogate-serve migrate"


class SchemaNotAtHeadError(RuntimeError):
    """The database schema is missing or behind the code's migrations."""


def make_engine(url: str, connect_timeout: float = 10.0) -> Engine:
    """Create an engine; for SQLite, create the file's folder and enforce foreign keys.

    PostgreSQL connections are checked before use (pool_pre_ping), so after a database
    restart the pool replaces dead connections instead of failing requests, and a connect
    timeout bounds how long a call waits for an unreachable server.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # TCP keepalives and a user timeout also bound calls on a connection whose server
        # vanished without closing it (network partition, host gone), not just new ones.
        return create_engine(url, pool_pre_ping=True, connect_args={
            "connect_timeout": max(1, round(connect_timeout)),
            "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
            "keepalives_count": 3, "tcp_user_timeout": 15_000,
        })
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A generous busy timeout lets concurrent writers queue instead of failing at once.
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Apply all migrations (what `surrogate-serve migrate` runs)."""
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite folder if needed
    command.upgrade(alembic_config(url), "head")


def check_schema_at_head(engine: Engine) -> None:
    """Refuse to run against a schema that is not at the migrations' head, saying the fix."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise SchemaNotAtHeadError(
            f"registry schema is at revision {current or 'none (empty database)'}, "
            f"the code needs {head}; run `{MIGRATE_COMMAND}` (or `alembic upgrade head`) "
            "against this database first"
        )
