"""The privacy part of ``sync-service status``: erasures, tombstones and what retention did."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.settings import PrivacySettings
from sync_service.store.models import (
    privacy_deleted_seen,
    privacy_erasures,
    privacy_tombstones,
    runs,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def privacy_status(conn: Connection, settings: PrivacySettings) -> dict[str, Any]:
    """Erasures so far, tombstones, deleted records awaiting their purge and the last pass."""
    e, s = privacy_erasures, privacy_deleted_seen
    erasures, last_erasure = conn.execute(
        sa.select(sa.func.count(), sa.func.max(e.c.erased_at))
    ).one()
    tombstones = conn.execute(sa.select(sa.func.count()).select_from(privacy_tombstones)).scalar()
    waiting, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(s.c.seen_at)).where(s.c.purged_at.is_(None))
    ).one()
    purged, last_purge = conn.execute(
        sa.select(sa.func.count(), sa.func.max(s.c.purged_at)).where(s.c.purged_at.is_not(None))
    ).one()
    # The housekeeping records its figures on the reconcile run (``retention.*`` counts).
    last = conn.execute(
        sa.select(runs.c.id, runs.c.finished_at, runs.c.counts)
        .where(runs.c.job == "reconcile", runs.c.status.in_(("success", "partial")))
        .order_by(runs.c.id.desc())
        .limit(1)
    ).first()
    last_pass = None
    if last is not None:
        figures = {k: v for k, v in (last.counts or {}).items() if k.startswith("retention.")}
        last_pass = {"run_id": last.id, "at": _iso(last.finished_at), "counts": figures}
    next_purge = oldest + timedelta(days=settings.deleted_days) if oldest is not None else None
    return {
        "deleted_days": settings.deleted_days,
        "free_text_days": settings.free_text_days,
        "erasures": int(erasures or 0),
        "last_erasure_at": _iso(last_erasure),
        "tombstones": int(tombstones or 0),
        "deleted_awaiting_purge": int(waiting or 0),
        "next_purge_due": _iso(next_purge),
        "purged": int(purged or 0),
        "last_purge_at": _iso(last_purge),
        "last_retention_pass": last_pass,
    }


def status_lines(report: dict[str, Any]) -> list[str]:
    """The privacy section of the text status."""
    free = f"{report['free_text_days']} days" if report["free_text_days"] else "kept"
    lines = [
        f"Privacy: {report['erasures']} erasure(s), last {report['last_erasure_at'] or '-'}; "
        f"{report['tombstones']} tombstone(s)",
        f"  retention: deleted records purged after {report['deleted_days']} days "
        f"({report['purged']} purged, {report['deleted_awaiting_purge']} waiting, next due "
        f"{report['next_purge_due'] or '-'}); free text {free}",
    ]
    last = report["last_retention_pass"]
    if last is not None:
        done = ", ".join(f"{k.removeprefix('retention.')} {v}" for k, v in last["counts"].items())
        lines.append(
            f"  last pass: run {last['run_id']} at {last['at']}: {done or 'nothing to do'}"
        )
    return lines
