"""The guard end to end: ``serve`` (uvicorn, the asks job) against the HTTPS sandbox.

A real HTTP client logs asks through ``serve``; the asks job creates them in the sandbox's
Salesforce exactly once, through an outage, and stamps requests people make in Salesforce.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rules import load_policy
from sandbox import Sandbox
from sync_service.context import AppContext
from sync_service.ops.runs import last_runs
from sync_service.pipeline import run_cycle
from sync_service.store.models import advocacy_asks, contacts, evaluations

ROOT = Path(__file__).resolve().parents[2]
CALL = "Reference Call"


def _env(sb: Sandbox, tmp_path: Path, db_url: str) -> dict[str, str]:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(
        f"database_url: {db_url}\n"
        f"mappings_dir: {ROOT / 'mappings'}\n"
        f"rules_file: {ROOT / 'config' / 'rules.yaml'}\n"
        "writeback: {max_attempts: 2, retry_base_seconds: 0}\n"
        # Only the asks job, every 1.2 s here (2 minutes by default); the fixture runs the first
        # cycle itself, so that every contact is evaluated before serve starts.
        "jobs:\n"
        "  asks: {interval_minutes: 0.02}\n",
        encoding="utf-8",
    )
    return {
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


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync_service", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[tuple[Sandbox, str, dict[str, str]]]:
    with Sandbox(accounts=30, seed=5) as sb:
        env = _env(sb, tmp_path, db_url)
        first = AppContext(config_path=env["SYNC_CONFIG"], env=env)
        try:
            assert {r.status for r in run_cycle(first)} == {"success"}
        finally:
            first.close()
        log = (tmp_path / "serve.log").open("w", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("serving on port "), line
            yield sb, f"http://127.0.0.1:{int(line.split()[-1])}", env
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
            log.close()


def _requests_for(sb: Sandbox, ask_id: str) -> list[dict[str, Any]]:
    return [r for r in sb.records("Reference_Request__c") if r.get("Guard_Ask_Id__c") == ask_id]


def _contact_with(
    engine: Engine,
    status: str,
    skip: set[str] = frozenset(),  # type: ignore[assignment]
    available_for: str | None = None,
    lacking: str | None = None,
) -> tuple[str, str]:
    """The first contact with ``status``, available for ``available_for`` asks, not ``lacking``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.account_id, evaluations.c.available_for)
            .join(evaluations, evaluations.c.entity_id == contacts.c.id)
            .where(evaluations.c.entity_type == "contact", evaluations.c.status == status)
            .order_by(contacts.c.id)
        ).all()
    for cid, aid, types in rows:
        allowed = (types or "").split(";")
        if (
            cid not in skip
            and (available_for is None or available_for in allowed)
            and (lacking is None or lacking not in allowed)
        ):
            return str(cid), str(aid)
    pytest.fail(f"the sandbox has no {status} contact available for {available_for}")


