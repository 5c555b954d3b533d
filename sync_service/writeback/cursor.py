"""Where the last writeback stopped, so the next diffs only what changed since.

A target's diff needs to look at a record again only when its verdict changed (the evaluation
rewrote it: ``evaluations.run_id`` of a later run) or when the CRM record was read again (its
``synced_at``: someone may have edited a field the service owns). The cursor keeps, per target,
the last evaluation run whose verdicts the diff has seen and the time from which records read
again count; it is saved in the diff's transaction (``sync_state``), so a held, dry or failed
diff leaves it where it was. No cursor (a first writeback, another writeback mapping) means a
diff of everything.

Runs still going when a writeback starts pin the cursor before them: an evaluation or a sync
that commits after the diff read must be seen by the next one. A run record older than
:data:`STALE_AFTER` still marked running belonged to a killed process and pins nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.store.models import runs, sync_state
from sync_service.store.upsert import upsert

#: A run marked running for longer than this is taken for dead (killed without its record).
STALE_AFTER = timedelta(hours=24)
_CONNECTOR = "writeback"


@dataclass(frozen=True)
class DiffCursor:
    """Diff verdicts of evaluation runs after ``run_id``, records read at ``synced`` or later."""

    run_id: int
    synced: datetime


def load(conn: Connection, key: str, digest: str) -> DiffCursor | None:
    """The saved cursor of target ``key``; None when there is none or the mapping changed."""
    row = conn.execute(
        sa.select(
            sync_state.c.cursor_id, sync_state.c.cursor_updated_at, sync_state.c.mapping_digest
        ).where(sync_state.c.connector == _CONNECTOR, sync_state.c.stream == key)
    ).first()
    if row is None or row.cursor_id is None or row.cursor_updated_at is None:
        return None
    if row.mapping_digest != digest:
        return None
    return DiffCursor(int(row.cursor_id), row.cursor_updated_at)


def at_start(conn: Connection, started: datetime) -> DiffCursor:
    """The cursor the next writeback starts from, taken before this one's diff reads."""
    live = sa.and_(runs.c.status == "running", runs.c.started_at > started - STALE_AFTER)
    first_running = conn.execute(sa.select(sa.func.min(runs.c.id)).where(live)).scalar()
    if first_running is not None:
        run_id = int(first_running) - 1
    else:
        run_id = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.id), 0))).scalar_one()
        )
    oldest = conn.execute(sa.select(sa.func.min(runs.c.started_at)).where(live)).scalar()
    synced = min(started, oldest) if oldest is not None else started
    return DiffCursor(run_id, synced)


def save(conn: Connection, key: str, digest: str, cursor: DiffCursor, now: datetime) -> None:
    """Save ``cursor`` for target ``key`` in the caller's (the diff's) transaction."""
    upsert(
        conn,
        sync_state,
        [
            {
                "connector": _CONNECTOR,
                "stream": key,
                "cursor_id": str(cursor.run_id),
                "cursor_updated_at": cursor.synced,
                "mapping_digest": digest,
                "updated_at": now,
            }
        ],
    )
