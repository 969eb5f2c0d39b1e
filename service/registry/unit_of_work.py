"""One unit of work: every registry write runs inside one, so a change and its audit entry
are committed together or not at all.

`with unit_of_work(sessions) as session:` commits when the block ends normally, rolls back
on any exception (a refused input, a lost race, a dropped connection, a cancelled task)
and always closes the session, giving its connection back to the pool. The functions in
`writes.py` take that session and never commit themselves: the caller decides what one
unit is (the admin API: one request; `surrogate-train`: a version with its files), as
SQLAlchemy advises - the session's lifecycle stays outside the functions that use it.

On SQLite the unit starts with `BEGIN IMMEDIATE`, taking the database's write lock before
the first read. Writers then queue on the lock (the engine's busy timeout) instead of
reading, deciding, and failing with "database is locked" when another writer committed in
between (WAL mode cannot upgrade a read snapshot that went stale). PostgreSQL needs no
such step: the writes lock the rows they decide on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

SessionFactory = Callable[[], Session]


@contextmanager
def unit_of_work(sessions: SessionFactory) -> Iterator[Session]:
    """A session whose work is committed at the end of the block, or rolled back if the
    block raises; closed either way."""
    session = sessions()
    try:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
