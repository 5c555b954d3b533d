"""The steady state end to end on the sandbox: the echo costs nothing, a kill -9 loses nothing.

A cycle after the first reads back the records the first one wrote (Salesforce moved their
``SystemModstamp``): nothing of ours is re-evaluated or written again. A ``run-once`` process
killed with SIGKILL part way (after its sync committed the changes, or in its writeback) loses
no change: the next cycle evaluates and writes every contact whose inputs changed, and a full
evaluation and a full diff afterwards find nothing left to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.pipeline import evaluate_job, run_cycle
from sync_service.store.models import eval_marks, evaluations, runs
from sync_service.writeback.job import writeback_job
from tests.e2e.support import service_env, set_env, without_faults
from tests.e2e.test_partial_sync import crm_statuses, make_ctx, writes_so_far

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts=40, seed=18) as sb:
        yield sb


@pytest.fixture
def sb(module_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield from without_faults(module_sandbox)


@pytest.fixture
def env(
    sb: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / "settings.yaml"
    settings.write_text("salesforce:\n  max_attempts: 2\ngainsight:\n  max_attempts: 2\n")
    return set_env(monkeypatch, service_env(sb, db_url, settings))


def steady(ctx: AppContext) -> None:
    """The first cycle, then the one that reads its writeback back."""
    for _ in range(2):
        done = run_cycle(ctx)
        assert [r.status for r in done] == ["success"] * 4, [r.as_dict() for r in done]


def last_run_counts(engine: Engine, job: str) -> dict[str, int]:
    with engine.connect() as conn:
        counts = conn.execute(
            sa.select(runs.c.counts).where(runs.c.job == job).order_by(runs.c.id.desc()).limit(1)
        ).scalar()
    return dict(counts or {})


def test_the_echo_cycle_evaluates_and_writes_nothing(sb: Sandbox, env: dict[str, str]) -> None:
    ctx = make_ctx(env)
    try:
        first = run_cycle(ctx)
        assert [r.status for r in first] == ["success"] * 4
        assert last_run_counts(ctx.engine, "writeback").get("writeback.success", 0) > 0
        writes = writes_so_far(sb)
        echo = run_cycle(ctx)
        assert [r.status for r in echo] == ["success"] * 4
        evaluated = last_run_counts(ctx.engine, "evaluate")
        assert evaluated.get("evaluated.contacts", 0) == 0, evaluated
        assert evaluated.get("evaluated.accounts", 0) == 0, evaluated
        # the records read back hold what we wrote: not one is diffed again
        diffed = last_run_counts(ctx.engine, "writeback")
        assert diffed["writeback.records"] == 0, diffed
        assert diffed["writeback.not_rediffed"] > 0, diffed
        assert writes_so_far(sb) == writes
    finally:
        ctx.close()


def _changes(sb: Sandbox) -> list[str]:
    """Flip the opt-in of a few contacts; return their ids."""
    picked = [c for c in sb.records("Contact") if c.get("Reference_Opt_In__c")][:4]
    picked += [c for c in sb.records("Contact") if not c.get("Reference_Opt_In__c")][:2]
    for c in picked:
        sb.update("Contact", c["Id"], {"Reference_Opt_In__c": not c["Reference_Opt_In__c"]})
    return [c["Id"] for c in picked]


def _marks(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(eval_marks.c.seq).limit(1)).first() is not None


def _running(job: str) -> Callable[[Engine], bool]:
    def check(engine: Engine) -> bool:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(runs.c.id).where(runs.c.job == job, runs.c.status == "running")
            ).first()
        return row is not None

    return check


POINTS: dict[str, Callable[[Engine], bool]] = {
    "after-sync-committed": _marks,
    "in-writeback": _running("writeback"),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_cycle_killed_at_any_point_loses_no_change(
    sb: Sandbox, env: dict[str, str], point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(env)
    try:
        steady(ctx)
        changed = _changes(sb)
        sb.faults.latency = 0.05  # slow enough to be caught part way
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "run-once"],
            cwd=Path.cwd(),
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        reached = POINTS[point]
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and not reached(ctx.engine):
                assert proc.poll() is None, f"the cycle ended before {point}"
                time.sleep(0.01)
            assert reached(ctx.engine), f"never reached {point}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        sb.faults.reset()

        # the next cycle picks up every change the killed one had read
        after = run_cycle(ctx)
        assert [r.status for r in after] == ["success"] * 4, [r.as_dict() for r in after]
        with ctx.engine.connect() as conn:
            mine = dict(
                conn.execute(
                    sa.select(evaluations.c.entity_id, evaluations.c.status).where(
                        evaluations.c.entity_type == "contact",
                        evaluations.c.entity_id.in_(changed),
                    )
                ).all()
            )
        crm = crm_statuses(sb)
        assert {c: crm[c] for c in changed} == mine
        assert all(s != "Eligible" for c, s in mine.items() if c in changed[:4])

        # nothing was left behind: a full evaluation and a full diff find nothing to do
        full = evaluate_job(ctx, full=True)
        assert full.status == "success"
        assert full.counts.get("evaluation.changed", 0) == 0, full.as_dict()
        writes = writes_so_far(sb)
        monkeypatch.setenv("SYNC_FULL_CYCLES", "1")  # a diff of every record
        report = writeback_job(ctx.engine, ctx.settings, mappings=ctx.mappings())
        assert report.counts["success"] == 0, dict(report.counts)
        assert writes_so_far(sb) == writes
    finally:
        ctx.close()
