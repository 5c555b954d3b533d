"""Twin tests: the SQLite fast path of ``upsert`` stores exactly what the generic path stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from canonical.speed_paths import SPEED_PATHS_OFF
from sync_service.store import upsert as upsert_module
from sync_service.store import upsert_fast_path
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import contacts, quarantine, sync_state
from sync_service.store.upsert import upsert

NOW = datetime(2026, 11, 30, 8, 0, 0, 123_456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))
ZERO_NOT_UTC = timezone(timedelta(0), "Z")  # equal to UTC, but not the UTC object


@pytest.fixture
def twin_engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two migrated SQLite stores: one written by the fast path, one by the generic path."""
    engines = []
    for name in ("fast", "generic"):
        eng = make_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(eng)
        engines.append(eng)
    yield engines[0], engines[1]
    for eng in engines:
        eng.dispose()


@pytest.fixture(params=[None, 3], ids=["default-statements", "3-rows-a-statement"])
def per_statement(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run the test as is, and again with multi-row statements of three rows (see fast_steps)."""
    upsert_fast_path._plan.cache_clear()
    mp = pytest.MonkeyPatch()
    if request.param is not None:
        mp.setattr(upsert_fast_path, "ROWS_PER_STATEMENT", request.param)
    yield
    mp.undo()
    upsert_fast_path._plan.cache_clear()


def _write(
    engine: Engine, table: sa.Table, rows: list[dict[str, Any]], *, fast: bool, **kw: Any
) -> Any:
    """Upsert ``rows`` in one transaction through the chosen path; the result or the error."""
    try:
        with engine.begin() as conn:
            return upsert(conn, table, rows, fast=fast, **kw)
    except sa.exc.StatementError as exc:
        return (type(exc), type(exc.orig), str(exc.orig))


def _stored(engine: Engine, table: sa.Table) -> tuple[list[Any], list[Any]]:
    """Every row as SQLite holds it (value and storage class), and as SQLAlchemy reads it."""
    with engine.connect() as conn:
        names = [c.name for c in table.columns]
        raw_sql = (
            f"SELECT {', '.join(f'{n}, typeof({n})' for n in names)} FROM {table.name} "
            "ORDER BY rowid"
        )
        raw = [tuple(r) for r in conn.exec_driver_sql(raw_sql)]
        typed = [
            dict(r) for r in conn.execute(sa.select(table).order_by(sa.text("rowid"))).mappings()
        ]
    return raw, typed


def _same_on_both(
    twins: tuple[Engine, Engine], table: sa.Table, batches: list[list[dict[str, Any]]], **kw: Any
) -> None:
    fast, generic = twins
    for batch in batches:
        got = _write(fast, table, [dict(r) for r in batch], fast=True, **kw)
        want = _write(generic, table, [dict(r) for r in batch], fast=False, **kw)
        assert got == want
    assert _stored(fast, table) == _stored(generic, table)


def contact(i: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": "salesforce",
        "id": f"003{i:015d}",
        "account_id": f"001{i // 5:015d}",
        "email": f"person{i}@example.org",
        "first_name": f"First{i}",
        "last_name": None,
        "opted_in": i % 2 == 0,
        "opted_out": False,
        "opt_in_date": date(2026, 1, 1) + timedelta(days=i),
        "source_updated_at": NOW - timedelta(seconds=i, microseconds=i),
        "deleted": False,
        "merged_into": None,
        "extra": {"_crm": {"Advocate_Status__c": None, "n": i}},
        "synced_at": NOW,
    }
    row.update(over)
    return row


def test_sync_batches_are_stored_identically(twin_engines: tuple[Engine, Engine]):
    # 1,000-row groups: two whole multi-row statements and 500 rows one by one, then 358.
    first = [contact(i) for i in range(2500)]
    again = [contact(i, first_name="Renamed", opted_in=None) for i in range(0, 2500, 7)]
    _same_on_both(twin_engines, contacts, [first, again], batch_rows=1000)


@pytest.mark.usefixtures("per_statement")
def test_unusual_values_are_stored_identically(twin_engines: tuple[Engine, Engine]):
    rows = [
        contact(1, source_updated_at=datetime(2026, 1, 1, 12, tzinfo=PLUS_TWO)),
        contact(2, source_updated_at=datetime(1, 1, 1, tzinfo=UTC), opt_in_date=date(1, 1, 1)),
        contact(3, opt_in_date=datetime(2026, 2, 3, 4, 5, tzinfo=UTC), extra=None),
        contact(4, opted_in=1, opted_out=0, extra=[1, "two", None], deleted=True),
        contact(5, extra={}, email="", merged_into="003000000000000001"),
        {k: v for k, v in contact(6).items() if k not in ("first_name", "extra")},
        dict(reversed(contact(7).items())),
        contact(8, first_name="old"),
        contact(8, first_name="new"),
    ]
    _same_on_both(twin_engines, contacts, [rows, rows[::-1]])


@pytest.mark.parametrize(
    "bad",
    [
        {"synced_at": datetime(2026, 1, 1)},  # noqa: DTZ001 - a naive datetime is the bug tested
        {"opted_in": "yes"},
        {"opt_in_date": "2026-01-01"},
        {"synced_at": None},
    ],
)
@pytest.mark.usefixtures("per_statement")
def test_bad_values_fail_the_same_way(twin_engines: tuple[Engine, Engine], bad: dict[str, Any]):
    rows = [contact(1), contact(2, **bad), contact(3)]
    _same_on_both(twin_engines, contacts, [rows])
    assert _stored(twin_engines[0], contacts) == ([], [])


def test_bookkeeping_tables_are_stored_identically(twin_engines: tuple[Engine, Engine]):
    state = [
        {"connector": "salesforce", "stream": "contacts", "updated_at": NOW},
        {"connector": "salesforce", "stream": "contacts", "cursor_updated_at": NOW},
        {"connector": "salesforce", "stream": "accounts", "updated_at": NOW, "cursor_id": "x"},
    ]
    _same_on_both(twin_engines, sync_state, [state[:1], state[1:]])
    bad = {
        "id": 1,
        "connector": "salesforce",
        "stream": "contacts",
        "reason": "no id",
        "payload": {"Email": "h:ab12"},
        "created_at": NOW,
    }
    _same_on_both(twin_engines, quarantine, [[bad], [{**bad, "resolved": True}]])


_values = {
    "first_name": st.none() | st.text(max_size=20),
    "opted_in": st.none() | st.booleans(),
    "opt_in_date": st.none() | st.dates(),
    "source_updated_at": st.none()
    | st.datetimes(timezones=st.sampled_from([UTC, PLUS_TWO, ZERO_NOT_UTC])),
    "extra": st.none()
    | st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5)),
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.tuples(st.integers(0, 30), st.fixed_dictionaries({}, optional=_values)),
        max_size=40,
    )
)
@pytest.mark.usefixtures("per_statement")
def test_any_batch_is_stored_identically(
    twin_engines: tuple[Engine, Engine], batch: list[tuple[int, dict[str, Any]]]
):
    rows = [{"source": "salesforce", "id": f"id{i}", "synced_at": NOW, **v} for i, v in batch]
    _same_on_both(twin_engines, contacts, [rows], batch_rows=16)


def _spy_fast_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = upsert_fast_path.fast_steps

    def spy(dialect: Any, *args: Any) -> Any:
        calls.append(dialect.name)
        return real(dialect, *args)

    monkeypatch.setattr(upsert_module, "fast_steps", spy)
    return calls


def test_postgresql_takes_the_generic_path(engine: Engine, monkeypatch: pytest.MonkeyPatch):
    calls = _spy_fast_steps(monkeypatch)
    with engine.begin() as conn:
        assert upsert(conn, contacts, [contact(i) for i in range(10)]) == 10
    with engine.connect() as conn:
        stored = conn.execute(sa.select(contacts).order_by(contacts.c.id)).mappings().all()
    assert [dict(r)["source_updated_at"] for r in stored] == [
        contact(i)["source_updated_at"] for i in range(10)
    ]
    assert calls == ([] if engine.dialect.name == "postgresql" else ["sqlite"])


def test_whole_runs_of_rows_go_as_one_statement(
    twin_engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = twin_engines[0]  # SQLite, whatever the backend of the run: its fast path
    upsert_fast_path._plan.cache_clear()
    monkeypatch.setattr(upsert_fast_path, "ROWS_PER_STATEMENT", 4)
    statements: list[tuple[str, int]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def seen(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.startswith("INSERT INTO contacts"):
            statements.append((sql, len(params) if many else 1))

    with engine.begin() as conn:
        assert upsert(conn, contacts, [contact(i) for i in range(10)]) == 10
    upsert_fast_path._plan.cache_clear()
    # Two statements of four rows each (one executemany of two), then two rows one by one.
    assert [(sql.count("), ("), n) for sql, n in statements] == [(3, 2), (0, 2)]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 10


def test_the_switch_sends_sqlite_upserts_down_the_generic_path(
    twin_engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy_fast_steps(monkeypatch)
    engine = twin_engines[0]
    monkeypatch.setenv(SPEED_PATHS_OFF, "upsert_fast_path")
    with engine.begin() as conn:
        assert upsert(conn, contacts, [contact(i) for i in range(3)]) == 3
    assert calls == []
    monkeypatch.delenv(SPEED_PATHS_OFF)
    with engine.begin() as conn:
        assert upsert(conn, contacts, [contact(i) for i in range(3, 6)]) == 3
    assert calls == ["sqlite"]
