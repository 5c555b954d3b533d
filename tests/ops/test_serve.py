"""``python -m sync_service serve`` as real processes: stop, resume, replicas, a killed replica."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from sync_service.ops.runs import last_runs
from sync_service.store.engine import make_engine, upgrade
from tests.configs import SHIPPED_PATHS
from tests.ops import fake_jobs
from tests.ops.support import overlaps

ROOT = Path(__file__).resolve().parents[2]
ONE_SECOND = 1 / 60  # interval_minutes


class Serve:
    """One ``serve`` process with its own log file."""

    def __init__(
        self, tmp_path: Path, db_url: str, name: str, grace: str = "10", **env: str
    ) -> None:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(
            f"database_url: {db_url}\n{SHIPPED_PATHS}"
            "salesforce: {enabled: true}\ngainsight: {enabled: false}\n"
            f"jobs:\n  salesforce: {{interval_minutes: {ONE_SECOND}, misfire_grace_seconds: 5}}\n",
            encoding="utf-8",
        )
        self.log_path = tmp_path / f"{name}.log"
        self._log: IO[str] = self.log_path.open("w", encoding="utf-8")
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "FAKE_JOB"))},
            "SYNC_CONFIG": str(cfg),
            "SYNC_HTTP_PORT": "0",
            "SYNC_LOG_FORMAT": "json",
            "FAKE_JOB_BATCH_SECONDS": "0.05",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ops.serve_fake", "serve", "--shutdown-grace", grace],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.port = self._read_port()

    def _read_port(self, timeout: float = 30) -> int:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("serving on port "):
            self.kill()
            pytest.fail(f"serve did not start: {line!r}\n{self.log_path.read_text()}")
        return int(line.split()[-1])

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()

    def terminate(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; return the exit code and how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.close()

    def close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start(db_url: str, name: str, **env: str) -> Serve:
        s = Serve(tmp_path, db_url, name, **env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigterm_mid_job_exits_0_keeps_committed_batches_and_the_next_run_resumes(
    db_url: str, engine: Engine, spawn: Any
) -> None:
    first = spawn(db_url, "first", FAKE_JOB_BATCHES="100000")
    assert first.get("/healthz") == (200, "ok\n")
    # Catch-up: there was no successful run, so the job starts at once.
    wait_for(lambda: fake_jobs.cursor(engine, "salesforce") >= 3, 20, "batches to commit")
    status, text = first.get("/metrics")
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"advocate_store_up", "advocate_runs_in_progress"} <= names

    code, took = first.terminate()
    assert code == 0
    assert took < 10
    (run,) = last_runs(engine)
    assert run["status"] == "partial"
    assert run["finished_at"] is not None
    assert "next run resumes" in run["error"]
    # nothing lost: every batch the run counted is under the committed watermark
    assert run["counts"]["records.Fake"] == fake_jobs.cursor(engine, "salesforce")
    messages = [line["message"] for line in first.logs()]
    assert "stopped cleanly" in messages

    second = spawn(db_url, "second", FAKE_JOB_BATCHES="2")
    wait_for(
        lambda: any(r["status"] == "success" for r in last_runs(engine)), 20, "a successful run"
    )
    code, _ = second.terminate()
    assert code == 0
    rows = last_runs(engine, limit=100)
    assert all(r["finished_at"] is not None for r in rows)
    total = sum(r["counts"]["records.Fake"] for r in rows)
    assert fake_jobs.cursor(engine, "salesforce") == total  # resumed: no gap, no repeat
    assert overlaps(rows) == []


def test_a_job_that_fails_on_the_way_out_makes_serve_exit_1(
    db_url: str, engine: Engine, spawn: Any
) -> None:
    # The job's first batch takes 2 s and then fails: SIGTERM arrives during that batch.
    serving = spawn(db_url, "failing", FAKE_JOB_FAIL="1", FAKE_JOB_BATCH_SECONDS="2")
    wait_for(lambda: any(r["job"] == "salesforce" for r in last_runs(engine)), 20, "the job")
    code, _ = serving.terminate()
    assert code == 1
    (run,) = last_runs(engine)
    assert run["status"] == "failed"
    messages = [line["message"] for line in serving.logs()]
    assert any(m.startswith("stopped; job(s) failed on the way out: salesforce") for m in messages)


def test_two_replicas_on_one_postgres_never_run_the_same_job_at_once(
    pg_url: str, spawn: Any
) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        # Each run takes ~0.6 s and both replicas fire every second.
        env = {"FAKE_JOB_BATCHES": "3", "FAKE_JOB_BATCH_SECONDS": "0.2"}
        a = spawn(pg_url, "a", **env)
        b = spawn(pg_url, "b", **env)

        def contended() -> bool:
            # the raw text: a line being written as we read must not break the wait
            return any("skipped" in s.log_path.read_text() for s in (a, b))

        # Whether the two schedules collide in the first runs is timing; wait until they have.
        wait_for(
            lambda: len(last_runs(engine, limit=100)) >= 4 and contended(),
            90,
            "four runs and a contended lock",
        )
        assert a.terminate()[0] == 0
        assert b.terminate()[0] == 0
        rows = last_runs(engine, limit=1000)
        assert overlaps(rows) == []
        assert all(r["status"] in ("success", "partial") for r in rows)
        assert fake_jobs.cursor(engine, "salesforce") == sum(
            r["counts"]["records.Fake"] for r in rows
        )
        skipped = [line for s in (a, b) for line in s.logs() if "skipped" in line["message"]]
        assert skipped, "the replicas never contended for the lock; the test proved nothing"
    finally:
        engine.dispose()


def test_a_killed_replica_leaves_no_stuck_lock(pg_url: str, spawn: Any) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        doomed = spawn(pg_url, "doomed", FAKE_JOB_BATCHES="100000")
        survivor = spawn(pg_url, "survivor", FAKE_JOB_BATCHES="2")
        wait_for(lambda: fake_jobs.cursor(engine, "salesforce") >= 3, 20, "the doomed run")
        doomed_pid = doomed.proc.pid
        # The survivor fires every second but finds the job taken.
        (running,) = [r for r in last_runs(engine) if r["status"] == "running"]
        assert running["pid"] == doomed_pid
        doomed.kill()  # SIGKILL mid-job: no cleanup of any kind

        def survivor_succeeded() -> bool:
            return any(
                r["status"] == "success" and r["pid"] == survivor.proc.pid
                for r in last_runs(engine, limit=100)
            )

        wait_for(survivor_succeeded, 15, "the survivor to take over the job")
        assert survivor.terminate()[0] == 0
        rows = {r["id"]: r for r in last_runs(engine, limit=1000)}
        dead = rows[running["id"]]
        assert dead["status"] == "failed"
        assert "abandoned" in dead["error"]
        assert overlaps(list(rows.values())) == []
    finally:
        engine.dispose()


def test_a_busy_port_is_a_config_error(tmp_path: Path, sqlite_url: str) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(f"database_url: {sqlite_url}\n{SHIPPED_PATHS}", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_")},
            "SYNC_CONFIG": str(cfg),
            "SYNC_HTTP_PORT": str(taken.getsockname()[1]),
        }
        done = subprocess.run(
            [sys.executable, "-m", "sync_service", "serve"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert "cannot listen on 127.0.0.1:" in done.stderr
    assert "set SYNC_HTTP_HOST / SYNC_HTTP_PORT to a free address" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_batch_that_outlasts_the_grace_exits_1_in_bounded_time_and_is_cleaned_up_later(
    db_url: str, engine: Engine, spawn: Any
) -> None:
    stuck = spawn(db_url, "stuck", grace="1", FAKE_JOB_BATCHES="10", FAKE_JOB_BATCH_SECONDS="30")
    wait_for(lambda: any(r["status"] == "running" for r in last_runs(engine)), 20, "the slow batch")
    code, took = stuck.terminate()
    assert code == 1
    assert took < 5
    (left,) = last_runs(engine)
    assert left["status"] == "running"  # cut off mid-batch: nothing committed, run left open

    after = spawn(db_url, "after", FAKE_JOB_BATCHES="1")
    wait_for(lambda: any(r["status"] == "success" for r in last_runs(engine)), 20, "the next run")
    assert after.terminate()[0] == 0
    rows = {r["id"]: r for r in last_runs(engine)}
    assert rows[left["id"]]["status"] == "failed"
    assert "abandoned" in rows[left["id"]]["error"]
    assert fake_jobs.cursor(engine, "salesforce") == 1
