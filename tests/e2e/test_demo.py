"""The demo: one real cycle against the sandbox, and a summary that matches the CRM afterwards."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox import Sandbox
from sync_service.cli import main
from sync_service.commands.demo import run_demo
from sync_service.store.engine import make_engine
from sync_service.store.models import evaluations


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    with Sandbox(accounts=150, seed=11) as sb:
        runs, summary = run_demo(sb, url)
        contacts = sb.records("Contact")
        accounts = sb.records("Account")
        asks = sb.records("Reference_Request__c")
        counts = {
            obj: sb.count(obj, include_deleted=True)
            for obj in ("Account", "Contact", "Opportunity", "Case", "Reference_Request__c")
        }
        calls = sb.api_calls
    return runs, summary, contacts, accounts, asks, counts, calls, url


def test_every_stage_of_the_cycle_succeeds(demo_result):
    runs = demo_result[0]
    assert [r.job for r in runs] == ["salesforce", "gainsight", "evaluate", "writeback", "match"]
    assert {r.status for r in runs} == {"success"}


def test_records_pulled_match_what_the_sandbox_holds(demo_result):
    _, summary, *_, counts, _, _ = demo_result
    assert summary.pulled["salesforce.accounts"] == counts["Account"]
    assert summary.pulled["salesforce.contacts"] == counts["Contact"]
    assert summary.pulled["salesforce.opportunities"] == counts["Opportunity"]
    assert summary.pulled["salesforce.tickets"] == counts["Case"]
    assert summary.pulled["salesforce.advocacy_asks"] == counts["Reference_Request__c"]


@pytest.mark.parametrize(("entity", "index"), [("contact", 2), ("account", 3)])
def test_statuses_in_the_summary_are_the_ones_written_to_the_crm(demo_result, entity, index):
    summary, records, url = demo_result[1], demo_result[index], demo_result[-1]
    # A record under a person's override is left alone: its CRM value is not ours to count.
    in_crm = Counter(r["Advocate_Status__c"] for r in records if not r.get("Advocate_Override__c"))
    overridden = {r["Id"] for r in records if r.get("Advocate_Override__c")}
    engine = make_engine(url)
    with engine.connect() as conn:
        held_back = Counter(
            status
            for entity_id, status in conn.execute(
                sa.select(evaluations.c.entity_id, evaluations.c.status).where(
                    evaluations.c.entity_type == entity
                )
            )
            if entity_id in overridden
        )
    engine.dispose()
    by_status = summary.contacts_by_status if entity == "contact" else summary.accounts_by_status
    assert Counter(by_status) == in_crm + held_back
    assert sum(by_status.values()) == len(records)


def test_most_asked_contacts_match_the_asks_ledger(demo_result):
    summary, contacts, asks = demo_result[1], demo_result[2], demo_result[4]
    ledger = Counter(a["Contact__c"] for a in asks)
    top = ledger.most_common(len(summary.most_asked))
    assert [(c["contact_id"], c["asks"]) for c in summary.most_asked] == sorted(
        top, key=lambda kv: (-kv[1], kv[0])
    )
    by_id = {c["Id"]: c for c in contacts}
    for c in summary.most_asked:
        if not by_id[c["contact_id"]].get("Advocate_Override__c"):
            assert c["status"] == by_id[c["contact_id"]]["Advocate_Status__c"]


def test_write_calls_and_records_match_the_sandbox(demo_result):
    summary, calls = demo_result[1], demo_result[6]
    assert summary.written["success"] > 0
    assert summary.written["failed"] == 0
    assert summary.api_calls["gainsight"] == calls["gainsight"]
    # The connector counts its logins too; Salesforce does not bill OAuth calls to the API limit.
    assert summary.api_calls["salesforce"] == calls["salesforce"] + calls["salesforce.token"]


def test_demo_command_prints_a_json_summary_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    db = tmp_path / "demo.db"
    assert main(["demo", "--accounts", "60", "--database", str(db), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out[out.index("{") :])
    assert data["runs"] == {
        "salesforce": "success",
        "gainsight": "success",
        "evaluate": "success",
        "writeback": "success",
        "match": "success",
    }
    assert data["seconds"] < 60
    assert sum(data["contacts_by_status"].values()) > 0
    # the demo ends with the program report of its store, beside it
    report = Path(data["report"])
    assert report == tmp_path / "report.html"
    html = report.read_text(encoding="utf-8")
    assert html.count('class="chart"') >= 6
    assert str(sum(data["contacts_by_status"].values())) in html


def test_the_demo_logs_asks_through_the_api_until_refused(tmp_path: Path) -> None:
    from sync_service.commands.demo import run_guard_demo

    url = f"sqlite:///{tmp_path / 'guard.db'}"
    with Sandbox(accounts=40, seed=11) as sb:
        run_demo(sb, url)
        lines, created = run_guard_demo(sb, url)
        in_crm = [r for r in sb.records("Reference_Request__c") if r.get("Guard_Ask_Id__c")]
    posts = [line for line in lines if "POST /v1/asks" in line]
    assert "-> 201 logged ask-" in posts[0]
    assert "-> 409 not allowed: " in posts[-1]
    assert all("201" in p for p in posts[:-1])
    assert created == len(posts) - 1 == len(in_crm)
    assert {r["Guard_Status__c"] for r in in_crm} == {"Clear"}


def test_the_demo_offers_ids_that_explain_can_show(
    demo_result, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from sync_service.commands.demo import _ids_to_try

    _, summary, *_, url = demo_result
    tries = _ids_to_try(summary)
    assert len(tries) == 2
    monkeypatch.setenv("DATABASE_URL", url)
    for entity_id, _who in tries:
        assert main(["explain", entity_id]) == 0
        assert capsys.readouterr().out.startswith(f"contact {entity_id}  ")
