"""Bulk upserts: ``INSERT ... ON CONFLICT DO UPDATE`` in bounded batches.

The hot path of every sync. One statement per batch through the driver's executemany (which
SQLAlchemy turns into multi-row VALUES), never a per-row ORM flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

DEFAULT_BATCH_ROWS = 1000


def _insert_for(conn: Connection, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    msg = f"bulk upsert is not supported on {name}; use SQLite or PostgreSQL"
    raise NotImplementedError(msg)


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
    key_cols = list(key) if key else [c.name for c in table.primary_key.columns]
    total = 0
    it = iter(rows)
    while True:
        chunk = list(islice(it, batch_rows))
        if not chunk:
            return total
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in chunk:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for cols, group in groups.items():
            ins = _insert_for(conn, table)
            update_cols = [c for c in cols if c not in key_cols]
            if update_cols:
                stmt = ins.on_conflict_do_update(
                    index_elements=key_cols,
                    set_={c: ins.excluded[c] for c in update_cols},
                )
            else:
                stmt = ins.on_conflict_do_nothing(index_elements=key_cols)
            conn.execute(stmt, _dedupe(group, key_cols))
            total += len(group)


def _dedupe(group: list[Mapping[str, Any]], key_cols: list[str]) -> list[Mapping[str, Any]]:
    # PostgreSQL refuses to touch the same row twice in one INSERT ... ON CONFLICT statement
    # ("cannot affect row a second time"); the last version of a row in a batch wins.
    seen: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in group:
        seen[tuple(row[k] for k in key_cols)] = row
    return list(seen.values()) if len(seen) != len(group) else group
