"""One unit of work: every registry write runs inside one, so a change and its audit entry
are committed together or not at all.

`with unit_of_work(sessions) as session:` commits when the block ends normally, rolls back
on any exception (a refused input, a lost race, a dropped connection, a cancelled task)
and always closes the session, giving its connection back to the pool. The functions in
`writes.py` take that session and never commit themselves: the caller decides what one
unit is (the admin API: one request; `surrogate-train`: a version with its files), as
SQLAlchemy advises - the session's lifecycle stays outside the functions that use it.

On SQLite the unit's transaction starts with `BEGIN IMMEDIATE`, taking the database's
write lock with its first statement, before its first read. Writers then queue on the lock
(the engine's busy timeout) instead of reading, deciding, and failing with "database is
locked" when another writer committed in between (WAL mode cannot upgrade a read snapshot
that went stale). Work before the first statement (checking an uploaded artifact) holds
no lock. PostgreSQL needs no such step: the writes lock the rows they decide on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

SessionFactory = Callable[[], Session]


@contextmanager
def unit_of_work(sessions: SessionFactory) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back if the
    block raises; closed either way."""
    session = sessions()
    if session.get_bind().dialect.name == "sqlite":
        event.listen(session, "after_begin", _take_sqlite_write_lock)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _take_sqlite_write_lock(_session: Session, _transaction: Any,
                            connection: Connection) -> None:
    # The driver has not begun a transaction yet (it does so before the first write
    # only): this one begins it, holding the write lock.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
