"""The audit trail: every value the CRM confirmed, and the baseline it replaced.

Written in the same transaction that marks the outbox row done, so the log, the
``writeback_state`` baseline and the outbox can never disagree. ``explain`` reads it back with
:func:`history`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync_service.store.models import writeback_log, writeback_state
from sync_service.store.upsert import upsert
from sync_service.writeback.outbox import OpenRow


def record_confirmed(
    conn: Connection,
    target: str,
    object_name: str,
    rows: Iterable[OpenRow],
    *,
    now: datetime,
    run_id: int | None,
) -> int:
    """Move the confirmed values into ``writeback_state`` and append them to the log.

    Returns:
        The number of field values recorded.
    """
    state_rows: list[dict[str, Any]] = []
    log_rows: list[dict[str, Any]] = []
    for row in rows:
        for field, value in row.fields.items():
            state_rows.append(
                {
                    "target": target,
                    "object_name": object_name,
                    "record_id": row.record_id,
                    "field": field,
                    "value": value,
                    "confirmed_at": now,
                }
            )
            log_rows.append(
                {
                    "target": target,
                    "object_name": object_name,
                    "record_id": row.record_id,
                    "field": field,
                    "old_value": row.old_values.get(field),
                    "new_value": value,
                    "policy_version": row.policy_version,
                    "written_at": now,
                    "run_id": run_id,
                }
            )
    if state_rows:
        upsert(conn, writeback_state, state_rows)
        conn.execute(sa.insert(writeback_log), log_rows)
    return len(log_rows)


def history(engine: Engine, record_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The values written to one CRM record, newest first (for ``explain``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                writeback_log.c.target,
                writeback_log.c.object_name,
                writeback_log.c.field,
                writeback_log.c.old_value,
                writeback_log.c.new_value,
                writeback_log.c.policy_version,
                writeback_log.c.written_at,
                writeback_log.c.run_id,
            )
            .where(writeback_log.c.record_id == record_id)
            .order_by(writeback_log.c.id.desc())
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]
