"""Housekeeping: trim the operational tables a service running for months would otherwise grow.

Deleted after ``sync.history_days``: finished runs (the latest of each job is always kept, so
``status`` and the health check still know how each job last ended), writeback outbox rows the
CRM confirmed (``done``; the confirmed values stay in the ``writeback_log`` audit), and resolved
quarantine entries. The audit trails an advocacy manager asks about — ``evaluation_history`` and
``writeback_log`` — are never trimmed here.

:func:`housekeeping` is the daily pass (run after reconciliation): the trim above, then the
privacy retention (:mod:`sync_service.privacy.retention`: personal data of records deleted
in the CRM after ``privacy.deleted_days``, free text after ``privacy.free_text_days``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.privacy.retention import apply_retention
from sync_service.settings import Settings
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


def housekeeping(engine: Engine, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The daily pass: trim history, apply privacy retention; figures for ``run.counts``."""
    counts = {
        f"trimmed.{table}": n
        for table, n in trim_history(engine, keep_days=settings.sync.history_days, now=now).items()
        if n
    }
    counts.update(apply_retention(engine, settings.privacy, now).as_counts())
    return counts
