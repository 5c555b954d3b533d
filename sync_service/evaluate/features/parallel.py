"""The thread-parallel reader: feature chunks read by several connections ahead of the caller.

See :func:`stream_feature_chunks`. The readers' SQLite page cache is a speed path of its own
(:mod:`sync_service.evaluate.features.reader_pragmas`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from canonical.model import FieldType
from rules import Policy
from sync_service.evaluate.features import chunks
from sync_service.evaluate.features.chunks import DEFAULT_CHUNK, FeatureChunk
from sync_service.evaluate.features.query import FeatureQuery, read_typed
from sync_service.evaluate.features.reader_pragmas import reader_pragmas
from sync_service.sync.readahead import ReadAhead, read_ahead

# readers of the features: one per core of the small host the service is sized for
DEFAULT_WORKERS = 2


def stream_feature_chunks(
    engine: Engine,
    policy: Policy,
    now: datetime,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = DEFAULT_WORKERS,
    scoped: bool = False,
) -> Iterator[FeatureChunk]:
    """:func:`~.chunks.iter_feature_chunks`, read by ``workers`` threads ahead of the caller.

    While the caller evaluates and writes chunk k, the database computes the next ones: SQL
    (the GIL released), polars and the caller's work overlap, and with two workers the two
    cores of a small host both read. Each worker has its own connection and takes the next
    account range (:class:`_RangeFeed`) when done with one; the temporary tables of
    :meth:`FeatureQuery.prepare` are filled once, on a connection of their own, while the
    workers already read, and their few rows are read through it. Chunks come out as they are
    ready; at most ``workers`` wait, besides the ones being built, so memory stays bounded by
    ``chunk_size``.
    Errors in a reader are raised here. An in-memory SQLite store (one connection) is read by
    one worker.
    """
    if workers <= 1 or isinstance(engine.pool, (SingletonThreadPool, StaticPool)):

        def one_reader() -> Iterator[FeatureChunk]:
            # the worker opens, cleans up (temporary tables) and closes the connection itself
            with engine.connect() as conn:
                yield from chunks.iter_feature_chunks(
                    conn, policy, now, chunk_size=chunk_size, scoped=scoped
                )

        return read_ahead(one_reader(), name="features-reader")
    return _parallel_chunks(engine, policy, now, chunk_size, workers, scoped)


class _Prepared:
    """A connection filling one temporary table of prepare() in a thread; then read through.

    Each table is filled on a connection of its own, side by side (the readers wait for them);
    readers then take turns on it: their queries there are small (the strays of a range).
    """

    def __init__(self, conn: Connection, fill: Callable[[Connection], None], table: str) -> None:
        self.conn = conn
        self.table = table
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._fill, fill),
            name=f"features-prepare-{table}",
            daemon=True,
        )
        self.thread.start()

    def _fill(self, fill: Callable[[Connection], None]) -> None:
        try:
            with self.lock:
                fill(self.conn)
        except BaseException as exc:  # raised in every reader that needs the table
            self.error = exc
        finally:
            self.done.set()

    def read(self, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
        self.done.wait()
        if self.error is not None:
            raise self.error
        with self.lock:
            return read_typed(self.conn, stmt, types)

    def close(self) -> None:
        """Wait for the filling to end; drop the table (the connection returns to the pool)."""
        self.thread.join()
        # a broken connection must not hide the error that broke it
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
            self.conn.commit()


class _RangeFeed:
    """Hands out the orphans to one reader, then the account ranges one at a time.

    The first reader to ask gets ``ORPHANS`` (the contacts without an account): they are read
    through their contact ids and need none of prepare()'s tables, so that reader works while
    the tables are filled instead of waiting for them. Each range is found when asked for;
    after the last, readers get ``None``. The readers start as soon as the first range is
    known (finding them all takes a query per range), and a reader done early takes the next
    range: no reader idles at the end.
    """

    ORPHANS = "orphans"

    def __init__(self, conn: Connection, chunk_size: int, *, scoped: bool = False) -> None:
        self._ranges = chunks.ranges(conn, chunk_size, scoped=scoped)
        self._lock = threading.Lock()
        self._orphans_given = False

    def next(self) -> tuple[str | None, str | None] | str | None:
        with self._lock:
            if not self._orphans_given:
                self._orphans_given = True
                return self.ORPHANS
            for rng in self._ranges:
                return rng
            return None


def _parallel_chunks(
    engine: Engine, policy: Policy, now: datetime, chunk_size: int, workers: int, scoped: bool
) -> Generator[FeatureChunk, None, None]:
    with contextlib.ExitStack() as stack:
        feed_conn = stack.enter_context(engine.connect())
        q = FeatureQuery(policy, now, feed_conn.dialect.name)
        q.scoped = scoped
        for table, fill in q.prepare_parts().items():
            conn = stack.enter_context(engine.connect())
            stack.enter_context(reader_pragmas(conn))
            held = _Prepared(conn, fill, table)
            stack.callback(held.close)  # before its connection is closed
            q.prepared[table] = held
        feed = _RangeFeed(feed_conn, chunk_size, scoped=scoped)

        def share() -> Iterator[FeatureChunk]:
            with engine.connect() as conn, reader_pragmas(conn):
                while (task := feed.next()) is not None:
                    if task == _RangeFeed.ORPHANS:
                        yield from chunks.orphan_chunks(conn, q, policy, chunk_size)
                    else:
                        assert isinstance(task, tuple)
                        yield chunks.range_chunk(conn, q, *task)

        # every reader starts now, and the chunk ready first is handed over first: readers
        # asked in turn would idle, one until the reader before it has built a chunk
        readers = ReadAhead([share() for _ in range(workers)], name="features-reader")
        try:
            yield from readers
        finally:
            readers.close()
