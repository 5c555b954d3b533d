"""The writeback through the real Salesforce connector, over recorded HTTP (``responses``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from responses import matchers
from sqlalchemy.engine import Engine

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from sync_service.store.models import writeback_log, writeback_outbox
from sync_service.writeback import run_writeback
from tests.writeback.fakes import (
    FIELDS,
    blank,
    contact_target,
    evaluation,
    seed_evaluations,
    settings,
    sync_records,
)

LOGIN = "https://login.example.test"
INSTANCE = "https://acme.my.example.test"
API = f"{INSTANCE}/services/data/v62.0"
COLLECTIONS = f"{API}/composite/sobjects"
A, B, C = "003000000000000001", "003000000000000002", "003000000000000003"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(
            f"{LOGIN}/services/oauth2/token",
            json={"access_token": "tok", "instance_url": INSTANCE, "token_type": "Bearer"},
        )
        yield mock


def connector(bulk_write_threshold: int = 2000) -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(
            login_url=LOGIN,
            client_id="cid",
            client_secret="s3cret-value",
            max_attempts=2,
            bulk_write_threshold=bulk_write_threshold,
            bulk_poll_seconds=0.0,
        ),
        sleep=lambda _s: None,
    )


def _seed(engine: Engine) -> None:
    sync_records(
        engine,
        {
            A: blank(),
            B: blank() | {FIELDS["next_available"]: "2026-12-01"},
            C: blank(),
        },
    )
    seed_evaluations(
        engine,
        {
            A: evaluation(),
            B: evaluation("Eligible", True, next_available=None),
            C: evaluation("Fatigued", False, next_available=date(2027, 1, 15)),
        },
    )


def _log(engine: Engine) -> set[tuple[str, str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(writeback_log)).mappings()
        return {(r["record_id"], r["field"], r["new_value"]) for r in rows}


def _states(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(writeback_outbox)).mappings()
        return {r["record_id"]: (r["state"], r["last_error"]) for r in rows}


def _lock(rid: str) -> dict[str, Any]:
    return {
        "id": rid,
        "success": False,
        "errors": [
            {
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record",
                "fields": [],
            }
        ],
    }


def test_collections_partial_failure_retries_the_locked_record_and_reports_the_refused(
    engine: Engine, rsps: responses.RequestsMock
):
    _seed(engine)
    first = rsps.patch(
        COLLECTIONS,
        json=[
            {"id": A, "success": True, "errors": []},
            _lock(B),
            {
                "id": C,
                "success": False,
                "errors": [
                    {
                        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "message": "Fatigued contacts need a next available date",
                        "fields": [],
                    }
                ],
            },
        ],
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "records": [
                        {
                            "attributes": {"type": "Contact"},
                            "id": A,
                            "Advocate_Status__c": "Eligible",
                            "Advocate_Eligible__c": True,
                            "Advocate_Score__c": 50.0,
                            "Advocate_Reason__c": "opted in, promoter",
                        },
                        {
                            "attributes": {"type": "Contact"},
                            "id": B,
                            "Advocate_Status__c": "Eligible",
                            "Advocate_Eligible__c": True,
                            "Advocate_Score__c": 50.0,
                            "Advocate_Reason__c": "opted in, promoter",
                            "Advocate_Next_Available__c": None,  # cleared
                        },
                        {
                            "attributes": {"type": "Contact"},
                            "id": C,
                            "Advocate_Status__c": "Fatigued",
                            "Advocate_Eligible__c": False,
                            "Advocate_Score__c": 50.0,
                            "Advocate_Reason__c": "opted in, promoter",
                            "Advocate_Next_Available__c": "2027-01-15",
                        },
                    ],
                }
            )
        ],
    )
    second = rsps.patch(
        COLLECTIONS,
        json=[{"id": B, "success": True, "errors": []}],
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "records": [
                        {
                            "attributes": {"type": "Contact"},
                            "id": B,
                            "Advocate_Status__c": "Eligible",
                            "Advocate_Eligible__c": True,
                            "Advocate_Score__c": 50.0,
                            "Advocate_Reason__c": "opted in, promoter",
                            "Advocate_Next_Available__c": None,
                        }
                    ],
                }
            )
        ],
    )
    sf = connector()
    report = run_writeback(
        engine, [contact_target()], {"salesforce": sf}, settings(), sleep=lambda _s: None
    )
    assert first.call_count == 1
    assert second.call_count == 1
    assert report.counts["success"] == 2
    assert report.counts["retried"] == 1
    assert report.counts["failed"] == 1
    assert report.failures[0].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "next available date" in report.failures[0].message
    assert report.counts["calls"] == 3  # token + two PATCHes
    states = _states(engine)
    assert states[A][0] == states[B][0] == "done"
    assert states[C][0] == "failed"
    assert (B, FIELDS["next_available"], None) in _log(engine)
    assert not any(r == C for r, _, _ in _log(engine))


def test_bulk_ingest_results_are_parsed_and_failures_retried(
    engine: Engine, rsps: responses.RequestsMock
):
    _seed(engine)
    uploaded: list[str] = []

    def upload(request: Any) -> tuple[int, dict[str, str], str]:
        body = request.body
        uploaded.append(body.decode() if isinstance(body, bytes) else body)
        return 201, {}, ""

    rsps.post(f"{API}/jobs/ingest", json={"id": "750J", "state": "Open"})
    rsps.add_callback(responses.PUT, f"{API}/jobs/ingest/750J/batches", callback=upload)
    rsps.patch(f"{API}/jobs/ingest/750J", json={"id": "750J", "state": "UploadComplete"})
    rsps.get(f"{API}/jobs/ingest/750J", json={"id": "750J", "state": "JobComplete"})
    rsps.get(
        f"{API}/jobs/ingest/750J/successfulResults",
        body=f'"sf__Id","sf__Created",Id\n"{A}","false",{A}\n',
    )
    rsps.get(
        f"{API}/jobs/ingest/750J/failedResults",
        body=(
            '"sf__Id","sf__Error",Id\n'
            f'"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--",{B}\n'
        ),
    )
    rsps.get(f"{API}/jobs/ingest/750J/unprocessedrecords", body=f"Id\n{C}\n")
    # The two left over are fewer than the threshold: the retry goes through Collections.
    retried = rsps.patch(
        COLLECTIONS,
        body=json.dumps([{"id": B, "success": True, "errors": []}, {"id": C, "success": True}]),
    )
    sf = connector(bulk_write_threshold=2)
    report = run_writeback(
        engine, [contact_target()], {"salesforce": sf}, settings(), sleep=lambda _s: None
    )
    assert retried.call_count == 1
    rows = list(csv.DictReader(io.StringIO(uploaded[0])))
    by_id = {r["Id"]: r for r in rows}
    assert set(by_id) == {A, B, C}
    assert by_id[B]["Advocate_Next_Available__c"] == "#N/A"  # cleared in Bulk API terms
    assert by_id[A]["Advocate_Next_Available__c"] == ""  # not changed: left alone
    assert by_id[C]["Advocate_Next_Available__c"] == "2027-01-15"
    assert by_id[C]["Advocate_Eligible__c"] == "false"
    assert report.counts["success"] == 3
    assert report.counts["retried"] == 2
    assert {s for s, _ in _states(engine).values()} == {"done"}
    assert len(_log(engine)) == 4 + 5 + 5


def test_an_outage_leaves_the_outbox_pending_for_the_next_run(
    engine: Engine, rsps: responses.RequestsMock
):
    _seed(engine)
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    report = run_writeback(
        engine, [contact_target()], {"salesforce": connector()}, settings(), sleep=lambda _s: None
    )
    assert report.stopped is not None
    assert report.counts["pending"] == 3
    assert {s for s, _ in _states(engine).values()} == {"pending"}
