"""Bulk upserts: ``INSERT ... ON CONFLICT DO UPDATE`` in bounded batches.

The hot path of every sync. One statement per batch through the driver's executemany, never a
per-row ORM flush.

On SQLite the rows skip SQLAlchemy's per-execution work (building a parameter dict per row and
running every bind processor through it), which costs more than SQLite's own insert: a
:class:`_Plan` per (table, column set, key) holds the SQL text SQLAlchemy compiles for that
statement and one converter per column that needs one, and the rows go to the driver's
``executemany`` as tuples. Each converter writes exactly what the column type's own bind
processor writes: common values (``True``, an aware UTC datetime, a date) are converted inline
after the plan has checked, once, that the inline result equals the processor's; anything else
calls the processor itself. A group whose conversion raises is handed to the generic path, which
raises SQLAlchemy's usual error. PostgreSQL uses the generic path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

DEFAULT_BATCH_ROWS = 1000

Converter = Callable[[Any], Any]


def _insert_for(conn: Connection, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    msg = f"bulk upsert is not supported on {name}; use SQLite or PostgreSQL"
    raise NotImplementedError(msg)


def _upsert_statement(ins: Any, cols: Sequence[str], key_cols: Sequence[str]) -> Any:
    update_cols = [c for c in cols if c not in key_cols]
    if update_cols:
        return ins.on_conflict_do_update(
            index_elements=list(key_cols),
            set_={c: ins.excluded[c] for c in update_cols},
        )
    return ins.on_conflict_do_nothing(index_elements=list(key_cols))


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> int:
    """Insert ``rows`` or update the existing rows with the same ``key``; return rows written.

    Rows are grouped by their set of columns, so a row that omits a column leaves that column
    untouched on update (an explicit None sets it to NULL). The caller owns the transaction.

    Args:
        conn: a connection inside the caller's transaction.
        table: the target table.
        rows: plain dicts keyed by column name.
        key: the conflict columns; defaults to the primary key.
        batch_rows: rows per statement.
    """
    key_cols = tuple(key) if key else tuple(c.name for c in table.primary_key.columns)
    fast = conn.dialect.name == "sqlite" and _fast_path_allowed(table)
    key_of = itemgetter(*key_cols)
    total = 0
    it = iter(rows)
    while True:
        chunk = list(islice(it, batch_rows))
        if not chunk:
            return total
        for cols, group in _groups(chunk).items():
            group = _dedupe(group, key_of)
            if not (fast and _execute_fast(conn, table, cols, key_cols, group)):
                stmt = _upsert_statement(_insert_for(conn, table), cols, key_cols)
                conn.execute(stmt, group)
            total += len(group)


def _groups(chunk: list[Mapping[str, Any]]) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
    """Rows by their sorted column names, groups in order of first appearance."""
    # Rows of one batch nearly always share one key order: sort each distinct order once.
    sorted_of: dict[tuple[str, ...], tuple[str, ...]] = {}
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in chunk:
        order = tuple(row)
        cols = sorted_of.get(order)
        if cols is None:
            cols = sorted_of[order] = tuple(sorted(order))
        group = groups.get(cols)
        if group is None:
            groups[cols] = [row]
        else:
            group.append(row)
    return groups


def _dedupe(
    group: list[Mapping[str, Any]], key_of: Callable[[Mapping[str, Any]], Any]
) -> list[Mapping[str, Any]]:
    # PostgreSQL refuses to touch the same row twice in one INSERT ... ON CONFLICT statement
    # ("cannot affect row a second time"); the last version of a row in a batch wins.
    seen = {key_of(row): row for row in group}
    return list(seen.values()) if len(seen) != len(group) else group


# -- SQLite fast path ---------------------------------------------------------------------------


def _fast_path_allowed(table: sa.Table) -> bool:
    # Python-side defaults and onupdate values are added by SQLAlchemy's compiler per execution;
    # the fast path only sends the given columns, so such tables take the generic path.
    return all(
        c.default is None and c.onupdate is None and c.server_onupdate is None
        for c in table.columns
    )


def _execute_fast(
    conn: Connection,
    table: sa.Table,
    cols: tuple[str, ...],
    key_cols: tuple[str, ...],
    group: list[Mapping[str, Any]],
) -> bool:
    """Write ``group`` through the driver; False if it must take the generic path instead."""
    plan = _plan(conn.dialect, table, cols, key_cols)
    if plan is None:
        return False
    try:
        params = plan.params(group)
    except Exception:  # the generic path raises SQLAlchemy's own error for it
        return False
    conn.exec_driver_sql(plan.sql, params)
    return True


class _Plan:
    """The SQL text and tuple-building of one (table, column set, key) on one dialect."""

    def __init__(self, sql: str, order: list[str], converters: list[Converter | None]) -> None:
        self.sql = sql
        self.width = len(order)
        self.getter: Callable[[Mapping[str, Any]], Any] = itemgetter(*order)
        self.converters = [(i, conv) for i, conv in enumerate(converters) if conv is not None]

    def params(self, group: list[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows of ``group`` as parameter tuples, values as SQLAlchemy would bind them."""
        getter = self.getter
        if self.width == 1:
            values = [(getter(row),) for row in group]
        else:
            values = [getter(row) for row in group]
        if not self.converters:
            return values
        out: list[tuple[Any, ...]] = []
        append = out.append
        converters = self.converters
        for value in values:
            row = list(value)
            for i, conv in converters:
                row[i] = conv(row[i])
            append(tuple(row))
        return out


