"""Run records: every job run is a row in ``runs``, opened at start and closed with its result.

A run ends ``success``, ``partial`` (stopped cleanly before the end, e.g. API budget spent:
never shown as green), ``failed`` or ``held`` (writeback waiting for confirmation).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import BudgetExhaustedError, ServiceError
from sync_service.ops.memory import rss_mib
from sync_service.store.models import runs

#: the counter holding the process's peak RSS (MiB) when the run closed
PEAK_MEMORY = "memory.peak_mib"

RunStatus = Literal["running", "success", "partial", "failed", "held"]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass
class Run:
    """An open run: add counts as work proceeds; :func:`run_record` closes it."""

    id: int
    job: str
    started_at: datetime
    counts: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = "success"
    error: str | None = None
    config_errors: list[str] = field(default_factory=list)
    finished_at: datetime | None = None

    def add(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``key``."""
        self.counts[key] = int(self.counts.get(key, 0)) + n

    def as_dict(self) -> dict[str, Any]:
        """The run as plain data (for ``--json``)."""
        return {
            "id": self.id,
            "job": self.job,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": self.counts,
            "api_calls": self.api_calls,
            "error": self.error,
            "config_errors": self.config_errors,
        }

    def mark_partial(self, reason: str) -> None:
        """The run stopped cleanly before its end; ``reason`` says why and what happens next."""
        if self.status != "failed":
            self.status = "partial"
        self.error = reason


def open_run(engine: Engine, job: str) -> Run:
    """Insert a ``running`` row for ``job`` and return it."""
    now = utcnow()
    with engine.begin() as conn:
        run_id = conn.execute(
            runs.insert()
            .values(
                job=job,
                status="running",
                started_at=now,
                host=socket.gethostname(),
                pid=os.getpid(),
                counts={},
                api_calls={},
            )
            .returning(runs.c.id)
        ).scalar_one()
    return Run(id=run_id, job=job, started_at=now)


def close_run(engine: Engine, run: Run) -> None:
    """Write the run's final status, counts and error."""
    run.finished_at = utcnow()
    # the process's peak so far, not the job's own: jobs of `serve` share the process, and a
    # job whose figure climbs run after run is what the on-call person looks for
    run.counts[PEAK_MEMORY] = round(rss_mib())
    with engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id == run.id)
            .values(
                status=run.status,
                finished_at=run.finished_at,
                counts=run.counts,
                api_calls=run.api_calls,
                error=run.error,
                config_errors=run.config_errors or None,
            )
        )


@contextmanager
def run_record(engine: Engine, job: str) -> Iterator[Run]:
    """Open a run for ``job``; close it as success, partial or failed, whatever happens.

    A :class:`BudgetExhaustedError` ends the run as ``partial`` and is not re-raised: the work
    done is committed and the next run resumes. Any other exception marks the run failed and
    propagates.
    """
    run = open_run(engine, job)
    try:
        yield run
    except BudgetExhaustedError as exc:
        run.mark_partial(str(exc))
    except ServiceError as exc:
        run.status = "failed"
        run.error = str(exc)
        raise
    except BaseException as exc:
        run.status = "failed"
        run.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        close_run(engine, run)


#: SQL: the run went on with the last valid mappings or rules because an edit was rejected.
#: (An empty ``config_errors`` is stored as JSON ``null``, not SQL NULL, hence the cast.)
REJECTED_EDIT = sa.and_(
    runs.c.config_errors.is_not(None), sa.cast(runs.c.config_errors, sa.Text) != "null"
)


def last_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs, newest first, as plain dicts."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(runs).order_by(runs.c.id.desc()).limit(limit)).mappings()
        return [dict(r) for r in rows]
