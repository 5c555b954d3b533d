"""Writeback end to end: the local Salesforce sandbox over HTTPS, the real connector, the store.

Each test pulls the sandbox org into the store, evaluates it with the shipped rules and writes
the results back, then reads the sandbox's own records to check what Salesforce holds.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.pipeline import evaluate_job, run_cycle, sync_job, writeback_job
from sync_service.store.models import (
    accounts,
    contacts,
    evaluations,
    writeback_log,
    writeback_outbox,
)
from sync_service.writeback.values import desired_values, normalise

REPO = Path(__file__).resolve().parents[2]
FIELDS = {
    "status": "Advocate_Status__c",
    "eligible": "Advocate_Eligible__c",
    "score": "Advocate_Score__c",
    "reason": "Advocate_Reason__c",
    "next_available": "Advocate_Next_Available__c",
    "recent_asks": "Advocate_Asks_90d__c",
    "last_ask": "Advocate_Last_Ask__c",
    "available_for": "Advocate_Available_For__c",
}
#: Results written to contacts only (the shipped account target does not route them).
CONTACT_ONLY = ("recent_asks", "last_ask", "available_for")
OBJECTS = {"contact": "Contact", "account": "Account"}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(accounts=30, seed=5) as sandbox:
        yield sandbox


def service_env(
    sb: Sandbox,
    db_url: str,
    tmp_path: Path,
    *,
    gainsight: bool = False,
    mappings: Path = REPO / "mappings",
    **writeback: Any,
) -> dict[str, str]:
    """The environment of a service pointed at the sandbox (and its settings file)."""
    settings = tmp_path / "settings.yaml"
    lines = ["writeback:"] + [f"  {k}: {v}" for k, v in writeback.items()] if writeback else []
    if gainsight:
        lines += ["gainsight:", "  writeback_enabled: true"]
    settings.write_text("\n".join(lines) + "\n" if lines else "{}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(sb.env("client_credentials"))
    if not gainsight:
        env.pop("GAINSIGHT_BASE_URL")
        env.pop("GAINSIGHT_ACCESS_KEY")
    env.update(
        {
            "DATABASE_URL": db_url,
            "SYNC_CONFIG": str(settings),
            "SYNC_MAPPINGS_DIR": str(mappings),
            "SYNC_RULES_FILE": str(REPO / "config" / "rules.yaml"),
            "SYNC_LOG_FORMAT": "text",
        }
    )
    return env


@pytest.fixture
def process_ca(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE in the environment override a session's CA bundle;
    # the service process would have it pointing at the sandbox CA too.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_bundle)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def context(env: dict[str, str]) -> AppContext:
    return AppContext(config_path=env["SYNC_CONFIG"], env=env)


def write_calls(sb: Sandbox) -> int:
    calls = sb.api_calls
    return int(calls["salesforce.composite"] + calls["salesforce.jobs"])


def check_crm_matches_evaluations(sb: Sandbox, ctx: AppContext) -> int:
    """Every evaluated record not overridden holds its evaluation in the sandbox; how many."""
    checked = 0
    with ctx.engine.connect() as conn:
        evals = list(conn.execute(sa.select(evaluations)).mappings())
    for ev in evals:
        record = sb.record(OBJECTS[ev["entity_type"]], ev["entity_id"])
        assert record is not None
        if record.get("Advocate_Override__c") in (True, 1, "true"):
            continue
        routed = {
            r: f
            for r, f in FIELDS.items()
            if ev["entity_type"] == "contact" or r not in CONTACT_ONLY
        }
        want = {r: v for r, v in desired_values(ev).items() if r in routed}
        got = {r: normalise(r, record.get(f)) for r, f in routed.items()}
        assert got == want, ev["entity_id"]
        checked += 1
    return checked


def confirmed_once(ctx: AppContext) -> Counter[tuple[str, str, str]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(writeback_log.c.object_name, writeback_log.c.record_id, writeback_log.c.field)
        )
        return Counter((o, r, f) for o, r, f in rows)


def open_rows(ctx: AppContext) -> int:
    with ctx.engine.connect() as conn:
        q = sa.select(sa.func.count()).where(writeback_outbox.c.state != "done")
        return int(conn.execute(q.select_from(writeback_outbox)).scalar_one())


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_with_lock_errors_every_value_is_written_and_confirmed_exactly_once(
    sb: Sandbox, db_url: str, tmp_path: Path
):
    ctx = context(service_env(sb, db_url, tmp_path, retry_base_seconds=0.01, max_attempts=2))
    sb.faults.lock_row_rate = 0.1
    runs = run_cycle(ctx)
    assert [r.status for r in runs[:2]] == ["success", "success"]
    first = runs[-1]
    assert first.counts["writeback.retried"] > 0  # the faults did bite
    # With two attempts a run, a few records may wait for the next run; each run finishes them.
    for _ in range(5):
        if open_rows(ctx) == 0:
            break
        writeback_job(ctx)
    assert open_rows(ctx) == 0
    assert check_crm_matches_evaluations(sb, ctx) > 100
    counts = confirmed_once(ctx)
    assert counts
    assert max(counts.values()) == 1  # each value confirmed once, retries included
    ctx.engine.dispose()


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_second_run_without_changes_makes_no_write_call(sb: Sandbox, db_url: str, tmp_path: Path):
    ctx = context(service_env(sb, db_url, tmp_path))
    first = run_cycle(ctx)[-1]
    assert first.counts["writeback.success"] > 100
    before = write_calls(sb)
    assert before > 0

    again = run_cycle(ctx)  # re-reads what was written, evaluates again, writes nothing
    wb = again[-1]
    assert wb.job == "writeback"
    assert wb.status == "success"
    assert wb.counts["writeback.calls"] == 0
    assert wb.counts["writeback.changed"] == 0
    assert wb.counts["writeback.conflicts"] == 0
    assert write_calls(sb) == before
    ctx.engine.dispose()


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_writeback_killed_mid_run_resumes_and_loses_nothing(
    sb: Sandbox, db_url: str, tmp_path: Path
):
    env = service_env(sb, db_url, tmp_path, batch_size=10)
    ctx = context(env)
    assert sync_job(ctx, "salesforce").status == "success"
    assert evaluate_job(ctx).status == "success"
    sb.faults.latency = 0.05  # slow enough to be caught mid-run

    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_service", "writeback"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not confirmed_once(ctx):
            time.sleep(0.02)
        assert confirmed_once(ctx), "the writeback never confirmed a record"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert open_rows(ctx) > 0  # killed before the end: work was left in the outbox

    sb.faults.latency = 0.0
    resumed = writeback_job(ctx)
    assert resumed.status == "success"
    assert open_rows(ctx) == 0
    assert check_crm_matches_evaluations(sb, ctx) > 100
    assert max(confirmed_once(ctx).values()) == 1
    with ctx.engine.connect() as conn:
        contacts_in_store = conn.execute(
            sa.select(sa.func.count()).select_from(contacts)
        ).scalar_one()
    assert contacts_in_store > 100
    ctx.engine.dispose()


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_gainsight_companies_are_written_through_the_same_path(
    sb: Sandbox, db_url: str, tmp_path: Path
):
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    gs_yaml = mappings / "gainsight.yaml"
    text = gs_yaml.read_text(encoding="utf-8")
    start = text.index("# writeback:")
    section = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    gs_yaml.write_text(text[:start] + section + "\n", encoding="utf-8")
    ctx = context(service_env(sb, db_url, tmp_path, gainsight=True, mappings=mappings))

    runs = run_cycle(ctx)
    assert [r.job for r in runs] == ["salesforce", "gainsight", "evaluate", "writeback"]
    wb = runs[-1]
    assert wb.status == "success", wb.error
    assert wb.counts["writeback.field.gainsight.Company.Advocate_Status__gc"] > 10
    with ctx.engine.connect() as conn:
        linked = conn.execute(
            sa.select(accounts.c.id, evaluations.c.status, evaluations.c.eligible)
            .join(
                evaluations,
                sa.and_(
                    evaluations.c.entity_type == "account",
                    evaluations.c.entity_id == accounts.c.sf_account_id,
                ),
            )
            .where(accounts.c.source == "gainsight", accounts.c.deleted.is_(False))
        ).all()
    assert len(linked) > 10
    for gsid, status, eligible in linked:
        company = sb.record("Company", gsid)
        assert company is not None
        assert company["Advocate_Status__gc"] == status
        assert bool(company["Advocate_Eligible__gc"]) == eligible
    gs_updates = sb.api_calls["gainsight.update"]
    assert gs_updates >= 1

    again = run_cycle(ctx)[-1]
    assert again.counts["writeback.calls"] == 0
    assert sb.api_calls["gainsight.update"] == gs_updates
    ctx.engine.dispose()


def already_in_the_crm(sb: Sandbox, ctx: AppContext) -> int:
    """Open outbox rows whose values the CRM already holds: what the next run re-sends."""
    results = {field: result for result, field in FIELDS.items()}
    with ctx.engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.select(
                    writeback_outbox.c.object_name,
                    writeback_outbox.c.record_id,
                    writeback_outbox.c.fields,
                ).where(writeback_outbox.c.state != "done")
            )
        )
    resent = 0
    for object_name, record_id, fields in rows:
        record = sb.record(object_name, record_id) or {}
        if all(
            normalise(results[f], record.get(f)) == normalise(results[f], v)
            for f, v in fields.items()
        ):
            resent += 1
    return resent


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_writeback_killed_at_a_random_call_re_sends_at_most_one_call(
    db_url: str, tmp_path: Path
) -> None:
    # One outbox batch of 10,000 rows spans several collections calls of 200: each call's
    # verdicts must commit before the next call, so a kill -9 leaves at most one call's records
    # applied in the CRM yet still open in the outbox.
    kill_after = random.Random().choice([3, 4])
    with Sandbox(accounts=120, seed=5) as big:
        env = service_env(big, db_url, tmp_path)
        ctx = context(env)
        assert sync_job(ctx, "salesforce").status == "success"
        assert evaluate_job(ctx).status == "success"
        big.faults.latency = 0.3  # each call waits before it is applied: the kill lands in one
        base = big.api_calls["salesforce.composite"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "writeback"],
            cwd=REPO,
            env={**env, "REQUESTS_CA_BUNDLE": big.ca_bundle},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (
                big.api_calls["salesforce.composite"] - base < kill_after
            ):
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        big.faults.latency = 0.0
        assert open_rows(ctx) > 0
        resent = already_in_the_crm(big, ctx)
        assert resent <= 200, f"killed in call {kill_after}: {resent} records would be re-sent"
        resumed = writeback_job(ctx)
        assert resumed.status == "success"
        assert open_rows(ctx) == 0
        assert check_crm_matches_evaluations(big, ctx) > 500
        assert max(confirmed_once(ctx).values()) == 1
        ctx.engine.dispose()
