"""Completeness before consequences, end to end on the sandbox (SQLite or PostgreSQL).

A sync of Salesforce or Gainsight that stops short -- the API budget spent, 5xx until the retries
give up, the stream killed (a shutdown between batches) -- must not produce a single verdict from
the partial picture: the evaluation holds every verdict (each keeps its last value), nothing is
written, ``status``/``readyz``/the run say so and the CLI exits 1. The next complete sync clears
the gap and the cycle proceeds, without the blast-radius guard holding anything.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service import pipeline
from sync_service.cli import main
from sync_service.context import AppContext
from sync_service.ops.health import readiness
from sync_service.pipeline import evaluate_job, run_cycle, sync_job, writeback_job
from sync_service.store.models import evaluations, sync_state
from sync_service.sync import completeness
from tests.e2e.support import service_env, set_env, without_faults

REPO = Path(__file__).resolve().parents[2]
#: (system, fault) pairs. Budget and 5xx take each connector's own path (Salesforce's limit
#: header and client, Gainsight's 429 window and client); a shutdown between batches is the
#: same code for every source (sync.ingest checks the stop event), so it runs for one.
FAULTS = [
    ("salesforce", "budget"),
    ("salesforce", "5xx"),
    ("salesforce", "killed"),
    ("gainsight", "budget"),
    ("gainsight", "5xx"),
]


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts=30, seed=11) as sb:
        yield sb


@pytest.fixture
def sb(module_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield from without_faults(module_sandbox)


@pytest.fixture
def env(
    sb: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The service's environment, pointed at the sandbox and a fresh store; few retries."""
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "salesforce:\n  max_attempts: 2\n  query_batch_size: 200\ngainsight:\n  max_attempts: 2\n"
    )
    return set_env(monkeypatch, service_env(sb, db_url, settings))


def make_ctx(env: dict[str, str]) -> AppContext:
    return AppContext(config_path=env["SYNC_CONFIG"], env=env)


def breaker(
    sb: Sandbox, system: str, fault: str, stop: threading.Event
) -> Callable[[str, int], None]:
    """A progress hook that breaks ``system`` once the first batch of its sync has committed."""

    def hook(*_args: object) -> None:  # a ProgressHook: (stage, done, total)
        if fault == "budget":
            if system == "salesforce":
                sb.faults.api_limit = 1  # Sforce-Limit-Info: far past the budget share
            else:
                sb.faults.gainsight_per_day = 0  # 429 with Retry-After until midnight UTC
        elif fault == "5xx":
            sb.faults.systems = {system}
            sb.faults.rate_500 = 1.0
        else:
            stop.set()

    return hook


def verdicts(ctx: AppContext) -> dict[tuple[str, str], tuple[str, int | None]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                evaluations.c.entity_type,
                evaluations.c.entity_id,
                evaluations.c.status,
                evaluations.c.run_id,
            )
        ).all()
    return {(r.entity_type, r.entity_id): (r.status, r.run_id) for r in rows}


def writes_so_far(sb: Sandbox) -> int:
    calls = sb.api_calls
    return calls["salesforce.composite"] + calls["salesforce.jobs"]


def crm_statuses(sb: Sandbox) -> dict[str, str | None]:
    return {
        r["Id"]: r.get("Advocate_Status__c")
        for obj in ("Contact", "Account")
        for r in sb.records(obj)
    }


def break_a_sync(ctx: AppContext, sb: Sandbox, system: str, fault: str) -> str:
    if fault == "budget" and system == "gainsight" and 86_400 - time.time() % 86_400 < 120:
        pytest.skip("too close to midnight UTC: the daily window is about to reopen")
    stop = threading.Event()
    run = sync_job(ctx, system, stop=stop, progress=breaker(sb, system, fault, stop))
    sb.faults.reset()
    sb.faults.api_limit = 100_000
    assert run.status in ("partial", "failed"), run.as_dict()
    with ctx.engine.connect() as conn:
        marked = conn.execute(
            sa.select(sync_state.c.stream, sync_state.c.incomplete_reason).where(
                sync_state.c.connector == system, sync_state.c.incomplete_since.is_not(None)
            )
        ).all()
    assert marked, "the stream that stopped short is marked incomplete"
    return str(run.status)


