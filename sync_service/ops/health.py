"""Readiness: is this process fit to serve? A plain function; ``/readyz`` serves it.

``/readyz`` (see :mod:`sync_service.api.routers.health`) answers 200 when the store answers,
the scheduler runs (when there is one), no job's newest run failed, none went on with the last
valid configuration because a mapping or rules edit was rejected, and the newest evaluation did
not hold the verdicts for incomplete inputs (``"inputs"`` then names the streams); 503
otherwise. The JSON body says which check failed (``rejected_edit`` lists the problems), so the
on-call person sees *what* is wrong, not only that something is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import runs
from sync_service.sync import completeness

log = logging.getLogger(__name__)

#: Problems of a rejected edit shown in ``/readyz`` (``status`` shows them all).
REJECTED_SHOWN = 5


def readiness(
    engine: Engine, scheduler_running: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Check the store, the scheduler and each job's newest finished run.

    A job whose newest run used the last valid mappings or rules (an edit was rejected) makes
    the service not ready: it keeps running, but not what is on disk, and someone must fix the
    file. The problems are under ``rejected_edit`` (the first few; ``status`` lists them all).

    Returns:
        ``{"ready": bool, "store": "ok"|"unreachable", "scheduler": ..., "jobs": {job: status},
        "rejected_edit": {"jobs": [...], "problems": [...]}}`` (the last only when there is one).
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
                sa.select(
                    runs.c.job,
                    runs.c.status,
                    runs.c.finished_at,
                    runs.c.config_errors,
                    runs.c.counts,
                ).where(runs.c.id.in_(newest))
            )
            rejected_jobs: list[str] = []
            problems: list[str] = []
            for job, status, finished_at, config_errors, counts in rows:
                report["jobs"][job] = {"status": status, "finished_at": finished_at.isoformat()}
                if status == "failed":
                    report["ready"] = False
                if job == "evaluate" and (counts or {}).get(completeness.HELD_KEY):
                    report["ready"] = False
                    report["inputs"] = [
                        f"{g.connector}.{g.stream}: {g.reason}" for g in completeness.gaps(engine)
                    ]
                if config_errors:
                    report["jobs"][job]["rejected_edit"] = len(config_errors)
                    rejected_jobs.append(job)
                    problems.extend(p for p in config_errors if p not in problems)
            if rejected_jobs:
                report["ready"] = False
                report["rejected_edit"] = {
                    "jobs": sorted(rejected_jobs),
                    "problems": problems[:REJECTED_SHOWN],
                    "total": len(problems),
                }
    except sa.exc.SQLAlchemyError as exc:
        report["store"] = "unreachable"
        report["ready"] = False
        log.warning("readiness: the store did not answer (%s)", type(exc).__name__)
    return report
