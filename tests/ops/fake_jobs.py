"""A cheap but real job for the scheduler tests: batches committed with their watermark.

``serve`` runs it when started as ``python -m tests.ops.serve_fake serve``. Each batch sleeps
(the "API call"), then commits its rows count and the advanced cursor in one transaction, like
the real ingest; it checks ``stop`` between batches and ends ``partial`` when asked to stop.

Environment: ``FAKE_JOB_BATCHES`` (default 3), ``FAKE_JOB_BATCH_SECONDS`` (default 0.1),
``FAKE_JOB_FAIL`` (raise a FatalApiError after the first batch).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from canonical.errors import FatalApiError
from sync_service.context import AppContext
from sync_service.ops.locks import job_lock
from sync_service.ops.runs import Run, run_record
from sync_service.store.models import sync_state

STREAM = "Fake"


def cursor(engine: sa.Engine, job: str) -> int:
    """How many records the job's committed watermark covers."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sync_state.c.cursor_id).where(
                sync_state.c.connector == job, sync_state.c.stream == STREAM
            )
        ).scalar()
    return int(value or 0)


def _commit_batch(engine: sa.Engine, job: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(sync_state.c.cursor_id).where(
                sync_state.c.connector == job, sync_state.c.stream == STREAM
            )
        ).scalar()
        if current is None:
            conn.execute(
                sync_state.insert().values(
                    connector=job, stream=STREAM, cursor_id="1", updated_at=now
                )
            )
        else:
            conn.execute(
                sync_state.update()
                .where(sync_state.c.connector == job, sync_state.c.stream == STREAM)
                .values(cursor_id=str(int(current) + 1), updated_at=now)
            )


def run_job(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
    """Process ``FAKE_JOB_BATCHES`` batches of one record each."""
    batches = int(ctx.env.get("FAKE_JOB_BATCHES", "3"))
    delay = float(ctx.env.get("FAKE_JOB_BATCH_SECONDS", "0.1"))
    # Like the pipeline: the stage lock guards the run record (and closes abandoned ones).
    with job_lock(ctx.engine, f"stage.{job}"), run_record(ctx.engine, job) as run:
        run.counts[f"records.{STREAM}"] = 0
        for i in range(batches):
            if stop is not None and stop.is_set():
                run.mark_partial("stopped by shutdown; the next run resumes from the saved cursor")
                break
            time.sleep(delay)
            _commit_batch(ctx.engine, job)
            run.add(f"records.{STREAM}")
            if i == 0 and ctx.env.get("FAKE_JOB_FAIL"):
                raise FatalApiError("INVALID_FIELD: No such column 'Foo__c' on Contact")
        run.api_calls["salesforce"] = {"calls": batches, "used": 100, "limit": 1000}
    return run
