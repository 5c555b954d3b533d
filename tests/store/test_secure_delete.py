"""SQLite overwrites what is deleted, and a checkpoint empties the write-ahead log."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sync_service.store.engine import checkpoint, make_engine


def test_every_sqlite_connection_zeroes_deleted_content(sqlite_url: str):
    engine = make_engine(sqlite_url, poolclass=sa.pool.NullPool)
    for _ in range(2):  # each new connection, not only the first
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    engine.dispose()


def test_a_deleted_value_is_gone_from_the_file_after_a_checkpoint(sqlite_url: str):
    engine = make_engine(sqlite_url)
    secret = "unforgettable.person@example.org"
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql(f"INSERT INTO t (v) VALUES ('{secret}'), ('bystander')")
    assert checkpoint(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE t SET v = NULL WHERE v LIKE 'unforgettable%'")
    path = Path(sa.make_url(sqlite_url).database or "")
    wal = Path(f"{path}-wal")
    assert secret.encode() in wal.read_bytes() + path.read_bytes()  # the old page is in the log
    assert checkpoint(engine)
    assert wal.stat().st_size == 0
    assert secret.encode() not in path.read_bytes()
    assert b"bystander" in path.read_bytes()
    engine.dispose()


def test_checkpoint_is_a_no_op_elsewhere():
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert checkpoint(engine)  # never connects
