"""The completeness rule: which streams are gaps, and which gaps hold a policy's verdicts."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from rules import parse_policy
from sync_service.ops.locks import job_lock
from sync_service.sync import completeness
from tests.rules.helpers import ROOT

SHIPPED = (ROOT / "config" / "rules.yaml").read_text(encoding="utf-8")
NO_RENEWAL = SHIPPED.replace("  renewal_risk: string\n  renewal_close_date: date\n", "").replace(
    """  - id: renewal_at_risk
    when: >-
      renewal_risk = 'High'
    reason: "Renewal at risk (closes {renewal_close_date})"
""",
    "",
)


def test_a_sync_that_started_and_never_finished_is_a_gap_until_one_finishes(
    engine: Engine,
) -> None:
    with engine.begin() as conn:  # what a killed process leaves behind
        completeness.mark_started(conn, "salesforce", "Contact", "contacts")
    gaps = completeness.gaps(engine)
    assert [(g.connector, g.stream, g.entity, g.reason) for g in gaps] == [
        ("salesforce", "Contact", "contacts", completeness.STARTED)
    ]
    completeness.mark_reason(engine, "salesforce", "Contact", "stopped short: budget spent")
    assert completeness.gaps(engine)[0].reason == "stopped short: budget spent"
    # only the streams of the current mappings count
    assert completeness.gaps(engine, [("gainsight", "Person")]) == []


def test_a_gap_holds_the_verdicts_only_when_the_policy_reads_its_table(engine: Engine) -> None:
    with engine.begin() as conn:
        completeness.mark_started(conn, "salesforce", "Opportunity", "opportunities")
    gaps = completeness.gaps(engine)
    shipped = parse_policy(SHIPPED, "rules.yaml")
    without = parse_policy(NO_RENEWAL, "rules.yaml")
    assert "opportunities" in completeness.tables_read(shipped)
    assert completeness.blocking(shipped, gaps) == gaps
    assert "opportunities" not in completeness.tables_read(without)
    assert completeness.blocking(without, gaps) == []


def test_every_verdict_reads_contacts_accounts_and_asks() -> None:
    policy = parse_policy(NO_RENEWAL, "rules.yaml")
    read = completeness.tables_read(policy)
    assert {"contacts", "accounts", "advocacy_asks", "nps_responses", "tickets"} <= read


def test_a_gap_whose_sync_still_holds_its_stage_lock_is_running_not_finished(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        completeness.mark_started(conn, "salesforce", "Contact", "contacts")
        completeness.mark_started(conn, "salesforce", "Ask__c", "advocacy_asks")
        completeness.mark_started(conn, "gainsight", "Person", "contacts")
    with job_lock(engine, "stage.salesforce"):  # the Salesforce sync is running
        finished, running = completeness.classify(engine)
    assert {(g.connector, g.stream) for g in running} == {
        ("salesforce", "Contact"),
        ("salesforce", "Ask__c"),
    }
    assert [(g.connector, g.stream) for g in finished] == [("gainsight", "Person")]
    with job_lock(engine, "stage.asks"):  # the asks job syncs only the asks stream
        finished, running = completeness.classify(engine)
    assert [(g.connector, g.stream) for g in running] == [("salesforce", "Ask__c")]
    # No lock held: every mark was left by a sync that ended (killed), so every one holds.
    finished, running = completeness.classify(engine)
    assert running == []
    assert len(finished) == 3
    only, none = completeness.classify(engine, [("gainsight", "Person")])
    assert ([(g.connector, g.stream) for g in only], none) == ([("gainsight", "Person")], [])
