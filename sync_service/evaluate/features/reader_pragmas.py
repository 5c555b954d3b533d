"""Speed path: a small SQLite page cache on the connections that read the features.

What it speeds up: the parallel reader (:mod:`sync_service.evaluate.features.parallel`) reads
each account range's index pages once. The store's connections keep a 64 MiB page cache
(``SQLITE_CACHE_KIB``, sized for a sync's random index updates); on a reader it only holds
pages it will not read again (three to five connections x 64 MiB) and filling it costs time,
so a reader's connection uses 8 MiB while it reads and gets the usual cache back after. The
match stage's reader uses it too (:func:`sync_service.match.stage.match_all`): its full scan
for the groups' bounds would fill 64 MiB (57 MiB of peak RSS at 1M contacts, same time).
By how much: ``BENCHMARKS.md`` (rules, "Two readers") lists the 8 MiB reader cache among the
changes that took the features pass from ~82,000 to ~270,000 contacts/s, without a figure of
its own; a same-run A/B with this switch is the way to measure it.

Switch: ``SYNC_SPEED_PATHS_OFF=reader_pragmas`` (see :mod:`canonical.speed_paths`), or
``enabled=False``. Reference twin: the connection as the engine made it (no PRAGMA);
``tests/evaluate/features/test_reader_pragmas.py`` proves the features equal either way.
PostgreSQL connections are never touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical.speed_paths import speed_path_on
from sync_service.store.engine import SQLITE_CACHE_KIB

#: Page cache of a SQLite connection while it reads features.
READER_CACHE_KIB = 8 * 1024


@contextlib.contextmanager
def reader_pragmas(conn: Connection, *, enabled: bool | None = None) -> Iterator[None]:
    """A small SQLite page cache while ``conn`` reads features, the usual one after.

    Args:
        conn: a connection of the store (SQLite or PostgreSQL).
        enabled: use the speed path; None: as ``SYNC_SPEED_PATHS_OFF`` says.
    """
    if enabled is None:
        enabled = speed_path_on("reader_pragmas")
    if not enabled or conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{READER_CACHE_KIB}")
    try:
        yield
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
