"""One runner per job: advisory locks on PostgreSQL, file locks on SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from canonical.errors import LockBusyError
from sync_service.ops.locks import job_lock, lock_key
from sync_service.ops.runs import last_runs, open_run
from sync_service.store.engine import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[2]


def test_lock_key_is_stable_and_distinct_per_job() -> None:
    assert lock_key("salesforce") == lock_key("salesforce")
    assert lock_key("salesforce") != lock_key("gainsight")
    assert -(2**63) <= lock_key("reconcile") < 2**63
    # Pinned: the key must not change between releases, or two versions could run one job.
    assert lock_key("salesforce") == 922518914514582884


def _try_in_thread(engine: Engine, job: str) -> str:
    """Try the lock from another thread (the same thread would re-enter it)."""
    result: list[str] = []

    def attempt() -> None:
        try:
            with job_lock(engine, job):
                result.append("got")
        except LockBusyError:
            result.append("busy")

    t = threading.Thread(target=attempt)
    t.start()
    t.join(timeout=30)
    return result[0]


def test_second_holder_is_refused_until_the_first_releases(engine: Engine) -> None:
    with job_lock(engine, "salesforce"):
        assert _try_in_thread(engine, "salesforce") == "busy"
        assert _try_in_thread(engine, "gainsight") == "got"  # other jobs are independent
    assert _try_in_thread(engine, "salesforce") == "got"  # released: free again


def test_lock_is_reentrant_in_one_thread(engine: Engine) -> None:
    # The scheduler's wrapper and the pipeline both take the job's lock.
    with job_lock(engine, "salesforce"):
        with job_lock(engine, "salesforce"):
            pass
        assert _try_in_thread(engine, "salesforce") == "busy"  # inner exit kept the lock
    assert _try_in_thread(engine, "salesforce") == "got"


def test_lock_is_released_when_the_job_raises(engine: Engine) -> None:
    with pytest.raises(RuntimeError), job_lock(engine, "reconcile"):
        raise RuntimeError("boom")
    assert _try_in_thread(engine, "reconcile") == "got"


def test_taking_a_stage_lock_closes_runs_a_dead_runner_left_open(engine: Engine) -> None:
    dead = open_run(engine, "salesforce")  # its process "died": never closed
    other = open_run(engine, "gainsight")
    with job_lock(engine, "salesforce"):  # the scheduler's job lock guards no run rows
        pass
    assert {r["id"]: r for r in last_runs(engine)}[dead.id]["status"] == "running"
    with job_lock(engine, "stage.salesforce"):
        rows = {r["id"]: r for r in last_runs(engine)}
    assert rows[dead.id]["status"] == "failed"
    assert "abandoned" in rows[dead.id]["error"]
    assert rows[dead.id]["finished_at"] is not None
    assert rows[other.id]["status"] == "running"  # another stage's run is not ours to close


def _holder_script(url: str) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        from sync_service.ops.locks import job_lock
        from sync_service.store.engine import make_engine, upgrade
        engine = make_engine({url!r})
        with job_lock(engine, "salesforce"):
            print("held", flush=True)
            time.sleep(60)
        """
    )


def test_a_killed_holder_leaves_no_stuck_lock(db_url: str, engine: Engine) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _holder_script(db_url)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        assert _try_in_thread(engine, "salesforce") == "busy"
        proc.kill()  # SIGKILL: no finally, no unlock
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                with job_lock(engine, "salesforce"):
                    break
            except LockBusyError:
                if time.monotonic() > deadline:
                    pytest.fail("the dead holder's lock was never released")
                time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_postgres_advisory_lock_excludes_another_engine(pg_url: str) -> None:
    a, b = make_engine(pg_url), make_engine(pg_url)
    upgrade(a)
    try:
        with job_lock(a, "salesforce"):
            assert _try_in_thread(b, "salesforce") == "busy"
        assert _try_in_thread(b, "salesforce") == "got"
    finally:
        a.dispose()
        b.dispose()
