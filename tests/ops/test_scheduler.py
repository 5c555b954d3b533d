"""The job body, catch-up on start, the fast schedule and failure notifications."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from canonical.errors import SettingsError
from sync_service.context import AppContext
from sync_service.ops.locks import job_lock, lock_key
from sync_service.ops.metrics import SKIPPED_RUNS
from sync_service.ops.notify import notify
from sync_service.ops.runs import PEAK_MEMORY, Run, last_runs, run_record
from sync_service.ops.scheduler import (
    InFlight,
    LockWatch,
    _pipeline_runner,
    build_scheduler,
    execute_job,
    next_due,
)
from sync_service.settings import JobSettings
from sync_service.store.engine import make_engine
from sync_service.store.models import runs
from tests.ops import fake_jobs
from tests.ops.support import overlaps

ONE_SECOND = 1 / 60  # interval_minutes


class CtxFactory:
    """Builds contexts on a settings file; disposes their engines at the end of the test."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp_path, self.db_url = tmp_path, db_url
        self.made: list[AppContext] = []

    def __call__(self, jobs: str, **env: str) -> AppContext:
        cfg = self.tmp_path / f"settings{len(self.made)}.yaml"
        cfg.write_text(
            f"database_url: {self.db_url}\n"
            "salesforce: {enabled: true}\ngainsight: {enabled: false}\n"
            f"jobs:\n{jobs}",
            encoding="utf-8",
        )
        ctx = AppContext(config_path=str(cfg), env={"FAKE_JOB_BATCH_SECONDS": "0.05", **env})
        self.made.append(ctx)
        return ctx

    def close(self) -> None:
        for ctx in self.made:
            if "engine" in ctx.__dict__:
                ctx.engine.dispose()


@pytest.fixture
def make_ctx(tmp_path: Path, db_url: str) -> Iterator[CtxFactory]:
    factory = CtxFactory(tmp_path, db_url)
    yield factory
    factory.close()


