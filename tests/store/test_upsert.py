"""Bulk upserts: idempotent, updating, bounded, on the configured backend."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sync_service.store.models import contacts, sync_state
from sync_service.store.upsert import prepare_upsert, upsert

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def contact(i: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "source": "salesforce",
        "id": f"003{i:015d}",
        "account_id": f"001{i // 5:015d}",
        "first_name": f"First{i}",
        "opted_in": i % 2 == 0,
        "opt_in_date": date(2026, 1, 1),
        "source_updated_at": NOW,
        "extra": {"tier": "gold", "n": i},
        "synced_at": NOW,
    }
    row.update(over)
    return row


def table_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings()
        ]


def test_same_batch_twice_leaves_identical_rows(engine: Engine):
    batch = [contact(i) for i in range(250)]
    with engine.begin() as conn:
        assert upsert(conn, contacts, batch, batch_rows=100) == 250
    first = table_rows(engine)
    with engine.begin() as conn:
        upsert(conn, contacts, batch, batch_rows=100)
    assert table_rows(engine) == first
    assert len(first) == 250
    assert first[0]["extra"] == {"tier": "gold", "n": 0}
    assert first[0]["source_updated_at"] == NOW


def test_changed_row_is_updated_and_others_untouched(engine: Engine):
    with engine.begin() as conn:
        upsert(conn, contacts, [contact(i) for i in range(10)])
    with engine.begin() as conn:
        upsert(conn, contacts, [contact(3, first_name="Renamed", opted_in=None)])
    rows = {r["id"]: r for r in table_rows(engine)}
    assert rows[f"003{3:015d}"]["first_name"] == "Renamed"
    assert rows[f"003{3:015d}"]["opted_in"] is None
    assert rows[f"003{4:015d}"]["first_name"] == "First4"
    assert len(rows) == 10


def test_omitted_column_is_left_alone_on_update(engine: Engine):
    with engine.begin() as conn:
        upsert(conn, contacts, [contact(1)])
        partial = {k: v for k, v in contact(1, last_name="Lovelace").items() if k != "first_name"}
        upsert(conn, contacts, [partial])
    [row] = table_rows(engine)
    assert row["first_name"] == "First1"
    assert row["last_name"] == "Lovelace"


def test_last_version_of_a_row_in_one_batch_wins(engine: Engine):
    with engine.begin() as conn:
        upsert(conn, contacts, [contact(1, first_name="old"), contact(1, first_name="new")])
    [row] = table_rows(engine)
    assert row["first_name"] == "new"


def test_same_key_in_another_source_is_another_row(engine: Engine):
    with engine.begin() as conn:
        upsert(conn, contacts, [contact(1), contact(1, source="gainsight")])
    assert len(table_rows(engine)) == 2


def test_naive_datetime_is_refused(engine: Engine):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as conn:
        upsert(conn, contacts, [contact(1, synced_at=datetime(2026, 1, 1))])  # noqa: DTZ001
    assert table_rows(engine) == []


def test_rows_without_non_key_columns_are_inserted_once(engine: Engine):
    with engine.begin() as conn:
        upsert(conn, sync_state, [{"connector": "sf", "stream": "c", "updated_at": NOW}])
        upsert(conn, sync_state, [{"connector": "sf", "stream": "c", "updated_at": NOW}])
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_state)).scalar() == 1


def test_an_upsert_prepared_ahead_writes_what_upsert_writes(engine: Engine) -> None:
    rows = [
        {"source": "salesforce", "id": f"003{i}", "email": f"p{i}@example.com", "synced_at": NOW}
        for i in range(5)
    ] + [{"source": "salesforce", "id": "0031", "email": "again@example.com", "synced_at": NOW}]
    prepared = prepare_upsert(engine.dialect, contacts, rows, batch_rows=4)
    with engine.connect() as conn:  # nothing is written until it runs
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 0
    with engine.begin() as conn:
        assert prepared.execute(conn) == 6
    with engine.connect() as conn:
        emails = dict(conn.execute(sa.select(contacts.c.id, contacts.c.email)).all())
    assert len(emails) == 5
    assert emails["0031"] == "again@example.com"  # the later row of the same key wins


def test_an_upsert_prepared_for_another_database_is_refused(engine: Engine) -> None:
    dialect = postgresql.dialect() if engine.dialect.name == "sqlite" else sqlite.dialect()
    prepared = prepare_upsert(dialect, contacts, [{"source": "s", "id": "1", "synced_at": NOW}])
    with engine.begin() as conn, pytest.raises(ValueError, match="cannot run on"):
        prepared.execute(conn)