@lru_cache(maxsize=256)
def _plan(
    dialect: Dialect, table: sa.Table, cols: tuple[str, ...], key_cols: tuple[str, ...]
) -> _Plan | None:
    """The plan of a statement, or None when its binds are not plain column names."""
    stmt = _upsert_statement(sqlite.insert(table), cols, key_cols)
    compiled = stmt.compile(dialect=dialect, column_keys=list(cols))
    order = list(compiled.positiontup or [])
    if compiled.escaped_bind_names or sorted(order) != sorted(cols):
        return None
    return _Plan(
        compiled.string, order, [_converter(table.c[name].type, dialect) for name in order]
    )


#: Samples each inline conversion is checked against before it is trusted.
_SAMPLE_DATETIMES = (
    datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(987, 3, 4, 5, 6, 7, 8, tzinfo=UTC),
)
_SAMPLE_DATES = (date(2024, 5, 1), date(1, 1, 1), date(987, 12, 31), date(9999, 12, 31))


def _datetime_text(value: datetime) -> str:
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the fastest formatting here
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _agrees(proc: Converter, cases: Iterable[tuple[Any, Any]]) -> bool:
    """Whether ``proc`` maps None to None and each case's input to its expected output."""
    try:
        return proc(None) is None and all(proc(value) == want for value, want in cases)
    except Exception:  # a processor refusing a sample just does not agree
        return False


def _converter(type_: Any, dialect: Dialect) -> Converter | None:
    """A function binding a value of ``type_`` exactly as its bind processor does."""
    proc: Converter | None = type_._cached_bind_processor(dialect)
    if proc is None:
        return None
    if _agrees(proc, [(True, 1), (False, 0)]):
        true, false = proc(True), proc(False)

        def boolean(value: Any) -> Any:
            if value is True:
                return true
            if value is False:
                return false
            return proc(value) if value is not None else None

        return boolean
    if _agrees(proc, [(d, _datetime_text(d)) for d in _SAMPLE_DATETIMES]):
        # The same timestamp object (a batch's synced_at) is converted once. The pair is
        # replaced whole, so threads sharing the plan never see a value with another's text.
        last: list[tuple[Any, Any]] = [(None, None)]

        def timestamp(value: Any) -> Any:
            if value is None:
                return None
            seen, text = last[0]
            if value is seen:
                return text
            if value.__class__ is datetime and value.tzinfo is UTC:
                text = _datetime_text(value)
            else:
                text = proc(value)
            last[0] = (value, text)
            return text

        return timestamp
    if _agrees(proc, [(d, d.isoformat()) for d in _SAMPLE_DATES]):

        def day(value: Any) -> Any:
            if value.__class__ is date:
                return value.isoformat()
            return proc(value) if value is not None else None

        return day
    return proc
