"""The scheduler: APScheduler 3.x jobs built from ``settings.jobs``; each body is one call.

Thin on purpose. Every job has an explicit id (its name), ``coalesce=True`` (runs missed while
one was running, or while the service was down, collapse into one), ``max_instances=1`` (a job
never overlaps itself in this process) and the configured ``misfire_grace_time``. Across
processes and replicas, the job's lock (:mod:`sync_service.ops.locks`) keeps a single runner.

The body of every scheduled job is :func:`execute_job`, which is tested without a scheduler: it
skips if shutdown began, takes the job's lock, calls the pipeline's
``run_job(ctx, job, stop=...)`` (a sync job is followed there by evaluation and writeback), and
notifies the webhook when the run failed. It never raises into the scheduler.

On start, a job whose last successful run started longer ago than its interval (or, for a cron
job, missed a fire time since then) runs at once, so a restarted service catches up.

On a SQLite store, jobs run one at a time (:func:`store_writer`): SQLite has one writer per
database, and two jobs writing at once (the first Salesforce and Gainsight syncs, a sync and the
evaluation of another) end in ``database is locked`` however long the busy timeout, since a
shared transaction of a first load holds the write lock for longer. PostgreSQL jobs run side by
side, each under its own lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from canonical.errors import LockBusyError, ServiceError, SettingsError
from canonical.model import System
from sync_service.context import AppContext
from sync_service.ops.locks import STAGE_PREFIX, LockHandle, job_lock
from sync_service.ops.metrics import SKIPPED_RUNS
from sync_service.ops.notify import (
    job_failed_text,
    job_recovered_text,
    notify,
    rejected_edit_text,
)
from sync_service.ops.runs import REJECTED_EDIT, Run, utcnow
from sync_service.settings import JobSettings, Settings
from sync_service.store.models import runs

log = logging.getLogger(__name__)


class JobRunner(Protocol):
    """``run_job(ctx, job, *, stop=None) -> Run``: the pipeline's entry point."""

    def __call__(self, ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
        """Run ``job`` to its end (or until ``stop`` is set between batches)."""
        ...


def _pipeline_runner() -> JobRunner:
    # Imported late: the pipeline imports the stages, which a scheduler test never needs.
    from sync_service.pipeline import run_job

    return run_job


#: One writer lock per SQLite database file in this process (see :func:`store_writer`).
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


@contextmanager
def store_writer(engine: Engine, job: str, stop: threading.Event | None) -> Iterator[bool]:
    """Run the block as the only writing job of a SQLite store in this process.

    Yields True once the store is this job's, False if shutdown began while it waited (the
    job should then not start). PostgreSQL stores yield True at once: their jobs run in
    parallel.
    """
    if engine.dialect.name != "sqlite":
        yield True
        return
    key = engine.url.render_as_string(hide_password=True)
    with _WRITERS_LOCK:
        lock = _WRITERS.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=False):
        log.info("job '%s' waits: another job writes the SQLite store", job, extra={"job": job})
        while not lock.acquire(timeout=0.2):
            if stop is not None and stop.is_set():
                yield False
                return
    try:
        yield True
    finally:
        lock.release()


