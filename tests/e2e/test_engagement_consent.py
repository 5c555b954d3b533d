"""What a rep reads on the Contact, end to end: engagement, fatigue behind any status, consent.

The sandbox org is synced, evaluated with the shipped rules and written back; the checks read
the sandbox's own records (Contact and Reference_Request__c) and count for themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rules import load_policy
from rules.consent import allowed_ask_types, consent_refusal
from sandbox import Sandbox
from sync_service.evaluate.explain import explain_entity
from sync_service.ops.runs import utcnow as now
from sync_service.pipeline import run_cycle
from tests.e2e.test_writeback import REPO, context, process_ca, sb, service_env

__all__ = ["process_ca", "sb"]  # the fixtures, shared with the writeback tests


def _day(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_engagement_fatigue_and_consent_on_every_contact(
    sb: Sandbox, db_url: str, tmp_path: Path
) -> None:
    ctx = context(service_env(sb, db_url, tmp_path, gainsight=True))  # NPS from Gainsight
    runs = run_cycle(ctx)
    assert [r.status for r in runs] == ["success"] * len(runs)
    # one Eligible contact whose consent is narrowed to reference calls in the CRM
    chosen = next(
        c
        for c in sb.records("Contact")
        if c["Advocate_Status__c"] == "Eligible"
        and c["Reference_Consent_Types__c"] != "Reference Call"
    )
    sb.update("Contact", chosen["Id"], {"Reference_Consent_Types__c": "Reference Call"})
    # and one Fatigued contact who withdraws: Opted Out now, the fatigue still on the record
    tired = next(c for c in sb.records("Contact") if c["Advocate_Status__c"] == "Fatigued")
    sb.update("Contact", tired["Id"], {"Reference_Opt_Out__c": True})
    runs = run_cycle(ctx)
    assert [r.status for r in runs] == ["success"] * len(runs)
    again = sb.record("Contact", chosen["Id"])
    assert again is not None
    assert again["Advocate_Status__c"] == "Eligible"
    assert again["Advocate_Available_For__c"] == "Reference Call"
    withdrawn = sb.record("Contact", tired["Id"])
    assert withdrawn is not None
    assert withdrawn["Advocate_Status__c"] == "Opted Out"
    assert withdrawn["Advocate_Reason__c"].startswith("Withdrew from the advocacy program; also ")
    assert withdrawn["Advocate_Available_For__c"] is None
    out = explain_entity(
        ctx.engine, load_policy(REPO / "config" / "rules.yaml"), tired["Id"], now()
    )
    assert out is not None
    for cap in out["caps"]:
        assert len(cap["asks"]) == cap["count"]
        assert all(set(a) >= {"date", "type", "team", "status"} for a in cap["asks"])
    assert any(cap["binding"] for cap in out["caps"]) or out["rest"]["binding"]
    policy = load_policy(REPO / "config" / "rules.yaml")
    today = datetime.now(UTC).date()

    asks: dict[str, list[dict[str, object]]] = defaultdict(list)
    for request in sb.records("Reference_Request__c"):
        if request["Contact__c"] and request["Requested_Date__c"]:
            asks[str(request["Contact__c"])].append(request)
    caps = [c for c in policy.caps if c.scope == "contact"]
    checked = over_cap = hidden = only_calls = 0
    for contact in sb.records("Contact"):
        if contact["Advocate_Override__c"] in (True, 1):
            continue
        mine = asks.get(str(contact["Id"]), [])
        days = [_day(a["Requested_Date__c"]) for a in mine]
        recent = sum(1 for d in days if d and d > today - timedelta(days=90))
        assert int(contact["Advocate_Asks_90d__c"] or 0) == recent, contact["Id"]
        assert _day(contact["Advocate_Last_Ask__c"]) == max((d for d in days if d), default=None), (
            contact["Id"]
        )

        status = contact["Advocate_Status__c"]
        for cap in caps:
            counted = [
                a
                for a, d in zip(mine, days, strict=True)
                if d
                and d > today - timedelta(days=cap.window_days)
                and (
                    not cap.ask_types
                    or str(a["Type__c"]).lower() in {t.lower() for t in cap.ask_types}
                )
            ]
            if len(counted) >= cap.max_asks:
                over_cap += 1
                hidden += status != "Fatigued"
                next_day = _day(contact["Advocate_Next_Available__c"])
                assert next_day is not None, (contact["Id"], status)
                assert next_day > today, (contact["Id"], status)

        consent = contact["Reference_Consent_Types__c"]
        available = set(filter(None, (contact["Advocate_Available_For__c"] or "").split(";")))
        if status == "Eligible":
            assert available == set(allowed_ask_types(policy, consent)), contact["Id"]
        else:
            assert available == set(), contact["Id"]
        if consent == "Reference Call":
            refusal = consent_refusal(policy, "Case Study", consent)
            assert refusal == "No consent for Case Study (needed for a Case Study ask)"
            if status == "Eligible":
                only_calls += 1
                assert available == {"Reference Call"}
        checked += 1
    assert checked > 100
    assert over_cap > 0
    assert hidden > 0  # fatigue behind another status still dates the next ask
    assert only_calls > 0  # the chosen contact at least
    ctx.engine.dispose()


def _check(env: dict[str, str], contact: str, kind: str) -> tuple[int, dict[str, Any]]:
    """``sync-service check --json`` in its own process, as an admin would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "sync_service", "check", "--json", contact, "--type", kind],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.usefixtures("process_ca")
