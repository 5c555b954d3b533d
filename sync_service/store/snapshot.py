"""Several read connections that all see the same moment of the store.

The report reads the store in independent sections; run side by side on two cores they take
half the time, but they must still describe one moment (a run committing meanwhile must not
split the figures). How each backend gives one snapshot to several connections:

- PostgreSQL: the first connection opens a ``REPEATABLE READ READ ONLY`` transaction and
  exports its snapshot (``pg_export_snapshot()``); the others open the same kind of
  transaction and import it (``SET TRANSACTION SNAPSHOT``) while the first is still open.
- SQLite (WAL): a reader's snapshot is fixed by its first read. While one connection holds the
  writer lock (``BEGIN IMMEDIATE``) no commit can land, so readers that make their first read
  then all see the same state; the lock is let go at once (no write is made). When the writer
  lock is not free within ``lock_wait`` seconds (a long write in progress), one connection is
  given and the caller reads on it alone: still one snapshot, only not in parallel.

An in-memory SQLite store has a single connection: one is given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import SingletonThreadPool, StaticPool

log = logging.getLogger(__name__)


@contextlib.contextmanager
def shared_snapshot(
    engine: Engine, n: int, *, lock_wait: float = 0.5
) -> Iterator[list[Connection]]:
    """Up to ``n`` connections, each inside a read transaction on the same snapshot.

    Every connection is rolled back and returned to the pool on exit. Fewer than ``n`` (one) are
    given when the backend cannot share a snapshot right now (see the module docstring).
    """
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(engine.connect())
        dialect = engine.dialect.name
        conns = [first]
        if dialect == "postgresql":
            first.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            snapshot = first.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            for _ in range(n - 1):
                conn = stack.enter_context(engine.connect())
                conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
                conn.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                conns.append(conn)
        elif dialect == "sqlite":
            single = isinstance(engine.pool, (SingletonThreadPool, StaticPool))
            if n > 1 and not single:
                conns += _sqlite_readers(engine, stack, n - 1, lock_wait, first)
            else:
                _begin_sqlite_read(first)
        yield conns


def _begin_sqlite_read(conn: Connection) -> None:
    # pysqlite opens no transaction for reads; a deferred one whose first read fixes the WAL
    # snapshot, ended by the rollback the pool makes when the connection is returned.
    conn.exec_driver_sql("BEGIN")
    conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()


def _sqlite_readers(
    engine: Engine, stack: contextlib.ExitStack, extra: int, lock_wait: float, first: Connection
) -> list[Connection]:
    """``extra`` more readers on ``first``'s snapshot, or none if the writer lock is busy."""
    with engine.connect() as lock:
        timeout = lock.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        lock.exec_driver_sql(f"PRAGMA busy_timeout={int(lock_wait * 1000)}")
        try:
            lock.exec_driver_sql("BEGIN IMMEDIATE")
        except OperationalError:
            log.info("report: the store is being written; reading its sections one by one")
            lock.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout)}")
            _begin_sqlite_read(first)
            return []
        try:
            _begin_sqlite_read(first)
            readers = [stack.enter_context(engine.connect()) for _ in range(extra)]
            for conn in readers:
                _begin_sqlite_read(conn)
        finally:
            lock.exec_driver_sql("ROLLBACK")
            lock.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout)}")
    return readers
