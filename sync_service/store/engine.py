"""Engines for SQLite (default, WAL) and PostgreSQL, and the schema upgrade.

Schema upgrades run under a lock so that any number of replicas may start at once on an empty
or old database: a PostgreSQL session-level advisory lock, or a file lock next to a SQLite
store. The first process migrates; the others wait, then find the schema at head and do nothing.

A SQLite store holds contact emails: its file is created readable by its owner only (0600), and
SQLite gives the WAL and shared-memory files the database file's permissions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock, Timeout
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from canonical.errors import StoreError
from sync_service.store.initial_load import restore_all
from sync_service.store.models import CANONICAL_TABLES
from sync_service.store.sqlite_library import memstatus_off

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: Page cache per SQLite connection (see ``_sqlite_pragmas``).
SQLITE_CACHE_KIB = 64 * 1024
#: WAL pages (4 KiB) after which a commit checkpoints (SQLite's default: 1,000).
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
#: How long a starting process waits for another one's migration before giving up.
MIGRATION_LOCK_WAIT_SECONDS = 600
#: The advisory lock key of schema upgrades (stable across processes and releases).
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"advocate-sync:migrations").digest()[:8], "big", signed=True
)
#: Permissions of a new SQLite store (and so of its WAL and SHM files): owner only.
SQLITE_FILE_MODE = 0o600


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (SQLAlchemy's default driver is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (status, /metrics) work while a sync writes; NORMAL is durable under WAL
    # for everything but a power cut, which the outbox and watermarks tolerate.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # A sync upserts into tables whose indexes (email, account, id) take keys in no order: with
    # SQLite's default 2 MiB page cache nearly every row re-reads index pages. 64 MiB keeps the
    # hot index pages of a million-contact store in memory (the cache fills only as pages are
    # used, so a small store stays small).
    cur.execute(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
    # Checkpoint every ~40 MiB of WAL rather than every 4 MiB: each checkpoint copies the pages
    # of the batches since the last one into the database and fsyncs it, and a page changed by
    # several batches in between is then copied once. Durability is that of WAL + NORMAL either way.
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten content is zeroed on disk, not left in free space: an erasure
    # (sync-service forget) must leave nothing of a person in the file.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; a SQLite file's folder is created if missing."""
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
            _create_private(Path(db))
        memstatus_off()  # before this process's first SQLite connection, if it is one
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def checkpoint(engine: Engine) -> bool:
    """Move the write-ahead log into the database and empty it (SQLite; no-op elsewhere).

    After an erasure the log still holds the pages as they were before it; TRUNCATE copies
    the log into the database (where ``secure_delete`` zeroed the erased values) and cuts
    the log file to zero bytes. Returns False when a reader kept it from completing (the
    next checkpoint, at most ``SQLITE_WAL_AUTOCHECKPOINT_PAGES`` later, finishes the job).
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        conn.commit()
    return busy is None or not busy[0]


def _create_private(path: Path) -> None:
    # An empty file is a valid empty SQLite database; creating it here with O_EXCL decides its
    # mode whatever the umask, and SQLite creates -wal and -shm with the database file's mode.
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, SQLITE_FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(fd, SQLITE_FILE_MODE)  # the umask may have cleared bits, never added: be exact
    os.close(fd)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs the packaged migrations against ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call on every start.

    At ``head`` it also rebuilds indexes a killed first load left out (see
    :mod:`sync_service.store.initial_load`); the schema of an older revision is not the
    models', so it is left as the migrations made it.

    Raises:
        StoreError: when the database cannot be reached or a migration fails.
    """
    try:
        with migration_lock(engine):
            command.upgrade(alembic_config(engine), revision)
            if revision == "head":
                restore_all(engine, list(CANONICAL_TABLES.values()))
    except OperationalError as exc:
        msg = (
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}; check DATABASE_URL"
        )
        raise StoreError(msg) from None
    except SQLAlchemyError as exc:
        msg = f"schema migration failed: {str(exc).splitlines()[0]}"
        raise StoreError(msg) from None


def _busy_migration() -> StoreError:
    return StoreError(
        f"another process has been migrating the store for over {MIGRATION_LOCK_WAIT_SECONDS} s; "
        "check for a stuck `sync-service db upgrade` and start again"
    )


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the store's migration lock (waiting for it) for the ``with`` block.

    PostgreSQL: a session-level advisory lock on a connection of its own, released by the
    server if this process dies. SQLite: an OS file lock on ``<store>.migrate.lock``.

    Raises:
        StoreError: the lock was not free within :data:`MIGRATION_LOCK_WAIT_SECONDS`.
        OperationalError: the database cannot be reached.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"SET lock_timeout = '{MIGRATION_LOCK_WAIT_SECONDS}s'"))
            try:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                    raise _busy_migration() from None
                raise
            try:
                yield
            finally:
                try:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                    )
                except SQLAlchemyError:
                    conn.invalidate()  # ending the session releases the lock
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # one process by definition
        return
    db = Path(database)
    lock = FileLock(
        str(db.with_name(f"{db.name}.migrate.lock")),
        timeout=MIGRATION_LOCK_WAIT_SECONDS,
        mode=SQLITE_FILE_MODE,
        thread_local=False,
    )
    try:
        lock.acquire()
    except Timeout:
        raise _busy_migration() from None
    try:
        yield
    finally:
        lock.release()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the code ships."""
    return ScriptDirectory.from_config(
        alembic_config(sa.create_engine("sqlite://"))
    ).get_current_head()