def test_asks_through_serve_reach_the_crm_once_and_crm_requests_are_stamped(
    served: tuple[Sandbox, str, dict[str, str]], engine: Engine
) -> None:
    sb, base, env = served
    made = _cli(env, "api-token", "create", "--team", "Marketing", "--name", "mkt", "--json")
    assert made.returncode == 0, made.stderr
    tok = json.loads(made.stdout)["token"]
    other = _cli(env, "api-token", "create", "--role", "admin", "--name", "ops", "--json")
    admin = json.loads(other.stdout)["token"]
    mkt = requests.Session()
    mkt.headers["Authorization"] = f"Bearer {tok}"

    # The guard refuses an ask type without consent: every consenting contact of the sandbox
    # agrees to reference calls (few to webinars).
    contact, account = _contact_with(engine, "Eligible", available_for=CALL)
    body = {"contact_id": contact, "ask_type": CALL, "requested_by": "jane"}

    # Every status code, through serve.
    assert requests.post(f"{base}/v1/asks/check", json=body, timeout=30).status_code == 401
    r = mkt.post(f"{base}/v1/asks/check", json={"contact_id": contact, "ask_type": CALL})
    assert r.status_code == 200
    assert r.json()["allowed"] is True
    assert mkt.post(f"{base}/v1/asks", json={**body, "team": "Sales"}).status_code == 403
    gone = {**body, "contact_id": "003000000000404AAA"}
    assert mkt.post(f"{base}/v1/asks", json=gone).status_code == 404
    assert mkt.post(f"{base}/v1/asks", json={"contact_id": contact}).status_code == 422

    # The CRM is down while the ask is logged: it is in the store at once, created later.
    sb.faults.systems = {"salesforce"}
    sb.faults.rate_503 = 1.0
    r = mkt.post(f"{base}/v1/asks", json=body)
    assert r.status_code == 201, r.text
    ask_id = r.json()["id"]
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(advocacy_asks.c.source).where(advocacy_asks.c.id == ask_id)
            ).scalar_one()
            == "api"
        )
    r = mkt.post(f"{base}/v1/asks", json=body)
    assert r.status_code == 409
    assert "rest period" in r.json()["detail"]

    def failed_asks_runs() -> int:
        return sum(1 for r in last_runs(engine, limit=50) if r["job"] == "asks")

    _wait(lambda: failed_asks_runs() >= 2, 60, "two asks runs during the outage")
    assert _requests_for(sb, ask_id) == []

    sb.faults.rate_503 = 0.0
    created = _wait(lambda: _requests_for(sb, ask_id), 60, "the ask in the CRM")
    (request,) = created
    assert request["Contact__c"] == contact
    assert request["Account__c"] == account
    assert request["Type__c"] == CALL
    assert request["Team__c"] == "Marketing"
    assert request["Guard_Status__c"] == "Clear"
    runs_then = failed_asks_runs()
    _wait(lambda: failed_asks_runs() >= runs_then + 2, 60, "two more asks runs")
    assert len(_requests_for(sb, ask_id)) == 1  # created exactly once
    with engine.connect() as conn:
        live = conn.execute(
            sa.select(advocacy_asks.c.source, advocacy_asks.c.id).where(
                advocacy_asks.c.contact_id == contact,
                advocacy_asks.c.deleted == sa.false(),
                advocacy_asks.c.requested_date == datetime.now(UTC).date(),
            )
        ).all()
    assert live == [("salesforce", request["Id"])]  # counted once, under its CRM id

    # An override through serve lands in the CRM stamped Override.
    ops = requests.Session()
    ops.headers["Authorization"] = f"Bearer {admin}"
    r = ops.post(
        f"{base}/v1/asks",
        json={**body, "team": "Events", "override_reason": "keynote speaker, agreed by CS"},
    )
    assert r.status_code == 201
    assert r.json()["override"] is True
    (overridden,) = _wait(lambda: _requests_for(sb, r.json()["id"]), 60, "the override in the CRM")
    assert overridden["Guard_Status__c"] == "Override"
    assert "keynote speaker" in overridden["Guard_Reason__c"]

    # People create requests in Salesforce: a fatigued contact's is stamped Conflict.
    tired, tired_account = _contact_with(engine, "Fatigued")
    fresh, fresh_account = _contact_with(
        engine, "Eligible", skip={contact}, available_for="Case Study"
    )
    today = datetime.now(UTC).date().isoformat()
    conflict = sb.insert(
        "Reference_Request__c",
        {
            "Contact__c": tired,
            "Account__c": tired_account,
            "Type__c": "Reference Call",
            "Status__c": "Requested",
            "Requested_Date__c": today,
            "Team__c": "Sales",
        },
    )
    clear = sb.insert(
        "Reference_Request__c",
        {
            "Contact__c": fresh,
            "Account__c": fresh_account,
            "Type__c": "Case Study",
            "Status__c": "Requested",
            "Requested_Date__c": today,
            "Team__c": "Marketing",
        },
    )

    # and an Eligible contact who consented to reference calls only is asked for a case study
    narrow, narrow_account = _contact_with(
        engine, "Eligible", skip={contact, fresh}, available_for=CALL, lacking="Case Study"
    )
    unconsented = sb.insert(
        "Reference_Request__c",
        {
            "Contact__c": narrow,
            "Account__c": narrow_account,
            "Type__c": "Case Study",
            "Status__c": "Requested",
            "Requested_Date__c": today,
            "Team__c": "Marketing",
        },
    )
    made = (conflict, clear, unconsented)

    def stamped() -> bool:
        got = [sb.record("Reference_Request__c", i) for i in made]
        return all(g and g.get("Guard_Status__c") for g in got)

    _wait(stamped, 60, "the next asks runs to stamp both requests")
    got = sb.record("Reference_Request__c", conflict)
    assert got is not None
    assert got["Guard_Status__c"] == "Conflict"
    assert got["Guard_Reason__c"]
    ok = sb.record("Reference_Request__c", clear)
    assert ok is not None
    assert ok["Guard_Status__c"] == "Clear"
    refused = sb.record("Reference_Request__c", unconsented)
    assert refused is not None
    assert refused["Guard_Status__c"] == "Conflict"
    assert refused["Guard_Reason__c"] == "No consent for Case Study (needed for a Case Study ask)"
    # The docs render.
    assert requests.get(f"{base}/docs", timeout=30).status_code == 200
    spec = requests.get(f"{base}/openapi.json", timeout=30).json()
    assert {"/v1/asks", "/v1/asks/check", "/v1/advocates/{entity_id}"} <= set(spec["paths"])
    adv = mkt.get(f"{base}/v1/advocates/{contact}", timeout=30)
    assert adv.status_code == 200
    assert [a["id"] for a in adv.json()["asks"] if a["ask_type"] == CALL]


