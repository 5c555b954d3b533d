"""Speed path: SQLite upserts as driver tuples, whole runs of rows in one multi-row ``INSERT``.

What it speeds up: the hot path of every sync on SQLite. SQLAlchemy's per-execution work
(building a parameter dict per row and running every bind processor through it) costs more than
SQLite's own insert. Instead, a :class:`_Plan` per (table, column set, key) holds the SQL text
SQLAlchemy compiles for that statement and one converter per column that needs one, and the
rows go to the driver as tuples, whole runs of rows in one multi-row ``INSERT`` (see
:func:`fast_steps`). Each converter writes exactly what the column type's own bind processor
writes: common values (``True``, an aware UTC datetime, a date) are converted inline after the
plan has checked, once, that the inline result equals the processor's; anything else calls the
processor itself. A group whose conversion raises is handed to the generic path, which raises
SQLAlchemy's usual error. PostgreSQL always takes the generic path.

By how much (``BENCHMARKS.md``, Salesforce sync): binding a contact's values took 36 us of a
row's ~100 us through SQLAlchemy (~30% of a bulk sync); parameters built column by column took
6.8 -> 3.6 us a contact; one multi-row ``INSERT`` per 1,000 rows took the Bulk sync from 48,000
to 56,000 records/s (the driver lets go of the GIL around every statement it steps).

Switch: ``SYNC_SPEED_PATHS_OFF=upsert_fast_path`` (see :mod:`canonical.speed_paths`), or
``fast=False`` to :func:`~sync_service.store.upsert.upsert` / ``prepare_upsert``. Reference
twin: SQLAlchemy's own ``INSERT ... ON CONFLICT`` executemany (the generic path of
:mod:`sync_service.store.upsert`); ``tests/store/test_upsert_fast_path.py`` proves both store the
same values with the same storage classes, and fail the same way.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import chain
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

#: Rows one SQLite statement writes at most (fewer when their parameters would pass the limit).
ROWS_PER_STATEMENT = 1000


@lru_cache(maxsize=1)
def _sqlite_max_params() -> int:
    """Parameters one statement may hold in the SQLite library this process uses."""
    # Asked when the first plan is made, not at import: the store's engine switches SQLite's
    # memory statistics off before this process opens its first connection.
    with closing(sqlite3.connect(":memory:")) as conn:
        getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else 999


Converter = Callable[[Any], Any]
#: Converts one column of a batch (a tuple of values) to what its bind processor writes.
_Column = Callable[[Sequence[Any]], Sequence[Any]]
#: Builds the generic ``INSERT ... ON CONFLICT`` statement: (insert, columns, key columns).
StatementBuilder = Callable[[Any, Sequence[str], Sequence[str]], Any]


def fast_path_allowed(table: sa.Table) -> bool:
    """Whether upserts into ``table`` may take the fast path (no Python-side defaults)."""
    # Python-side defaults and onupdate values are added by SQLAlchemy's compiler per execution;
    # the fast path only sends the given columns, so such tables take the generic path.
    return all(
        c.default is None and c.onupdate is None and c.server_onupdate is None
        for c in table.columns
    )


def fast_steps(
    dialect: Dialect,
    table: sa.Table,
    cols: tuple[str, ...],
    key_cols: tuple[str, ...],
    group: list[Mapping[str, Any]],
    statement: StatementBuilder,
) -> list[tuple[bool, Any, list[Any]]] | None:
    """The driver-level steps writing ``group``; None if it must take the generic path instead.

    Whole runs of ``rows_per_statement`` rows go as one multi-row ``INSERT`` each: the driver
    lets go of the GIL around every statement it steps, and while the reading thread runs
    Python, taking it back costs up to a switch interval (5 ms). One statement per row made the
    writes wait on the reads for a third of a bulk sync.
    """
    plan = _plan(dialect, table, cols, key_cols, statement)
    if plan is None:
        return None
    try:
        params = plan.params(group)
    except Exception:  # the generic path raises SQLAlchemy's own error for it
        return None
    per = plan.rows_per_statement
    whole = len(params) // per * per if per > 1 else 0
    steps: list[tuple[bool, Any, list[Any]]] = []
    if whole:
        chunks = [tuple(chain.from_iterable(params[i : i + per])) for i in range(0, whole, per)]
        steps.append((True, plan.sql_rows(per), chunks))
    if whole < len(params):
        steps.append((True, plan.sql, params[whole:]))
    return steps


class _Plan:
    """The SQL text and tuple-building of one (table, column set, key) on one dialect."""

    def __init__(self, sql: str, order: list[str], converters: list[_Column | None]) -> None:
        self.sql = sql
        self.width = len(order)
        one_row = "VALUES (" + ", ".join(["?"] * self.width) + ")"
        self._values_at = sql.find(one_row) if sql.count(one_row) == 1 else -1
        self._one_row = one_row
        self.rows_per_statement = (
            max(1, min(ROWS_PER_STATEMENT, _sqlite_max_params() // self.width))
            if self._values_at >= 0
            else 1
        )
        self._sql_rows: dict[int, str] = {}
        self.getter: Callable[[Mapping[str, Any]], Any] = itemgetter(*order)
        self.column_getters = [itemgetter(name) for name in order]
        self.converters = [(i, conv) for i, conv in enumerate(converters) if conv is not None]

    def sql_rows(self, count: int) -> str:
        """The statement writing ``count`` rows (their parameters one row after another)."""
        sql = self._sql_rows.get(count)
        if sql is None:
            rows = ", ".join([self._one_row[len("VALUES ") :]] * count)
            at = self._values_at
            sql = f"{self.sql[:at]}VALUES {rows}{self.sql[at + len(self._one_row) :]}"
            self._sql_rows[count] = sql
        return sql

    def params(self, group: list[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """The rows of ``group`` as parameter tuples, values as SQLAlchemy would bind them."""
        getter = self.getter
        if not self.converters or not group:
            if self.width == 1:
                return [(getter(row),) for row in group]
            return list(map(getter, group))
        # Column by column: most columns then convert in one step (a column of booleans is
        # checked, not rewritten; a batch's single synced_at is formatted once).
        columns: list[Sequence[Any]] = [tuple(map(get, group)) for get in self.column_getters]
        for i, conv in self.converters:
            columns[i] = conv(columns[i])
        return list(zip(*columns, strict=True))


@lru_cache(maxsize=256)
def _plan(
    dialect: Dialect,
    table: sa.Table,
    cols: tuple[str, ...],
    key_cols: tuple[str, ...],
    statement: StatementBuilder,
) -> _Plan | None:
    """The plan of a statement, or None when its binds are not plain column names."""
    stmt = statement(sqlite.insert(table), cols, key_cols)
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


_BOOLEAN_OR_NONE = frozenset({bool, type(None)})


def _json_encoder() -> Converter | None:
    """``json.dumps`` with its default settings, minus the encoder it builds on every call."""
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return None
    # No circular check (markers None): a failed call would otherwise leave ids behind in a
    # shared markers dict. A circular value still fails (RecursionError), on the generic path.
    encode = c_make_encoder(
        None,
        json.JSONEncoder().default,
        encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )

    def dumps(value: Any) -> str:
        if value.__class__ is str:
            return encode_basestring_ascii(value)
        return "".join(encode(value, 0))

    return dumps


_SAMPLE_JSON: tuple[Any, ...] = (
    {"_crm": {"A__c": None, "B__c": False, "C__c": 1.5, "D__c": 'x\u00e9"\n'}},
    {},
    [1, 2.0, None, True, "s"],
    "text",
    12,
    float("nan"),
)


def _converter(type_: Any, dialect: Dialect) -> _Column | None:
    """A function binding a column of ``type_`` exactly as its bind processor does."""
    proc: Converter | None = type_._cached_bind_processor(dialect)
    if proc is None:
        return None
    if _agrees(proc, [(True, 1), (False, 0)]):

        def booleans(column: Sequence[Any]) -> Sequence[Any]:
            # The driver binds True and False as the integers 1 and 0 the processor returns.
            if set(map(type, column)) <= _BOOLEAN_OR_NONE:
                return column
            return [proc(value) for value in column]

        return booleans
    if _agrees(proc, [(d, _datetime_text(d)) for d in _SAMPLE_DATETIMES]):

        def one(value: Any) -> Any:
            if value.__class__ is datetime and value.tzinfo is UTC:
                return _datetime_text(value)
            return proc(value) if value is not None else None

        def timestamps(column: Sequence[Any]) -> Sequence[Any]:
            # A batch's synced_at is one value: formatted once. Equal timestamps are the same
            # instant, and the processor writes an instant as one text.
            first = column[0]
            if first is not None and column.count(first) == len(column):
                return (one(first),) * len(column)
            return [
                _datetime_text(value)
                if value.__class__ is datetime and value.tzinfo is UTC
                else one(value)
                for value in column
            ]

        return timestamps
    if _agrees(proc, [(d, d.isoformat()) for d in _SAMPLE_DATES]):

        def days(column: Sequence[Any]) -> Sequence[Any]:
            return [
                value.isoformat()
                if value.__class__ is date
                else (proc(value) if value is not None else None)
                for value in column
            ]

        return days
    dumps = _json_encoder()
    if dumps is not None and _same_as(proc, dumps, _SAMPLE_JSON):
        return lambda column: [
            dumps(value) if value is not None else proc(None) for value in column
        ]
    return lambda column: [proc(value) for value in column]


def _same_as(proc: Converter, fast: Converter, samples: Iterable[Any]) -> bool:
    """Whether ``fast`` gives what ``proc`` gives on every sample."""
    try:
        return all(fast(value) == proc(value) for value in samples)
    except Exception:  # a processor refusing a sample just does not agree
        return False