class InFlight:
    """Counts job bodies running in this process, so shutdown can wait for them.

    It also remembers the jobs that failed once shutdown began, so ``serve`` exits 1 when a
    job did not end cleanly on the way out (a clean stop after the current batch exits 0).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[str, int] = {}
        self.failed_while_stopping: list[str] = []

    def enter(self, job: str) -> None:
        """A job body starts."""
        with self._cond:
            self._jobs[job] = self._jobs.get(job, 0) + 1

    def leave(self, job: str) -> None:
        """A job body ended."""
        with self._cond:
            self._jobs[job] -= 1
            if not self._jobs[job]:
                del self._jobs[job]
            self._cond.notify_all()

    def running(self) -> list[str]:
        """The jobs running now."""
        with self._cond:
            return sorted(self._jobs)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs; False if ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs, timeout=timeout)


class LockWatch:
    """While a job runs: pass shutdown on to it, and stop it if its lock is lost.

    The job gets its own stop event, set when the service shuts down or when the lock's
    database session is gone (then another replica may already run the job: ours stops after
    the batch it is on, whose rows and watermark commit as one, so at most one batch overlaps).
    """

    #: Seconds between checks of the lock's connection.
    check_every = 15.0

    def __init__(self, handle: LockHandle, stop: threading.Event | None) -> None:
        self.handle = handle
        self.stop = stop
        self.job_stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"lockwatch-{handle.job}")

    def __enter__(self) -> threading.Event:
        self._thread.start()
        return self.job_stop

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        next_check = time.monotonic() + self.check_every
        while not self._done.wait(0.05):
            if self.stop is not None and self.stop.is_set():
                self.job_stop.set()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self.check_every
                if not self.handle.alive():
                    log.error(
                        "lost the lock of job '%s' (its database session ended); stopping "
                        "after the current batch",
                        self.handle.job,
                        extra={"job": self.handle.job},
                    )
                    self.job_stop.set()
                    return


def execute_job(
    ctx: AppContext,
    job: str,
    *,
    stop: threading.Event | None = None,
    runner: JobRunner | None = None,
    in_flight: InFlight | None = None,
) -> Run | None:
    """The body of every scheduled job: lock, run, report. Never raises.

    Returns:
        The finished run, or None when it was skipped (shutting down, lock busy) or crashed
        before a run record could be returned.
    """
    if stop is not None and stop.is_set():
        log.info("job '%s' not started: shutting down", job)
        return None
    if in_flight is not None:
        in_flight.enter(job)
    failed = True
    try:
        with store_writer(ctx.engine, job, stop) as mine:
            if not mine:
                log.info("job '%s' not started: shutting down", job)
                failed = False
                return None
            crashed: list[bool] = []
            run = _execute(ctx, job, stop, runner, crashed)
            failed = bool(crashed) or (run is not None and run.status == "failed")
            return run
    finally:
        if in_flight is not None:
            if failed and stop is not None and stop.is_set():
                in_flight.failed_while_stopping.append(job)
            in_flight.leave(job)


def _execute(
    ctx: AppContext,
    job: str,
    stop: threading.Event | None,
    runner: JobRunner | None,
    crashed: list[bool],
) -> Run | None:
    mark: list[int] = []  # the newest run id before this job: its follow-ups come after
    try:
        return _execute_job(ctx, job, stop, runner, mark, crashed)
    finally:
        if mark:
            _alert_follow_ups(ctx, job, mark[0])
            _alert_rejected_edits(ctx, mark[0])


def _newest_run_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(runs.c.id))).scalar() or 0)


def _alert_follow_ups(ctx: AppContext, job: str, after_id: int) -> None:
    """Alert on the evaluation and writeback runs this job chained (failed or held)."""
    if ctx.settings.webhook_url is None:
        return
    try:
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.job, runs.c.status, runs.c.error)
                .where(
                    runs.c.id > after_id,
                    runs.c.job != job,
                    runs.c.finished_at.is_not(None),
                    runs.c.pid == os.getpid(),
                    runs.c.host == socket.gethostname(),
                )
                .order_by(runs.c.id)
            ).all()
    except sa.exc.SQLAlchemyError:
        return
    for row in rows:
        _alert(ctx, row.job, row.status, row.error, row.id)


def _alert_rejected_edits(ctx: AppContext, after_id: int) -> None:
    """Tell the webhook, once per distinct edit, that this job's runs used the last valid config.

    The sync, evaluation and writeback of a cycle each see the same rejected edit, and it stays
    rejected run after run until someone fixes it: one message per edit, not one per run.
    """
    if ctx.settings.webhook_url is None:
        return
    try:
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.job, runs.c.config_errors)
                .where(
                    runs.c.id > after_id,
                    REJECTED_EDIT,
                    runs.c.pid == os.getpid(),
                    runs.c.host == socket.gethostname(),
                )
                .order_by(runs.c.id)
            ).all()
    except sa.exc.SQLAlchemyError:
        return
    fresh: dict[str, tuple[list[str], list[str]]] = {}
    for job, problems in rows:
        digest = hashlib.sha256(json.dumps(sorted(problems)).encode()).hexdigest()
        if digest in ctx.notified_edits:
            continue
        jobs, _ = fresh.setdefault(digest, ([], list(problems)))
        jobs.append(job)
    for digest, (jobs, problems) in fresh.items():
        ctx.notified_edits.add(digest)
        log.error(
            "config edit rejected; the last valid configuration keeps running: %s", problems[0]
        )
        notify(ctx.settings.webhook_url, rejected_edit_text(jobs, problems))


def _execute_job(
    ctx: AppContext,
    job: str,
    stop: threading.Event | None,
    runner: JobRunner | None,
    mark: list[int],
    crashed: list[bool],
) -> Run | None:
    try:
        run_fn = runner or _pipeline_runner()
        with job_lock(ctx.engine, job) as handle:
            log.info("job '%s' started", job, extra={"job": job})
            mark.append(_newest_run_id(ctx.engine))
            with LockWatch(handle, stop) as job_stop:
                run = run_fn(ctx, job, stop=job_stop)
    except LockBusyError as exc:
        busy = exc.context.get("job", job)
        if busy not in (job, f"{STAGE_PREFIX}{job}"):
            # The job itself ran (its run is recorded); a follow-up (evaluate, writeback) was
            # running elsewhere, and that runner does the follow-up work.
            log.info("job '%s' ran; follow-up '%s' skipped: running elsewhere", job, busy)
            return None
        SKIPPED_RUNS.labels(job=job).inc()
        log.info("job '%s' skipped: another runner holds it (%s)", job, busy, extra={"job": job})
        return None
    except ServiceError as exc:
        crashed.append(True)
        log.error("job '%s' failed: %s", job, exc, extra={"job": job})
        _alert(ctx, job, "failed", str(exc))
        return None
    except Exception as exc:
        crashed.append(True)
        log.exception("job '%s' crashed", job, extra={"job": job})
        _alert(ctx, job, "failed", f"{type(exc).__name__}: {exc}")
        return None
    extra = {"job": job, "run_id": run.id, "status": run.status}
    if run.status in ("failed", "held"):
        log.error("job '%s' ended %s: %s", job, run.status, run.error, extra=extra)
    elif run.status == "partial":
        log.warning("job '%s' ended partial: %s", job, run.error, extra=extra)
    else:
        log.info("job '%s' finished", job, extra=extra)
    _alert(ctx, job, run.status, run.error, run.id)
    return run


def _alert(
    ctx: AppContext, job: str, status: str, error: str | None, run_id: int | None = None
) -> None:
    """Tell the webhook when a job starts failing (or is held) and when it recovers.

    A job failing the same way run after run is reported once, not every half hour: the
    previous finished run of the job (the lock makes "previous" well defined) decides.
    """
    url = ctx.settings.webhook_url
    if url is None:
        return
    try:
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.status, runs.c.error)
                .where(runs.c.job == job, runs.c.finished_at.is_not(None))
                .order_by(runs.c.id.desc())
                .limit(3)
            ).all()
    except sa.exc.SQLAlchemyError:
        rows = []
    # The run just closed is the newest row when it exists; the previous one is the next row.
    previous = [r for r in rows if r.id != run_id][:1] if run_id is not None else rows[1:2]
    prev = previous[0] if previous else None
    if status in ("failed", "held"):
        if prev is not None and prev.status == status and prev.error == error:
            log.info("job '%s' still %s the same way; not notifying again", job, status)
            return
        notify(url, job_failed_text(job, status, error, run_id))
    elif status == "success" and prev is not None and prev.status in ("failed", "held"):
        notify(url, job_recovered_text(job, run_id))


def build_trigger(name: str, job: JobSettings) -> IntervalTrigger | CronTrigger:
    """The APScheduler trigger of one job's settings (all times UTC).

    Raises:
        SettingsError: the cron expression is invalid.
    """
    if job.interval_minutes is not None:
        return IntervalTrigger(seconds=job.interval_minutes * 60, timezone=UTC)
    try:
        return CronTrigger.from_crontab(job.cron or "", timezone=UTC)
    except ValueError as exc:
        msg = f"jobs.{name}.cron: '{job.cron}' is not a valid crontab expression ({exc})"
        raise SettingsError(msg) from None


def last_successes(engine: Engine) -> dict[str, datetime | None]:
    """For every job that ever ran: when its newest successful run started (None: never)."""
    success_start = sa.case((runs.c.status == "success", runs.c.started_at))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(runs.c.job, sa.func.max(success_start)).group_by(runs.c.job))
        return {job: started for job, started in rows}


def next_due(
    name: str,
    job: JobSettings,
    last_success: datetime | None,
    now: datetime,
    *,
    ever_ran: bool = True,
) -> datetime:
    """When ``job`` is next due given its last success; ``now`` (or earlier) means at once.

    A job that never succeeded is due at once, except a cron job that never ran at all: on a
    fresh install the first sync reads everything anyway, so the nightly reconciliation waits
    for its slot instead of doubling the first pull's API calls.
    """
    if last_success is None:
        if not ever_ran and job.interval_minutes is None:
            fire: datetime | None = build_trigger(name, job).get_next_fire_time(None, now)
            return fire if fire is not None else now
        return now
    if job.interval_minutes is not None:
        return last_success + timedelta(minutes=job.interval_minutes)
    # The trigger's next fire time is inclusive: a run started on the fire time itself covers it.
    after = last_success + timedelta(seconds=1)
    fire = build_trigger(name, job).get_next_fire_time(None, after)
    return fire if fire is not None else now


def enabled_jobs(settings: Settings) -> dict[str, JobSettings]:
    """The jobs to schedule: enabled, and their connector enabled.

    Job names are known ones: the settings refuse others at load (with a did-you-mean).
    """
    jobs = {}
    for name, job in settings.jobs.items():
        if not job.enabled:
            continue
        if name in (System.SALESFORCE, "asks") and not settings.salesforce.enabled:
            continue
        if name == System.GAINSIGHT and not (
            settings.gainsight.enabled and settings.gainsight.base_url
        ):
            continue
        jobs[name] = job
    return jobs


def build_scheduler(
    ctx: AppContext,
    *,
    stop: threading.Event,
    runner: JobRunner | None = None,
    in_flight: InFlight | None = None,
    now: datetime | None = None,
) -> BackgroundScheduler:
    """A (not yet started) scheduler with one APScheduler job per enabled job in the settings.

    Jobs that are overdue (see :func:`next_due`) are set to run at once.

    Raises:
        SettingsError: an unknown job name or a bad cron expression.
    """
    jobs = enabled_jobs(ctx.settings)
    now = now or utcnow()
    last = last_successes(ctx.engine) if jobs else {}
    # One thread per job: different jobs may run side by side (their locks differ; on SQLite
    # store_writer makes them take turns); the same job never does (max_instances=1 here, its
    # lock across processes).
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=max(1, len(jobs)))},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    for name, job in jobs.items():
        trigger = build_trigger(name, job)
        due = next_due(name, job, last.get(name), now, ever_ran=name in last)
        options: dict[str, Any] = {}
        if due <= now:
            options["next_run_time"] = now  # catch up at once
            log.info("job '%s' is overdue; it runs now", name, extra={"job": name})
        elif job.interval_minutes is not None:
            options["next_run_time"] = due  # keep the cadence of the last success
        scheduler.add_job(
            execute_job,
            trigger=trigger,
            args=[ctx, name],
            kwargs={"stop": stop, "runner": runner, "in_flight": in_flight},
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=job.misfire_grace_seconds,
            replace_existing=True,
            **options,
        )
    return scheduler


def scheduled_next_runs(scheduler: BackgroundScheduler) -> dict[str, datetime | None]:
    """Each scheduled job's next run time (None when paused)."""
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}
