"""API calls already spent today, from the run records, so a daily budget holds across runs.

Each run records ``run.api_calls[system] = {"calls": n, ...}``; a connector built for a new run
starts from the sum of today's (UTC) runs, so twenty hourly runs cannot each spend the whole
daily share. Runs are few per day, so reading today's rows is bounded.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.ops.runs import utcnow
from sync_service.store.models import runs


def calls_today(engine: Engine, system: str, now: datetime | None = None) -> int:
    """Calls to ``system`` recorded by runs started since 00:00 UTC today."""
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    total = 0
    with engine.connect() as conn:
        for (api_calls,) in conn.execute(
            sa.select(runs.c.api_calls).where(runs.c.started_at >= start)
        ):
            entry = (api_calls or {}).get(system) if isinstance(api_calls, dict) else None
            if isinstance(entry, dict):
                try:
                    total += int(entry.get("calls") or 0)
                except (TypeError, ValueError):
                    continue
    return total
