"""Where the last writeback stopped, so the next diffs only what changed since.

A target's diff needs to look at a record again only when its verdict changed (the evaluation
rewrote it: ``evaluations.run_id`` of a later run) or when the CRM's values of the fields the
service writes changed (someone edited one, or our own writeback's echo): the ingest marks those
records (``crm:<table>`` marks, :mod:`sync_service.sync.changes`), and the diff consumes the
marks in its transaction. The cursor keeps, per target, the last evaluation run whose verdicts
the diff has seen; it is saved in the diff's transaction (``sync_state``), so a held, dry or
failed diff leaves it, and the marks, where they were. No cursor (a first writeback, another
writeback mapping) or a stream read in full since means a diff of everything.

An evaluation still going when a writeback starts pins the cursor before it: its verdicts,
committed after the diff read, must be seen by the next one. A run record older than
:data:`STALE_AFTER` still marked running belonged to a killed process and pins nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.store.models import runs, sync_state
from sync_service.store.upsert import upsert
from sync_service.sync import changes

#: A run marked running for longer than this is taken for dead (killed without its record).
STALE_AFTER = timedelta(hours=24)
_CONNECTOR = "writeback"


@dataclass(frozen=True)
class DiffCursor:
    """Diff verdicts of evaluation runs after ``run_id`` and records of CRM marks to ``upto``."""

    run_id: int
    upto: int


def load(conn: Connection, key: str, digest: str) -> int | None:
    """The last evaluation run target ``key`` has seen; None: none, or the mapping changed."""
    row = conn.execute(
        sa.select(sync_state.c.cursor_id, sync_state.c.mapping_digest).where(
            sync_state.c.connector == _CONNECTOR, sync_state.c.stream == key
        )
    ).first()
    if row is None or row.cursor_id is None or row.mapping_digest != digest:
        return None
    return int(row.cursor_id)


def at_start(conn: Connection, started: datetime) -> DiffCursor:
    """Where this writeback's diff reads to, taken before it reads."""
    live = sa.and_(
        runs.c.status == "running",
        runs.c.job.in_(["evaluate", "evaluate_full"]),
        runs.c.started_at > started - STALE_AFTER,
    )
    first_running = conn.execute(sa.select(sa.func.min(runs.c.id)).where(live)).scalar()
    if first_running is not None:
        run_id = int(first_running) - 1
    else:
        last = sa.select(sa.func.coalesce(sa.func.max(runs.c.id), 0))
        run_id = int(conn.execute(last).scalar_one())
    return DiffCursor(run_id, changes.last_seq(conn))


def save(conn: Connection, key: str, digest: str, run_id: int, now: datetime) -> None:
    """Save target ``key``'s cursor in the caller's (the diff's) transaction."""
    upsert(
        conn,
        sync_state,
        [
            {
                "connector": _CONNECTOR,
                "stream": key,
                "cursor_id": str(run_id),
                "mapping_digest": digest,
                "updated_at": now,
            }
        ],
    )
