"""Engine and session set-up, and the schema-at-head check."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
MIGRATE_COMMAND = "surrogate-serve migrate"
# PostgreSQL channel on which writes announce routing changes at commit and replicas
# LISTEN (routing.LiveRegistry).
NOTIFY_CHANNEL = "surrogate_registry"


class SchemaNotAtHeadError(RuntimeError):
    """The database schema is missing or behind the code's migrations."""


def make_engine(url: str, connect_timeout: float = 10.0, *,
                must_exist: bool = False) -> Engine:
    """Create an engine; for SQLite, create the file's folder and enforce foreign keys.

    PostgreSQL connections are checked before use (pool_pre_ping), so after a database
    restart the pool replaces dead connections instead of failing requests, and a connect
    timeout bounds how long a call waits for an unreachable server.

    A SQLite file is checked before each use too: a connection to a file that was deleted
    or replaced since it was opened would read and write an unlinked copy, and every write
    would be lost. It is replaced instead, and with `must_exist` (the service) a missing
    file is an error rather than a new, empty registry.
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
    path = parsed.database if parsed.database and parsed.database != ":memory:" else None
    if path is not None and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # A generous busy timeout lets concurrent writers queue instead of failing at once.
    connect_args: dict[str, object] = {"timeout": 30}
    if path is not None and must_exist and not path.startswith("file:"):
        url = f"sqlite:///file:{path}?mode=rw&uri=true"  # open, never create
    engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
        if path is not None and not path.startswith("file:"):
            record.info["file_identity"] = _identity(path)

    if path is not None and not path.startswith("file:"):
        @event.listens_for(engine, "checkout")
        def _same_file(_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
            if _identity(path) != record.info.get("file_identity"):
                raise DisconnectionError(f"SQLite registry file {path} was removed or "
                                         "replaced")

    return engine


def announce_change(session: Session) -> None:
    """Tell listening replicas that aliases or versions changed. PostgreSQL delivers the
    notification at commit (and drops it on rollback); elsewhere replicas just poll."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a file, None when it does not exist."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


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
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError:
        database = engine.url.database or ""
        if engine.dialect.name != "sqlite" or os.path.exists(
                database.removeprefix("file:").split("?")[0]):
            raise
        current = None  # no file yet: nothing is migrated
    if current != head:
        raise SchemaNotAtHeadError(
            f"registry schema is at revision {current or 'none (empty database)'}, "
            f"the code needs {head}; run `{MIGRATE_COMMAND}` (or `alembic upgrade head`) "
            "against this database first"
        )
