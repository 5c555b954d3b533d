"""Speed path: the first load of a table builds its secondary indexes once, at the end.

A first sync of a large org inserts millions of rows whose index keys (e-mails, account ids,
record ids) come in no particular order. Each row then updates a random page of every index,
and each batch's commit writes most of those pages out again: at a million contacts SQLite
spent 2.5 times as long on that as on the rows themselves, and it grows with the table. An index
built once over the loaded table is a sort instead: about a second per index per million rows.

So a stream that reads from the start into an empty table drops the table's secondary indexes
(never the primary key: the upserts' ``ON CONFLICT`` needs it) and builds them again when the
stream ends, whichever way it ends. A process killed in between leaves them missing: every
stream restores its table's missing indexes before it reads, and so does every start of the
service after its migrations, so the next run puts them back. Queries are correct without them,
only slower.

By how much (``BENCHMARKS.md``, Salesforce sync, item 1): the Bulk sync of 1.9M records went
from 22,435 to 38,877 records/s.

Switch: ``SYNC_SPEED_PATHS_OFF=deferred_indexes`` (see :mod:`canonical.speed_paths`), or
``deferred_indexes(..., enabled=False)``. Reference twin: the indexes kept during the load;
``tests/store/test_initial_load.py`` loads the same rows both ways and finds the same rows and
indexes. The restoring of missing indexes is not a speed path: it always runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from canonical.errors import StoreError
from canonical.speed_paths import speed_path_on

log = logging.getLogger(__name__)


def _present(conn: Connection, table: sa.Table) -> set[str]:
    """The names of ``table``'s indexes, read from the catalog.

    Not through the inspector: SQLite's cannot reflect an expression index (it warns and
    leaves it out), and only the names are needed.
    """
    if conn.dialect.name == "sqlite":
        names = sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t")
    else:
        names = sa.text(
            "SELECT indexname FROM pg_indexes "
            "WHERE tablename = :t AND schemaname = current_schema()"
        )
    return {str(name) for name in conn.execute(names, {"t": table.name}).scalars()}


def _declared(table: sa.Table) -> list[sa.Index]:
    return sorted(table.indexes, key=lambda ix: str(ix.name))


def missing_indexes(conn: Connection, table: sa.Table) -> list[str]:
    """Names of the indexes the schema declares on ``table`` that the database lacks."""
    present = _present(conn, table)
    return [str(ix.name) for ix in _declared(table) if ix.name not in present]


def _lock_for_index_changes(conn: Connection, table: sa.Table) -> None:
    """On PostgreSQL, hold ``table`` against any other index drop or build until commit.

    ``CREATE INDEX`` only takes a SHARE lock, which does not conflict with itself: two
    builders of the same index (a first load rebuilding what it dropped, and another source's
    stream restoring "missing" indexes at its start) race in the catalog, and ``IF NOT EXISTS``
    does not save the loser (a unique violation on ``pg_class``). This self-conflicting lock
    makes the second wait, then look again. SQLite serialises writers on its own.
    """
    if conn.dialect.name == "postgresql":
        name = conn.dialect.identifier_preparer.format_table(table)
        conn.execute(sa.text(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"))


def restore_indexes(conn: Connection, table: sa.Table) -> list[str]:
    """Build the declared indexes ``table`` lacks; return their names. The caller commits."""
    if not missing_indexes(conn, table):
        return []  # the usual case: no lock taken
    _lock_for_index_changes(conn, table)
    missing = set(missing_indexes(conn, table))  # again, under the lock
    for ix in _declared(table):
        if ix.name in missing:
            # IF NOT EXISTS: SQLite has no lock above; a runner of an older version may race
            conn.execute(sa.schema.CreateIndex(ix, if_not_exists=True))
    return sorted(missing)


def restore_all(engine: Engine, tables: list[sa.Table]) -> None:
    """Restore the missing indexes of ``tables`` (after a first load that was killed).

    Raises:
        StoreError: when an index cannot be built (disk full, a lock held too long).
    """
    try:
        with engine.begin() as conn:
            for table in tables:
                built = restore_indexes(conn, table)
                if built:
                    log.warning(
                        "rebuilt %d index(es) of %s left out by an interrupted first load: %s",
                        len(built),
                        table.name,
                        ", ".join(built),
                    )
    except SQLAlchemyError as exc:
        msg = (
            f"cannot rebuild the indexes of the store: {str(exc).splitlines()[0]}; "
            "free disk space or stop the process holding the store, then run again"
        )
        raise StoreError(msg) from None


def _is_empty(conn: Connection, table: sa.Table) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


@contextmanager
def deferred_indexes(
    engine: Engine, table: sa.Table, *, first_load: bool, enabled: bool | None = None
) -> Iterator[bool]:
    """Within the block, ``table`` has no secondary indexes if this is its first load.

    Yields whether the indexes were deferred: only when ``first_load`` (the stream reads from
    the start) and the table holds no row at all (of any source: a table other sources
    already filled keeps its indexes, as readers may be using them), and the speed path is on
    (``enabled``; None: unless ``SYNC_SPEED_PATHS_OFF`` names ``deferred_indexes``).

    Raises:
        StoreError: when the indexes cannot be built at the end of a block that succeeded
            (after a block that raised, the block's error is raised and this one logged).
    """
    dropped: list[sa.Index] = []
    if enabled is None:
        enabled = speed_path_on("deferred_indexes")
    if first_load and enabled:  # an incremental read asks the catalog nothing
        with engine.begin() as conn:
            # Two first loads into one table (the Salesforce and Gainsight contacts, synced
            # side by side on PostgreSQL) would both read it, then both need the exclusive lock
            # to drop its indexes: a deadlock. Taken first, the lock makes the second wait and
            # then find the indexes already gone.
            _lock_for_index_changes(conn, table)
            if _is_empty(conn, table):
                present = _present(conn, table)
                dropped = [ix for ix in _declared(table) if ix.name in present]
            for ix in dropped:
                ix.drop(conn)
    if dropped:
        log.info("first load of %s: its %d index(es) built at the end", table.name, len(dropped))
    failed = True
    try:
        yield bool(dropped)
        failed = False
    finally:
        if dropped:
            _rebuild(engine, table, failed=failed)


def _rebuild(engine: Engine, table: sa.Table, *, failed: bool) -> None:
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            built = restore_indexes(conn, table)
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0]
        if failed:  # the block's own error is the one to raise; the next run rebuilds them
            log.error("indexes of %s not rebuilt (the next run does): %s", table.name, reason)
            return
        msg = (
            f"cannot build the indexes of {table.name} after its first load: {reason}; "
            "free disk space and run again (the rows are stored; the next run builds them)"
        )
        raise StoreError(msg) from None
    log.info(
        "built %d index(es) of %s in %.1f s", len(built), table.name, time.perf_counter() - started
    )