class Webhook:
    """A local Slack-like endpoint that records what it receives."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/SECRETPATH"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def test_job_body_runs_the_job_under_its_lock(make_ctx: CtxFactory) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n")
    run = execute_job(ctx, "salesforce", runner=fake_jobs.run_job)
    assert run is not None
    assert run.status == "success"
    assert run.counts["records.Fake"] == 3
    assert fake_jobs.cursor(ctx.engine, "salesforce") == 3


def test_job_body_skips_when_another_runner_holds_the_lock(make_ctx: CtxFactory) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n")
    calls: list[str] = []

    def runner(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
        calls.append(job)
        raise AssertionError("must not run")

    before = SKIPPED_RUNS.labels(job="salesforce")._value.get()
    holder_in, release = threading.Event(), threading.Event()

    def hold() -> None:
        with job_lock(ctx.engine, "salesforce"):
            holder_in.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holder_in.wait(10)
        assert execute_job(ctx, "salesforce", runner=runner) is None
    finally:
        release.set()
        t.join()
    assert calls == []
    assert SKIPPED_RUNS.labels(job="salesforce")._value.get() == before + 1


def test_a_manual_run_of_the_same_stage_makes_the_job_skip_and_is_left_alone(
    make_ctx: CtxFactory,
) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n")
    before = SKIPPED_RUNS.labels(job="salesforce")._value.get()
    holder_in, release = threading.Event(), threading.Event()
    manual: list[int] = []

    def cli_sync() -> None:  # what `sync-service sync` does: stage lock, then its run record
        with job_lock(ctx.engine, "stage.salesforce"), run_record(ctx.engine, "salesforce") as r:
            manual.append(r.id)
            holder_in.set()
            release.wait(10)

    t = threading.Thread(target=cli_sync)
    t.start()
    try:
        assert holder_in.wait(10)
        assert execute_job(ctx, "salesforce", runner=fake_jobs.run_job) is None
        (row,) = last_runs(ctx.engine)
        assert row["id"] == manual[0]
        assert row["status"] == "running"  # not mistaken for an abandoned run
    finally:
        release.set()
        t.join()
    assert SKIPPED_RUNS.labels(job="salesforce")._value.get() == before + 1


def test_a_busy_follow_up_is_not_counted_as_a_skipped_run(
    make_ctx: CtxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n")

    def runner(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
        fake_jobs.run_job(ctx, job, stop=stop)
        with job_lock(ctx.engine, "stage.evaluate"):  # the follow-up, as the pipeline does it
            pass
        raise AssertionError("unreachable: evaluate is held elsewhere")

    before = SKIPPED_RUNS.labels(job="salesforce")._value.get()
    holder_in, release = threading.Event(), threading.Event()

    def hold() -> None:
        with job_lock(ctx.engine, "stage.evaluate"):
            holder_in.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert holder_in.wait(10)
        with caplog.at_level(logging.INFO):
            assert execute_job(ctx, "salesforce", runner=runner) is None
    finally:
        release.set()
        t.join()
    assert SKIPPED_RUNS.labels(job="salesforce")._value.get() == before
    assert "follow-up 'stage.evaluate' skipped" in caplog.text
    assert last_runs(ctx.engine)[0]["status"] == "success"


def test_a_lost_postgres_lock_stops_the_job_after_its_batch(
    tmp_path: Path,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(LockWatch, "check_every", 0.2)
    factory = CtxFactory(tmp_path, pg_url)
    admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        ctx = factory("  salesforce: {interval_minutes: 30}\n", FAKE_JOB_BATCHES="100000")
        result: list[Run | None] = []
        with caplog.at_level(logging.INFO):
            t = threading.Thread(
                target=lambda: result.append(
                    execute_job(ctx, "salesforce", runner=fake_jobs.run_job)
                )
            )
            t.start()
            deadline = time.monotonic() + 20
            while fake_jobs.cursor(ctx.engine, "salesforce") < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            key = lock_key("salesforce") % 2**64
            with admin.connect() as conn:  # e.g. a database failover cuts the lock's session
                killed = conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                        "'advisory' AND granted AND classid = :hi AND objid = :lo AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
                ).all()
            assert len(killed) == 1
            t.join(timeout=20)
        assert not t.is_alive()
        run = result[0]
        assert run is not None
        assert run.status == "partial"
        assert "lost the lock of job 'salesforce'" in caplog.text
        assert fake_jobs.cursor(ctx.engine, "salesforce") == run.counts["records.Fake"]
    finally:
        factory.close()
        admin.dispose()


def test_job_body_does_not_start_once_shutdown_began(make_ctx: CtxFactory) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n")
    stop = threading.Event()
    stop.set()
    assert execute_job(ctx, "salesforce", stop=stop, runner=fake_jobs.run_job) is None
    assert last_runs(ctx.engine) == []


def test_a_stop_between_batches_ends_the_run_partial_with_its_batches_committed(
    make_ctx: CtxFactory,
) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n", FAKE_JOB_BATCHES="100")
    stop = threading.Event()
    in_flight = InFlight()
    result: list[Run | None] = []
    t = threading.Thread(
        target=lambda: result.append(
            execute_job(ctx, "salesforce", stop=stop, runner=fake_jobs.run_job, in_flight=in_flight)
        )
    )
    t.start()
    deadline = time.monotonic() + 10
    while fake_jobs.cursor(ctx.engine, "salesforce") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    assert in_flight.wait_idle(timeout=5)
    t.join()
    run = result[0]
    assert run is not None
    assert run.status == "partial"
    assert 2 <= run.counts["records.Fake"] < 100
    # nothing lost: every counted record is under the committed watermark
    assert fake_jobs.cursor(ctx.engine, "salesforce") == run.counts["records.Fake"]


def test_a_failed_job_notifies_the_webhook_without_leaking_secrets(
    make_ctx: CtxFactory, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = make_ctx(
        "  salesforce: {interval_minutes: 30}\n",
        FAKE_JOB_FAIL="1",
        SYNC_WEBHOOK_URL=webhook.url,
    )
    with caplog.at_level(logging.INFO):
        assert execute_job(ctx, "salesforce", runner=fake_jobs.run_job) is None
    assert len(webhook.received) == 1
    text = webhook.received[0]["text"]
    assert "'salesforce' failed" in text
    assert "INVALID_FIELD" in text
    newest = last_runs(ctx.engine)[0]
    assert newest["status"] == "failed"
    assert "SECRETPATH" not in caplog.text


def test_a_run_that_ends_failed_without_raising_notifies_too(
    make_ctx: CtxFactory, webhook: Webhook
) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n", SYNC_WEBHOOK_URL=webhook.url)

    def runner(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
        with run_record(ctx.engine, job) as run:
            run.status = "failed"
            run.error = "gainsight sync failed: 503 for jane.doe@acme.com"
        return run

    run = execute_job(ctx, "salesforce", runner=runner)
    assert run is not None
    assert run.status == "failed"
    assert len(webhook.received) == 1
    assert "jane.doe@acme.com" not in webhook.received[0]["text"]
    assert "<email:" in webhook.received[0]["text"]


def test_a_repeating_failure_is_notified_once_and_the_recovery_too(
    make_ctx: CtxFactory, webhook: Webhook
) -> None:
    failing = make_ctx(
        "  salesforce: {interval_minutes: 30}\n", FAKE_JOB_FAIL="1", SYNC_WEBHOOK_URL=webhook.url
    )
    for _ in range(3):
        execute_job(failing, "salesforce", runner=fake_jobs.run_job)
    assert len(webhook.received) == 1  # the same failure three times: one message
    fixed = make_ctx("  salesforce: {interval_minutes: 30}\n", SYNC_WEBHOOK_URL=webhook.url)
    run = execute_job(fixed, "salesforce", runner=fake_jobs.run_job)
    assert run is not None
    assert run.status == "success"
    assert len(webhook.received) == 2
    assert "succeeded again" in webhook.received[1]["text"]
    execute_job(fixed, "salesforce", runner=fake_jobs.run_job)
    assert len(webhook.received) == 2  # success after success: nothing to say


def test_a_failed_evaluation_or_held_writeback_after_the_sync_is_notified(
    make_ctx: CtxFactory, webhook: Webhook
) -> None:
    ctx = make_ctx("  salesforce: {interval_minutes: 30}\n", SYNC_WEBHOOK_URL=webhook.url)

    def chain(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
        run = fake_jobs.run_job(ctx, job, stop=stop)  # the sync succeeds
        with pytest.raises(RuntimeError), run_record(ctx.engine, "evaluate"):
            raise RuntimeError("features query failed")
        with run_record(ctx.engine, "writeback") as wb:
            wb.status = "held"
            wb.error = "45% of statuses would change; confirm with --confirm"
        return run

    run = execute_job(ctx, "salesforce", runner=chain)
    assert run is not None
    assert run.status == "success"
    texts = [m["text"] for m in webhook.received]
    assert len(texts) == 2
    assert "'evaluate' failed" in texts[0]
    assert "features query failed" in texts[0]
    assert "'writeback' ended held" in texts[1]


def test_webhook_trouble_never_raises_and_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    slow = Webhook(delay=3)
    try:
        started = time.monotonic()
        assert notify(SecretStr(slow.url), "x", timeout=0.5) is False
        assert time.monotonic() - started < 2.5
    finally:
        slow.close()
    assert notify(SecretStr("http://127.0.0.1:9/hook-SECRETPATH"), "x", timeout=1) is False
    assert notify(None, "x") is False
    assert "SECRETPATH" not in caplog.text


def test_overdue_jobs_run_at_once_and_others_keep_their_cadence() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    every_30 = JobSettings(interval_minutes=30)
    nightly = JobSettings(cron="0 3 * * *")
    assert next_due("salesforce", every_30, None, now) == now  # never ran
    assert next_due("salesforce", every_30, now - timedelta(hours=2), now) < now
    assert next_due("salesforce", every_30, now - timedelta(minutes=10), now) == now + timedelta(
        minutes=20
    )
    # last success yesterday 03:00; today's 03:00 passed without one: overdue
    assert next_due("reconcile", nightly, now - timedelta(days=1, hours=9), now) <= now
    # never succeeded: at once; never ran at all (fresh install): its next slot
    assert next_due("reconcile", nightly, None, now) == now
    assert next_due("reconcile", nightly, None, now, ever_ran=False) == (
        now.replace(hour=3) + timedelta(days=1)
    )
    assert next_due("salesforce", every_30, None, now, ever_ran=False) == now
    # last success today 03:00: next is tomorrow 03:00
    due = next_due("reconcile", nightly, now.replace(hour=3), now)
    assert due == now.replace(hour=3) + timedelta(days=1)


def _success(engine: Engine, job: str, started: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                job=job, status="success", started_at=started, finished_at=started, counts={}
            )
        )


def test_scheduler_catches_up_overdue_jobs_on_start(make_ctx: CtxFactory) -> None:
    # The cron fires half a day away from now: a fixed hour (03:00) made this test fail
    # whenever it happened to run in the minutes before that hour.
    now = datetime.now(UTC)
    hour = (now.hour + 12) % 24
    ctx = make_ctx(
        f"  salesforce: {{interval_minutes: 60}}\n  reconcile: {{cron: '0 {hour} * * *'}}\n",
    )
    _success(ctx.engine, "salesforce", now - timedelta(hours=2))  # overdue
    _success(ctx.engine, "reconcile", now - timedelta(minutes=1))  # done since the last firing
    stop = threading.Event()
    scheduler = build_scheduler(ctx, stop=stop, runner=fake_jobs.run_job)
    scheduler.start()
    try:
        jobs = {j.id: j for j in scheduler.get_jobs()}
        assert jobs["salesforce"].coalesce is True
        assert jobs["salesforce"].max_instances == 1
        assert jobs["salesforce"].misfire_grace_time == 600
        assert jobs["reconcile"].next_run_time > now + timedelta(minutes=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = [r for r in last_runs(ctx.engine) if r["status"] == "success"]
            if len(done) == 3:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)
    newest = last_runs(ctx.engine)[0]
    assert newest["job"] == "salesforce"
    assert newest["status"] == "success"
    assert newest["started_at"] >= now  # it ran now, not in an hour
    assert jobs["salesforce"].next_run_time > now + timedelta(minutes=59)


def test_jobs_run_on_a_fast_schedule_and_never_overlap(make_ctx: CtxFactory) -> None:
    # Each run takes ~1.2 s and the interval is 1 s: without max_instances/coalesce/locks
    # runs would pile up and overlap.
    ctx = make_ctx(
        f"  salesforce: {{interval_minutes: {ONE_SECOND}}}\n"
        f"  reconcile: {{interval_minutes: {ONE_SECOND}}}\n",
        FAKE_JOB_BATCHES="4",
        FAKE_JOB_BATCH_SECONDS="0.3",
    )
    stop = threading.Event()
    in_flight = InFlight()
    scheduler = build_scheduler(ctx, stop=stop, runner=fake_jobs.run_job, in_flight=in_flight)
    scheduler.start()
    time.sleep(5.5 if ctx.engine.dialect.name == "sqlite" else 2.5)
    stop.set()
    scheduler.shutdown(wait=False)
    assert in_flight.wait_idle(timeout=5)
    rows = last_runs(ctx.engine, limit=100)
    per_job = {job: [r for r in rows if r["job"] == job] for job in ("salesforce", "reconcile")}
    assert all(len(v) >= 2 for v in per_job.values()), {k: len(v) for k, v in per_job.items()}
    assert overlaps(rows) == []
    if ctx.engine.dialect.name == "sqlite":
        # one writer per SQLite store: different jobs never overlap either
        ordered = sorted(rows, key=lambda r: r["started_at"])
        for before, after in itertools.pairwise(ordered):
            assert before["finished_at"] <= after["started_at"], (before, after)
    assert all(r["finished_at"] is not None for r in rows)


def test_unknown_jobs_and_bad_cron_are_config_errors(make_ctx: CtxFactory) -> None:
    ctx = make_ctx("  salesfroce: {interval_minutes: 5}\n")
    with pytest.raises(SettingsError, match=r"jobs: unknown job 'salesfroce'; did you mean"):
        build_scheduler(ctx, stop=threading.Event())
    ctx = make_ctx("  reconcile: {cron: '61 * * * *'}\n")
    with pytest.raises(SettingsError, match=r"jobs\.reconcile\.cron"):
        build_scheduler(ctx, stop=threading.Event())


def test_without_an_injected_runner_jobs_run_the_pipeline() -> None:
    from sync_service.pipeline import run_job

    assert _pipeline_runner() is run_job


def _resident_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def test_a_run_record_keeps_the_process_peak_memory(engine: Engine) -> None:
    # 96 MiB written inside the run: the recorded peak cannot be below what was resident then
    with run_record(engine, "evaluate"):
        held = b"\x01" * (96 * 1024 * 1024)
        floor = _resident_mib()
        del held
    record = last_runs(engine, limit=1)[0]
    assert record["job"] == "evaluate"
    assert record["counts"][PEAK_MEMORY] >= floor - 1
    assert floor >= 96
