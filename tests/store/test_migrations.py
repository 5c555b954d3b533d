"""Migrations from an empty database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync_service.store.engine import current_revision, head_revision, make_engine, upgrade
from sync_service.store.initial_load import missing_indexes
from sync_service.store.models import EMAIL_KEY_INDEXES, metadata

EXPRESSION_INDEXES = {ix.name for ix in EMAIL_KEY_INDEXES}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(request.getfixturevalue("sqlite_url"))


def test_upgrade_from_empty_creates_every_table_at_head(empty_url: str):
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    engine.dispose()


def test_upgrade_twice_is_harmless(empty_url: str):
    engine = make_engine(empty_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def _not_an_expression_index(obj: Any, name: str | None, kind: str, *_: Any) -> bool:
    return not (kind == "index" and name in EXPRESSION_INDEXES)


def test_migrated_schema_matches_the_models(empty_url: str):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(empty_url)
    upgrade(engine)
    with engine.connect() as conn, warnings.catch_warnings():
        # SQLite's reflection cannot read expression indexes: they are checked by name below
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        context = MigrationContext.configure(
            conn, opts={"include_object": _not_an_expression_index}
        )
        diff = compare_metadata(context, metadata)
    assert diff == []
    with engine.connect() as conn:
        for table in {ix.table for ix in EMAIL_KEY_INDEXES if ix.table is not None}:
            assert missing_indexes(conn, table) == []  # type: ignore[arg-type]
    engine.dispose()


def test_sqlite_store_uses_wal(sqlite_url: str):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_sqlite_store_keeps_index_pages_cached_and_checkpoints_in_large_steps(sqlite_url: str):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -64 * 1024
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    engine.dispose()


def _start_replica(url: str, barrier: Any, results: Any) -> None:
    engine = make_engine(url)
    barrier.wait()  # every replica calls upgrade in the same instant
    try:
        upgrade(engine)
        results.put(("ok", current_revision(engine)))
    except Exception as exc:  # reported to the test, which names it
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("start_at", [None, "0001"])
def test_four_replicas_starting_at_once_all_migrate_without_colliding(
    empty_url: str, start_at: str | None
) -> None:
    if start_at is not None:  # an old database: the replicas must finish its upgrade together
        engine = make_engine(empty_url)
        upgrade(engine, start_at)
        engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_start_replica, args=(empty_url, barrier, results)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert outcomes == [("ok", head_revision())] * 4
    assert [p.exitcode for p in procs] == [0] * 4


def test_a_new_sqlite_store_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        db = tmp_path / "var" / "store.db"
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        with engine.connect() as conn:  # keep a connection open: -wal and -shm exist meanwhile
            conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar()
            files = [db, db.with_name("store.db-wal"), db.with_name("store.db-shm")]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        engine.dispose()
    finally:
        os.umask(old)
    assert modes == {"store.db": 0o600, "store.db-wal": 0o600, "store.db-shm": 0o600}
