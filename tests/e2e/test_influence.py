"""Influence end to end: an ask for a deal, logged over HTTP, reaches the sandbox's Salesforce
with ``Opportunity__c``, comes back with the next sync and counts in the report's influence.

The Ask API runs under uvicorn (the real ``requests`` client talks to it); the asks job and the
sync cycles use the real simple-salesforce client against the HTTPS sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sandbox import Sandbox
from sync_service.api.tokens import create_token
from sync_service.context import AppContext
from sync_service.mapping.asks import AskFields
from sync_service.ops.runs import utcnow
from sync_service.pipeline import asks_job, run_cycle
from sync_service.report import ReportOptions, build_report
from sync_service.report.influence import quarter_of
from sync_service.store.models import advocacy_asks, contacts, evaluations, opportunities
from tests.api.support import make_state, serving
from tests.e2e.test_ask_guard import _env


def _influence(engine: Engine) -> dict[str, Any]:
    report = build_report(engine, ReportOptions(), utcnow())
    table = report.table("influence")
    assert table is not None
    return {
        "figures": {f.key: f.value for f in report.section("influence").figures},
        "quarters": {r["quarter"]: r for r in table.records()},
    }


def _open_deal_of_another_account(engine: Engine, account: str) -> tuple[str, float, str]:
    """An open deal, not yet linked to any ask, closing within the report's quarters."""
    o, a = opportunities, advocacy_asks
    today = utcnow().date()
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(o.c.id, o.c.amount, o.c.close_date)
            .where(
                o.c.source == "salesforce",
                o.c.deleted == sa.false(),
                o.c.is_closed == sa.false(),
                o.c.account_id != account,
                o.c.amount > 0,
                o.c.close_date >= today,
                o.c.close_date <= today + timedelta(days=200),
                ~sa.exists().where(a.c.opportunity_id == o.c.id),
            )
            .order_by(o.c.id)
            .limit(1)
        ).first()
    assert row is not None, "the sandbox has no open deal to link"
    return str(row.id), float(row.amount), quarter_of(row.close_date)


def test_an_ask_for_a_deal_reaches_the_crm_comes_back_and_counts_as_influence(
    tmp_path: Path, db_url: str, engine: Engine
) -> None:
    with Sandbox(accounts=30, seed=5) as sb:
        env = _env(sb, tmp_path, db_url)
        ctx = AppContext(config_path=env["SYNC_CONFIG"], env=env)
        try:
            assert {r.status for r in run_cycle(ctx)} == {"success"}
            # The requests people linked to deals in Salesforce are synced with their link.
            in_crm = {
                r["Id"]: r["Opportunity__c"]
                for r in sb.records("Reference_Request__c")
                if r["Opportunity__c"]
            }
            assert in_crm
            with engine.connect() as conn:
                synced = dict(
                    conn.execute(
                        sa.select(advocacy_asks.c.id, advocacy_asks.c.opportunity_id).where(
                            advocacy_asks.c.source == "salesforce",
                            advocacy_asks.c.opportunity_id.is_not(None),
                        )
                    ).all()
                )
            assert synced == in_crm
            before = _influence(engine)

            fields = AskFields.from_mapping(ctx.mappings().salesforce)
            assert fields is not None
            sales = create_token(engine, team="Sales", name="sales", role="team", now=utcnow())[1]
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {sales}"
            with engine.connect() as conn:
                eligible = conn.execute(
                    sa.select(contacts.c.id, contacts.c.account_id)
                    .join(evaluations, evaluations.c.entity_id == contacts.c.id)
                    .where(
                        evaluations.c.entity_type == "contact",
                        evaluations.c.status == "Eligible",
                    )
                    .order_by(contacts.c.id)
                ).all()
            with serving(make_state(engine, tmp=tmp_path, fields=fields)) as base:
                # the first Eligible contact the guard lets Sales ask for a reference call
                contact, account = next(
                    (str(c), str(a))
                    for c, a in eligible
                    if http.post(
                        f"{base}/v1/asks/check",
                        json={"contact_id": c, "ask_type": "Reference Call"},
                        timeout=30,
                    ).json()["allowed"]
                )
                deal, amount, quarter = _open_deal_of_another_account(engine, account)
                body = {
                    "contact_id": contact,
                    "ask_type": "Reference Call",
                    "requested_by": "rep.one",
                    "opportunity_id": deal[:15],  # the 15-character id from a Salesforce URL
                }
                unknown = http.post(
                    f"{base}/v1/asks",
                    json={**body, "opportunity_id": "006000000000404"},
                    timeout=30,
                )
                assert unknown.status_code == 422
                r = http.post(f"{base}/v1/asks", json=body, timeout=30)
                assert r.status_code == 201, r.text
                ask_id = r.json()["id"]
                assert r.json()["opportunity_id"] == deal

            run = asks_job(ctx)
            assert run.counts["asks.created"] == 1
            (request,) = [
                x for x in sb.records("Reference_Request__c") if x["Guard_Ask_Id__c"] == ask_id
            ]
            assert request["Opportunity__c"] == deal
            assert request["Contact__c"] == contact
            assert request["Type__c"] == "Reference Call"

            assert {r.status for r in run_cycle(ctx)} == {"success"}  # synced back
            with engine.connect() as conn:
                live = conn.execute(
                    sa.select(advocacy_asks.c.source, advocacy_asks.c.id).where(
                        advocacy_asks.c.opportunity_id == deal,
                        advocacy_asks.c.deleted == sa.false(),
                    )
                ).all()
            assert live == [("salesforce", request["Id"])]  # once, under its CRM id

            after = _influence(engine)
            gained = after["figures"]["influenced_open"] - before["figures"]["influenced_open"]
            assert gained == amount
            was, now = before["quarters"][quarter], after["quarters"][quarter]
            assert now["influenced_deals"] == was["influenced_deals"] + 1
            assert now["influenced_open"] == was["influenced_open"] + amount
        finally:
            ctx.close()
