"""``serve`` with the real pipeline against the HTTPS sandbox: SIGTERM mid-sync, then resume."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sandbox import Sandbox
from sync_service.ops.runs import last_runs
from sync_service.store.models import accounts, contacts
from sync_service.sync.ingest import read_cursor
from tests.ops.support import overlaps

ROOT = Path(__file__).resolve().parents[2]


def _serve(
    tmp_path: Path, name: str, db_url: str, sb: Sandbox
) -> tuple[subprocess.Popen[str], IO[str]]:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(
        f"database_url: {db_url}\n"
        f"mappings_dir: {ROOT / 'mappings'}\n"
        f"rules_file: {ROOT / 'config' / 'rules.yaml'}\n"
        "gainsight: {enabled: false}\n"
        "sync: {batch_size: 3}\n"
        "jobs:\n  salesforce: {interval_minutes: 60}\n",
        encoding="utf-8",
    )
    log = (tmp_path / f"{name}.log").open("w", encoding="utf-8")
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SALESFORCE_", "GAINSIGHT_", "SYNC_", "DATABASE_URL"))
        },
        **sb.env("client_credentials"),
        "SYNC_CONFIG": str(cfg),
        "SYNC_HTTP_PORT": "0",
        "SYNC_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_service", "serve", "--shutdown-grace", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    return proc, log


def _stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as c:
        return list(
            c.execute(sa.select(contacts.c.id).where(contacts.c.source == "salesforce")).scalars()
        )


def _wait(condition: object, timeout: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, f"serve exited ({proc.returncode}) before {what}"
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigterm_mid_sync_loses_nothing_and_the_restarted_service_resumes(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    with Sandbox(accounts=15, seed=7) as sb:
        all_ids = {str(r["Id"]) for r in sb.records("Contact", include_deleted=True)}
        # Every API call waits 0.2 s: once the first stream commits, the rest of the sync
        # (four more streams, each at least one call) is still a second away.
        sb.faults.latency = 0.2
        proc, log = _serve(tmp_path, "first", db_url, sb)
        try:

            def accounts_started() -> bool:
                with engine.connect() as c:
                    return read_cursor(c, "salesforce", "accounts") is not None

            _wait(accounts_started, 60, "the first stream to commit", proc)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - started < 20
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
        (stopped,) = [r for r in last_runs(engine) if r["job"] == "salesforce"]
        assert stopped["status"] == "partial"
        assert stopped["finished_at"] is not None
        assert "resumes" in stopped["error"]
        with engine.connect() as c:
            assert c.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one() > 0
            assert read_cursor(c, "salesforce", "advocacy_asks") is None  # stopped mid-sync
        assert len(_stored_ids(engine)) < len(all_ids)
        assert not [r for r in last_runs(engine) if r["job"] in ("evaluate", "writeback")]

        sb.faults.latency = 0.0
        proc, log = _serve(tmp_path, "second", db_url, sb)
        try:

            def cycle_done() -> bool:
                newest_last = reversed(last_runs(engine))
                jobs = {r["job"]: r["status"] for r in newest_last if r["finished_at"]}
                return jobs.get("salesforce") == "success" and "writeback" in jobs

            # catch-up: the last success is missing, so the sync runs at once, then the rest
            _wait(cycle_done, 60, "the resumed sync, evaluation and writeback", proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
        stored = _stored_ids(engine)
        assert set(stored) == all_ids
        assert len(stored) == len(all_ids)  # nothing duplicated
        rows = last_runs(engine, limit=100)
        assert overlaps(rows) == []
        assert all(r["finished_at"] is not None for r in rows)


def test_the_first_cycle_on_a_fresh_store_runs_every_job_without_a_failure(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    # Salesforce and Gainsight are both due at once on a first start: on SQLite they used to
    # write at the same time and fail with "database is locked".
    cfg = tmp_path / "both.yaml"
    cfg.write_text(
        f"database_url: {db_url}\n"
        f"mappings_dir: {ROOT / 'mappings'}\n"
        f"rules_file: {ROOT / 'config' / 'rules.yaml'}\n"
        "sync: {batch_size: 50}\n"
        "jobs:\n  salesforce: {interval_minutes: 60}\n  gainsight: {interval_minutes: 60}\n",
        encoding="utf-8",
    )
    with Sandbox(accounts=60, seed=9) as sb:
        log = (tmp_path / "both.log").open("w", encoding="utf-8")
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("SALESFORCE_", "GAINSIGHT_", "SYNC_", "DATABASE_URL"))
            },
            **sb.env("client_credentials"),
            "SYNC_CONFIG": str(cfg),
            "SYNC_HTTP_PORT": "0",
            "SYNC_LOG_FORMAT": "json",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        try:
            # On SQLite the jobs take turns, so each sync gets its own evaluation and writeback;
            # on PostgreSQL they run side by side: the follow-up evaluation of the sync that
            # ends first waits for the other one to commit, and that one's follow-up finds the
            # evaluation lock taken (a skip, not a failure).
            writebacks = 2 if engine.dialect.name == "sqlite" else 1

            def cycle_done() -> bool:
                rows = [r for r in last_runs(engine, limit=50) if r["finished_at"]]
                jobs = [r["job"] for r in rows]
                both = {"salesforce", "gainsight"} <= set(jobs)
                return both and jobs.count("writeback") >= writebacks

            _wait(cycle_done, 120, "both syncs with their evaluations and writebacks", proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
    rows = last_runs(engine, limit=100)
    assert [r for r in rows if r["status"] == "failed"] == []
    assert all(r["finished_at"] is not None for r in rows)
    assert "database is locked" not in (tmp_path / "both.log").read_text(encoding="utf-8")
    # A sync still running is no gap: no evaluation was held (partial) or deferred for it, and
    # one of them evaluated after both syncs had committed.
    evaluations = [r for r in rows if r["job"] == "evaluate"]
    assert [(r["status"], r["error"]) for r in evaluations if r["status"] != "success"] == []
    assert all(not (r["counts"] or {}).get("deferred.running_sync") for r in evaluations)
    synced = max(r["finished_at"] for r in rows if r["job"] in ("salesforce", "gainsight"))
    assert any(r["finished_at"] >= synced for r in evaluations)
    if engine.dialect.name == "sqlite":
        ordered = sorted(rows, key=lambda r: r["started_at"])
        for before, after in itertools.pairwise(ordered):
            assert before["finished_at"] <= after["started_at"], (before["job"], after["job"])
