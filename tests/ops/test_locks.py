"""One runner per job: advisory locks on PostgreSQL, file locks on SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from canonical.errors import LockBusyError
from sync_service.locks import job_lock, lock_key
from sync_service.store.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_lock_key_is_stable_and_distinct_per_job() -> None:
    assert lock_key("salesforce") == lock_key("salesforce")
    assert lock_key("salesforce") != lock_key("gainsight")
    assert -(2**63) <= lock_key("reconcile") < 2**63
    # Pinned: the key must not change between releases, or two versions could run one job.
    assert lock_key("salesforce") == 922518914514582884


def test_second_holder_is_refused_until_the_first_releases(engine: Engine) -> None:
    with job_lock(engine, "salesforce"):
        with pytest.raises(LockBusyError, match="already running"), job_lock(engine, "salesforce"):
            pytest.fail("a second holder got the lock")
        with job_lock(engine, "gainsight"):  # other jobs are independent
            pass
    with job_lock(engine, "salesforce"):  # released: free again
        pass


def test_lock_is_released_when_the_job_raises(engine: Engine) -> None:
    with pytest.raises(RuntimeError), job_lock(engine, "reconcile"):
        raise RuntimeError("boom")
    with job_lock(engine, "reconcile"):
        pass


def _holder_script(url: str) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        from sync_service.locks import job_lock
        from sync_service.store.engine import make_engine
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
        with pytest.raises(LockBusyError), job_lock(engine, "salesforce"):
            pass
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


def test_postgres_lock_holds_across_engines(pg_url: str) -> None:
    a, b = make_engine(pg_url), make_engine(pg_url)
    try:
        with job_lock(a, "salesforce"), pytest.raises(LockBusyError), job_lock(b, "salesforce"):
            pass
        with job_lock(b, "salesforce"):
            pass
    finally:
        a.dispose()
        b.dispose()
