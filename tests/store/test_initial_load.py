"""A table's first load builds its secondary indexes at the end; a killed one gets them back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import StoreError
from canonical.speed_paths import SPEED_PATHS_OFF
from sync_service.store import initial_load
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.initial_load import deferred_indexes, missing_indexes, restore_all
from sync_service.store.models import CANONICAL_TABLES, contacts, tickets
from sync_service.store.upsert import upsert

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DECLARED = sorted(str(ix.name) for ix in contacts.indexes)


def missing(engine: Engine, table: sa.Table = contacts) -> list[str]:
    with engine.connect() as conn:
        return missing_indexes(conn, table)


def add_contact(engine: Engine, contact_id: str = "003A") -> None:
    row = {"source": "salesforce", "id": contact_id, "email": "a@example.com", "synced_at": NOW}
    with engine.begin() as conn:
        upsert(conn, contacts, [row])


def test_the_schema_declares_secondary_indexes_to_defer() -> None:
    assert len(DECLARED) >= 3  # email, sf_contact_id, the account cover


def test_a_first_load_into_an_empty_table_has_no_indexes_until_it_ends(engine: Engine) -> None:
    with deferred_indexes(engine, contacts, first_load=True) as deferred:
        assert deferred is True
        assert missing(engine) == DECLARED
        add_contact(engine)  # upserts still work: the primary key stays
        add_contact(engine)
    assert missing(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 1
        # The rebuilt index answers a lookup by e-mail.
        assert conn.execute(
            sa.select(contacts.c.id).where(contacts.c.email == "a@example.com")
        ).scalars().all() == ["003A"]


@pytest.mark.parametrize(("has_rows", "first_load"), [(True, True), (False, False)])
def test_a_table_with_rows_or_an_incremental_read_keeps_its_indexes(
    engine: Engine, has_rows: bool, first_load: bool
) -> None:
    if has_rows:
        add_contact(engine)
    with deferred_indexes(engine, contacts, first_load=first_load) as deferred:
        assert deferred is False
        assert missing(engine) == []
    assert missing(engine) == []


def test_a_table_without_secondary_indexes_is_left_alone(engine: Engine) -> None:
    bare = sa.Table("bare", sa.MetaData(), sa.Column("id", sa.String(8), primary_key=True))
    with engine.begin() as conn:
        bare.create(conn)
    with deferred_indexes(engine, bare, first_load=True) as deferred:
        assert deferred is False


def _load(engine: Engine, *, then: Callable[[], None]) -> None:
    with deferred_indexes(engine, contacts, first_load=True):
        add_contact(engine)
        then()


def _connector_broke() -> None:
    raise RuntimeError("connector broke")


def _disk_full(conn: object, table: object) -> list[str]:
    raise sa.exc.OperationalError("CREATE INDEX", {}, Exception("database or disk is full"))


def test_a_failed_load_still_gets_its_indexes_and_raises_its_own_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="connector broke"):
        _load(engine, then=_connector_broke)
    assert missing(engine) == []


def test_an_index_that_cannot_be_built_after_a_good_load_is_a_store_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def break_the_disk() -> None:
        monkeypatch.setattr(initial_load, "restore_indexes", _disk_full)

    with pytest.raises(StoreError, match=r"disk is full; .* the next run builds them"):
        _load(engine, then=break_the_disk)
    monkeypatch.undo()
    assert missing(engine) == DECLARED  # left for the next run, which restores them
    restore_all(engine, [contacts])
    assert missing(engine) == []


def test_after_a_failed_load_a_failed_rebuild_is_logged_not_raised_over_the_cause(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def break_the_disk_and_the_connector() -> None:
        monkeypatch.setattr(initial_load, "restore_indexes", _disk_full)
        _connector_broke()

    with (
        caplog.at_level(logging.ERROR, logger=initial_load.__name__),
        pytest.raises(RuntimeError, match="connector broke"),
    ):
        _load(engine, then=break_the_disk_and_the_connector)
    assert "indexes of contacts not rebuilt (the next run does)" in caplog.text


def test_indexes_a_killed_load_left_out_come_back_at_the_next_start(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # kill -9 inside the block: the finally never ran.
    cm = deferred_indexes(engine, tickets, first_load=True)
    cm.__enter__()
    assert missing(engine, tickets)
    with caplog.at_level(logging.WARNING, logger=initial_load.__name__):
        upgrade(engine)
    assert all(missing(engine, t) == [] for t in CANONICAL_TABLES.values())
    assert "left out by an interrupted first load" in caplog.text
    assert "ix_tickets_account_cover" in caplog.text


def test_an_older_revision_is_left_as_its_migrations_made_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0003_mapping_digest")
        # 0004 adds the covering indexes: at 0003 they are not there, and upgrade leaves it so.
        assert "ix_contacts_account_cover" in missing(engine)
        upgrade(engine)
        assert missing(engine) == []
    finally:
        engine.dispose()


def test_a_first_load_stores_the_same_with_its_indexes_kept(engine: Engine) -> None:
    # twin test: switched off, the indexes stay during the load; rows and indexes end the same
    results = []
    for enabled in (True, False):
        with deferred_indexes(engine, contacts, first_load=True, enabled=enabled) as deferred:
            assert deferred is enabled
            assert missing(engine) == (DECLARED if enabled else [])
            for i in range(5):
                add_contact(engine, f"003{i}")
        with engine.begin() as conn:
            rows = conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings().all()
            results.append(([dict(r) for r in rows], missing_indexes(conn, contacts)))
            conn.execute(sa.delete(contacts))
    assert results[0] == results[1]
    assert len(results[0][0]) == 5
    assert results[0][1] == []


def test_the_switch_keeps_the_indexes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPEED_PATHS_OFF, "deferred_indexes")
    with deferred_indexes(engine, contacts, first_load=True) as deferred:
        assert deferred is False
        assert missing(engine) == []


def test_an_index_another_runner_built_meanwhile_is_not_an_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runners look for missing indexes at once and both see one missing; the first builds
    # it. The second must not fail with "index ... already exists" (a SIGTERM'd first load and
    # the start after it used to race like this).
    declared = [str(ix.name) for ix in contacts.indexes]
    monkeypatch.setattr(initial_load, "missing_indexes", lambda _conn, _table: declared)
    with engine.begin() as conn:
        assert initial_load.restore_indexes(conn, contacts) == sorted(declared)
    monkeypatch.undo()
    assert missing(engine) == []


def test_two_runners_restoring_the_same_indexes_on_postgresql_take_turns(pg_url: str) -> None:
    # A first load rebuilds the indexes it dropped while another source's stream, starting,
    # restores them as "missing" (Salesforce and Gainsight contacts side by side in `serve`).
    # CREATE INDEX does not block CREATE INDEX: the second used to wait on the first's catalog
    # row and then fail with a unique violation on pg_class. Now it waits, then finds them.
    import threading

    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.begin() as conn:
        for ix in contacts.indexes:
            ix.drop(conn)
    outcome: list[object] = []
    first = engine.connect()
    try:
        assert initial_load.restore_indexes(first, contacts) == DECLARED  # not committed yet

        def second_runner() -> None:
            try:
                with engine.begin() as conn:
                    outcome.append(initial_load.restore_indexes(conn, contacts))
            except Exception as exc:  # the outcome is what the test checks
                outcome.append(exc)

        runner = threading.Thread(target=second_runner)
        runner.start()
        runner.join(timeout=1.0)
        assert runner.is_alive()  # waiting for the first runner's lock
        first.commit()
        runner.join(timeout=30)
    finally:
        first.close()
    assert outcome == [[]]  # nothing left to build, and no error
    assert missing(engine) == []
    engine.dispose()
