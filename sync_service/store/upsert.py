"""Bulk upserts: ``INSERT ... ON CONFLICT DO UPDATE`` in bounded batches.

The hot path of every sync. One statement per batch through the driver's executemany, never a
per-row ORM flush. :func:`prepare_upsert` builds the statements and their parameters without a
connection (a sync does it in its reading thread); :func:`upsert` prepares and runs at once.

On SQLite the rows take a speed path (:mod:`sync_service.store.upsert_fast_path`: driver
tuples in multi-row ``INSERT`` statements) unless it is switched off; the generic path here,
SQLAlchemy's own statement and executemany, is its reference twin and PostgreSQL's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

from canonical.speed_paths import speed_path_on
from sync_service.store.upsert_fast_path import fast_path_allowed, fast_steps

DEFAULT_BATCH_ROWS = 1000


def _insert_for(dialect: Dialect, table: sa.Table) -> Any:
    name = dialect.name
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
    fast: bool | None = None,
) -> int:
    """Insert ``rows`` or update the existing rows with the same ``key``; return rows written.

    Rows are grouped by their set of columns, so a row that omits a column leaves that column
    untouched on update (an explicit None sets it to NULL). The caller owns the transaction.

    Args:
        conn: a connection inside the caller's transaction.
        table: the target table.
        rows: plain dicts keyed by column name.
        key: the conflict columns; defaults to the primary key.
        batch_rows: rows grouped, deduplicated and written together.
        fast: take the SQLite speed path (:mod:`sync_service.store.upsert_fast_path`) where it
            applies; None: unless ``SYNC_SPEED_PATHS_OFF`` names ``upsert_fast_path``.
    """
    total = 0
    it = iter(rows)
    while True:
        chunk = list(islice(it, batch_rows))
        if not chunk:
            return total
        prepared = prepare_upsert(
            conn.dialect, table, chunk, key=key, batch_rows=batch_rows, fast=fast
        )
        total += prepared.execute(conn)


class PreparedUpsert:
    """The statements and parameters of one upsert, built before the transaction that runs them.

    Building parameters is Python work, which holds the GIL; running them is mostly SQLite's,
    which does not. A sync builds the next batch's upsert in its reading thread while the
    current batch is written (see :mod:`sync_service.sync.ingest`).
    """

    def __init__(self, dialect: str, steps: list[tuple[bool, Any, list[Any]]], rows: int) -> None:
        self.dialect = dialect
        self.steps = steps  # (driver SQL?, SQL text or statement, parameters or rows)
        self.rows = rows

    def execute(self, conn: Connection) -> int:
        """Run the upsert in ``conn``'s transaction; return the rows written."""
        if conn.dialect.name != self.dialect:
            msg = f"an upsert prepared for {self.dialect} cannot run on {conn.dialect.name}"
            raise ValueError(msg)
        for driver_sql, statement, params in self.steps:
            if driver_sql:
                conn.exec_driver_sql(statement, params)
            else:
                conn.execute(statement, params)
        return self.rows


def prepare_upsert(
    dialect: Dialect,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    fast: bool | None = None,
) -> PreparedUpsert:
    """The upsert of ``rows`` into ``table`` (see :func:`upsert`), ready to run on ``dialect``."""
    key_cols = tuple(key) if key else tuple(c.name for c in table.primary_key.columns)
    if fast is None:
        fast = speed_path_on("upsert_fast_path")
    fast = fast and dialect.name == "sqlite" and fast_path_allowed(table)
    key_of = itemgetter(*key_cols)
    steps: list[tuple[bool, Any, list[Any]]] = []
    total = 0
    for start in range(0, len(rows), batch_rows):
        for cols, group in _groups(rows[start : start + batch_rows]).items():
            group = _dedupe(group, key_of)
            total += len(group)
            driver_steps = (
                fast_steps(dialect, table, cols, key_cols, group, _upsert_statement)
                if fast
                else None
            )
            if driver_steps is not None:
                steps.extend(driver_steps)
            else:
                stmt = _upsert_statement(_insert_for(dialect, table), cols, key_cols)
                steps.append((False, stmt, group))
    return PreparedUpsert(dialect.name, steps, total)


def _groups(
    chunk: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
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