@pytest.mark.parametrize(("system", "fault"), FAULTS)
def test_a_partial_sync_holds_every_verdict_and_writes_nothing(
    sb: Sandbox, env: dict[str, str], system: str, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = make_ctx(env)
    try:
        # A complete cycle first: every contact and account has a verdict, written to the CRM.
        first = run_cycle(ctx)
        assert [r.status for r in first] == ["success"] * 4, [r.as_dict() for r in first]
        before, crm_before = verdicts(ctx), crm_statuses(sb)
        assert before

        # The CRM changes (new risk on an account, an opt-out) and a sync stops short.
        account = sb.records("Account")[0]["Id"]
        sb.insert("Case", {"AccountId": account, "Subject": "Down", "IsEscalated": True})
        contact = next(c for c in sb.records("Contact") if c.get("Reference_Opt_In__c"))
        sb.update("Contact", contact["Id"], {"Reference_Opt_In__c": False})
        if system == "salesforce":
            # more cases than a page: a read that fits the Composite call's first page makes
            # no call of its own, and a fault needs a call after the first batch to show
            for i in range(250):
                sb.insert("Case", {"AccountId": account, "Subject": f"Slow {i}"})
        break_a_sync(ctx, sb, system, fault)

        # Nothing is evaluated from the partial picture: every verdict keeps its last value.
        evaluated = evaluate_job(ctx)
        assert evaluated.status == "partial"
        assert "inputs incomplete" in (evaluated.error or "")
        assert evaluated.counts["held.contacts"] > 0
        assert evaluated.counts["held.accounts"] > 0
        assert verdicts(ctx) == before
        writes = writes_so_far(sb)
        wrote = writeback_job(ctx)
        assert wrote.status == "success"
        assert crm_statuses(sb) == crm_before
        assert writes_so_far(sb) == writes

        # The CLI exits 1 and says why; status and readiness say so too.
        capsys.readouterr()
        assert main(["evaluate"]) == 1
        assert "inputs incomplete" in capsys.readouterr().err
        assert main(["status", "--json"]) == 0
        out = capsys.readouterr().out
        report = json.loads(out[out.index("{") :])
        assert report["incomplete_inputs"]["verdicts_held"] is True
        assert {s["connector"] for s in report["incomplete_inputs"]["streams"]} == {system}
        ready = readiness(ctx.engine)
        assert ready["ready"] is False
        assert ready["inputs"]

        # The next complete sync clears the gap; the cycle proceeds and nothing is held.
        assert main(["run-once", "--json"]) == 0, capsys.readouterr()
        after = verdicts(ctx)
        assert after != before
        assert readiness(ctx.engine)["ready"] is True
        crm = crm_statuses(sb)
        assert crm[contact["Id"]] == after[("contact", contact["Id"])][0]
    finally:
        ctx.close()


@pytest.mark.parametrize("system", ["salesforce", "gainsight"])
def test_a_partial_first_load_writes_no_flags_and_the_complete_one_is_not_held(
    sb: Sandbox, env: dict[str, str], system: str
) -> None:
    # The reported incident: a first load cut short by the budget evaluated everyone from part
    # of the data, wrote the wrong flags, and the guard then held the correction.
    ctx = make_ctx(env)
    try:
        crm_before = crm_statuses(sb)
        if system == "gainsight":
            assert sync_job(ctx, "salesforce").status == "success"
        break_a_sync(ctx, sb, system, "budget")
        assert evaluate_job(ctx).status == "partial"
        assert verdicts(ctx) == {}
        assert writeback_job(ctx).status == "success"
        assert crm_statuses(sb) == crm_before

        runs = run_cycle(ctx)
        assert [r.status for r in runs] == ["success"] * 4, [r.as_dict() for r in runs]
        statuses = verdicts(ctx)
        crm = crm_statuses(sb)
        assert all(crm[i] == s for (_t, i), (s, _r) in statuses.items() if i in crm)
    finally:
        ctx.close()


def test_an_evaluation_meeting_a_running_sync_waits_for_it_or_defers_and_is_never_held(
    sb: Sandbox, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL `serve` runs the two syncs side by side: the follow-up evaluation of the
    # one that ends first meets the other one running. That is no gap and must not be held.
    ctx = make_ctx(env)
    try:
        assert [r.status for r in run_cycle(ctx)] == ["success"] * 4
        before = verdicts(ctx)
        contact = next(c for c in sb.records("Contact") if c.get("Reference_Opt_In__c"))
        sb.update("Contact", contact["Id"], {"Reference_Opt_In__c": False})

        def sync_in_its_own_context() -> None:
            own = make_ctx(env)  # as another job of serve would: its own engine
            try:
                sync_job(own, "salesforce")
            finally:
                own.close()

        def running_sync() -> threading.Thread:
            sb.faults.systems = {"salesforce"}
            sb.faults.latency = 0.4  # every call waits: the sync is still running when asked
            syncing = threading.Thread(target=sync_in_its_own_context)
            syncing.start()
            deadline = time.monotonic() + 30
            while not completeness.gaps(ctx.engine) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert completeness.gaps(ctx.engine), "the sync marks its streams as it starts"
            return syncing

        # Still running when the (here zero) wait ends: deferred, not held; nothing evaluated.
        monkeypatch.setattr(pipeline, "RUNNING_SYNC_WAIT", 0.0)
        syncing = running_sync()
        deferred = evaluate_job(ctx)
        syncing.join(timeout=60)
        sb.faults.latency = 0.0
        assert deferred.status == "success", deferred.as_dict()
        assert deferred.counts.get(completeness.DEFERRED_KEY), deferred.as_dict()
        assert completeness.HELD_KEY not in deferred.counts
        assert "deferred" in (deferred.error or "")
        assert not pipeline.evaluated(deferred)  # so no writeback follows it
        assert verdicts(ctx) == before
        # The sync that ran meanwhile finished complete: that is no gap left behind.
        assert completeness.gaps(ctx.engine) == []

        # Waited for: the evaluation evaluates the data that sync committed, and is not held.
        monkeypatch.setattr(pipeline, "RUNNING_SYNC_WAIT", 120.0)
        syncing = running_sync()
        waited = evaluate_job(ctx)
        syncing.join(timeout=60)
        assert waited.status == "success", waited.as_dict()
        assert waited.counts.get(completeness.WAITED_KEY) == 1, waited.as_dict()
        assert not waited.counts.get(completeness.DEFERRED_KEY)
        assert pipeline.evaluated(waited)
        # the opt-out the first sync brought in, evaluated by this run
        after = verdicts(ctx)
        assert after[("contact", contact["Id"])] != before[("contact", contact["Id"])]
        assert after[("contact", contact["Id"])][1] == waited.id
    finally:
        sb.faults.reset()
        ctx.close()