def test_an_ask_whose_create_answer_was_lost_is_found_not_made_twice(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    from sync_service.evaluate.ask_audit import AuditSink
    from sync_service.evaluate.guard import AskTarget, Caller, Guard
    from sync_service.mapping.asks import AskFields
    from sync_service.ops.runs import utcnow
    from sync_service.pipeline import asks_job
    from sync_service.store.models import writeback_outbox

    with Sandbox(accounts=30, seed=5) as sb:
        env = {**_env(sb, tmp_path, db_url), "SYNC_HTTP_PORT": "8080"}
        ctx = AppContext(config_path=env["SYNC_CONFIG"], env=env)
        try:
            run_cycle(ctx)
            contact, _ = _contact_with(engine, "Eligible", available_for=CALL)
            fields = AskFields.from_mapping(ctx.mappings().salesforce)
            assert fields is not None
            policy = load_policy(ROOT / "config" / "rules.yaml")
            guard = Guard(engine, lambda: policy, fields, AuditSink(engine, interval=0), utcnow)
            outcome = guard.log(Caller("t", "Events"), AskTarget(contact, CALL, "Events"), "x")
            assert outcome is not None
            assert outcome.ask_id is not None
            # The CRM created it, but the answer never came back (a timeout after the commit).
            with engine.connect() as conn:
                pending = conn.execute(
                    sa.select(writeback_outbox.c.fields).where(
                        writeback_outbox.c.record_id == outcome.ask_id
                    )
                ).scalar_one()
            made = sb.insert("Reference_Request__c", {**pending, "Guard_Ask_Id__c": outcome.ask_id})
            run = asks_job(ctx)
            assert run.counts["asks.created"] == 1
            assert [r["Id"] for r in _requests_for(sb, outcome.ask_id)] == [made]
            asks_job(ctx)
            assert len(_requests_for(sb, outcome.ask_id)) == 1
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(advocacy_asks.c.source, advocacy_asks.c.id, advocacy_asks.c.deleted)
                    .where(advocacy_asks.c.contact_id == contact)
                    .where(advocacy_asks.c.id.in_([made, outcome.ask_id]))
                    .order_by(advocacy_asks.c.source)
                ).all()
            assert rows == [("api", outcome.ask_id, True), ("salesforce", made, False)]
        finally:
            ctx.close()