def test_a_contact_consented_to_reference_calls_only_is_refused_a_case_study_by_check(
    sb: Sandbox, db_url: str, tmp_path: Path
) -> None:
    env = service_env(sb, db_url, tmp_path, gainsight=True)
    ctx = context(env)
    assert {r.status for r in run_cycle(ctx)} == {"success"}
    # An Eligible contact available for more than reference calls, narrowed in the CRM.
    chosen = next(
        c
        for c in sb.records("Contact")
        if c["Advocate_Status__c"] == "Eligible"
        and "Case Study" in (c["Advocate_Available_For__c"] or "").split(";")
    )
    sb.update("Contact", chosen["Id"], {"Reference_Consent_Types__c": "Reference Call"})
    assert {r.status for r in run_cycle(ctx)} == {"success"}
    now_on = sb.record("Contact", chosen["Id"])
    assert now_on is not None
    assert now_on["Advocate_Status__c"] == "Eligible"
    assert now_on["Advocate_Available_For__c"] == "Reference Call"

    code, out = _check(env, chosen["Id"], "Case Study")
    assert code == 1
    assert out["allowed"] is False
    assert out["status"] == "Eligible"
    assert out["reasons"] == ["No consent for Case Study (needed for a Case Study ask)"]
    code, out = _check(env, chosen["Id"], "Reference Call")
    assert (code, out["allowed"]) == (0, True)

    # A rep asks for a reference call in the CRM: Fatigued now, so available for nothing.
    sb.insert(
        "Reference_Request__c",
        {
            "Contact__c": chosen["Id"],
            "Account__c": chosen["AccountId"],
            "Type__c": "Reference Call",
            "Status__c": "Requested",
            "Requested_Date__c": datetime.now(UTC).date().isoformat(),
            "Team__c": "Sales",
        },
    )
    assert {r.status for r in run_cycle(ctx)} == {"success"}
    tired = sb.record("Contact", chosen["Id"])
    assert tired is not None
    assert tired["Advocate_Status__c"] == "Fatigued"
    assert tired["Advocate_Available_For__c"] is None
    code, out = _check(env, chosen["Id"], "Reference Call")
    assert (code, out["allowed"]) == (1, False)
    assert not [r for r in out["reasons"] if r.startswith("No consent")]
    code, out = _check(env, chosen["Id"], "Case Study")
    assert code == 1
    assert "No consent for Case Study (needed for a Case Study ask)" in out["reasons"]
    ctx.engine.dispose()
