"""Readiness: is this process fit to serve? A plain function; ``/readyz`` serves it.

``/readyz`` (see :mod:`sync_service.api.routers.health`) answers 200 when the store answers,
the scheduler runs (when there is one) and no job's newest run failed; 503 otherwise. The JSON
body says which check failed, so the on-call person sees *what* is wrong, not only that
something is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import runs

log = logging.getLogger(__name__)


def readiness(
    engine: Engine, scheduler_running: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Check the store, the scheduler and each job's newest finished run.

    Returns:
        ``{"ready": bool, "store": "ok"|"unreachable", "scheduler": ..., "jobs": {job: status}}``.
    """
    report: dict[str, Any] = {"ready": True, "store": "ok", "jobs": {}}
    if scheduler_running is not None:
        report["scheduler"] = "running" if scheduler_running() else "stopped"
        if report["scheduler"] != "running":
            report["ready"] = False
    try:
        with engine.connect() as conn:
            newest = (
                sa.select(sa.func.max(runs.c.id))
                .where(runs.c.finished_at.is_not(None))
                .group_by(runs.c.job)
                .scalar_subquery()
            )
            rows = conn.execute(
                sa.select(runs.c.job, runs.c.status, runs.c.finished_at).where(
                    runs.c.id.in_(newest)
                )
            )
            for job, status, finished_at in rows:
                report["jobs"][job] = {"status": status, "finished_at": finished_at.isoformat()}
                if status == "failed":
                    report["ready"] = False
    except sa.exc.SQLAlchemyError as exc:
        report["store"] = "unreachable"
        report["ready"] = False
        log.warning("readiness: the store did not answer (%s)", type(exc).__name__)
    return report
