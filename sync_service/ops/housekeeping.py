"""Housekeeping: trim the operational tables a service running for months would otherwise grow.

Deleted after ``sync.history_days``: finished runs (the latest of each job is always kept, so
``status`` and the health check still know how each job last ended), writeback outbox rows the
CRM confirmed (``done``; the confirmed values stay in the ``writeback_log`` audit), and resolved
quarantine entries. The audit trails an advocacy manager asks about — ``evaluation_history`` and
``writeback_log`` — are never trimmed here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import quarantine, runs, writeback_outbox


def trim_history(engine: Engine, *, keep_days: int, now: datetime) -> dict[str, int]:
    """Delete what is older than ``keep_days``; return the rows deleted per table."""
    cutoff = now - timedelta(days=keep_days)
    latest = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.job).scalar_subquery()
    statements = {
        "runs": runs.delete().where(
            runs.c.finished_at.is_not(None),
            runs.c.finished_at < cutoff,
            runs.c.id.not_in(latest),
        ),
        "writeback_outbox": writeback_outbox.delete().where(
            writeback_outbox.c.state == "done", writeback_outbox.c.updated_at < cutoff
        ),
        "quarantine": quarantine.delete().where(
            quarantine.c.resolved.is_(True), quarantine.c.created_at < cutoff
        ),
    }
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        for table, stmt in statements.items():
            deleted[table] = conn.execute(stmt).rowcount or 0
    return deleted
