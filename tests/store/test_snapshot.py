"""Several read connections on one snapshot: a commit landing meanwhile splits nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import accounts
from sync_service.store.snapshot import shared_snapshot

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _add_account(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                source="salesforce", id=f"001{n:015d}", name=f"Account {n}", synced_at=NOW
            )
        )


def _count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one())


def test_every_connection_sees_the_moment_the_snapshot_was_taken(engine: Engine) -> None:
    _add_account(engine, 1)
    with shared_snapshot(engine, 3) as conns:
        assert len(conns) == 3
        _add_account(engine, 2)  # commits while the readers are open
        assert [_count(c) for c in conns] == [1, 1, 1]
        _add_account(engine, 3)
        assert [_count(c) for c in reversed(conns)] == [1, 1, 1]
    with engine.connect() as conn:
        assert _count(conn) == 3


def test_a_busy_writer_lock_gives_one_connection_on_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        # PostgreSQL shares a snapshot without any lock: a running writer changes nothing
        with engine.connect() as writer:
            writer.execute(
                accounts.insert().values(
                    source="salesforce", id="001000000000000009", name="open", synced_at=NOW
                )
            )
            with shared_snapshot(engine, 2, lock_wait=0.1) as conns:
                assert len(conns) == 2
            writer.rollback()
        return
    with engine.connect() as writer:
        writer.exec_driver_sql("BEGIN IMMEDIATE")  # a long write in progress
        try:
            with shared_snapshot(engine, 3, lock_wait=0.1) as conns:
                assert len(conns) == 1
                assert _count(conns[0]) == 0
        finally:
            writer.exec_driver_sql("ROLLBACK")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
