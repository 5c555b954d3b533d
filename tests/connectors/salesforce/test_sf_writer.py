"""Writes: per-record results from sObject Collections (200 a request) and Bulk 2.0 ingest."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import responses
from responses import matchers
from sf_fakes import API, sf_error, token_response

from connectors.base import RecordChange
from connectors.salesforce import SalesforceConfig, SalesforceConnector

COLLECTIONS = f"{API}/composite/sobjects"


def _ok(ids: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "success": True, "errors": []} for i in ids]


def test_collections_update_reports_each_records_verdict(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.patch(
        COLLECTIONS,
        json=[
            {"id": "003A", "success": True, "errors": []},
            {
                "id": "003B",
                "success": False,
                "errors": [
                    {
                        "statusCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to this record",
                        "fields": [],
                    }
                ],
            },
            {
                "id": "003C",
                "success": False,
                "errors": [
                    {
                        "statusCode": "INSUFFICIENT_ACCESS_OR_READONLY",
                        "message": "insufficient access rights on object id",
                        "fields": ["Advocate_Status__c"],
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
                            "id": "003A",
                            "Advocate_Status__c": "Eligible",
                            "Advocate_Next_Available__c": "2026-12-01",
                        },
                        {
                            "attributes": {"type": "Contact"},
                            "id": "003B",
                            "Advocate_Score__c": None,
                        },
                        {
                            "attributes": {"type": "Contact"},
                            "id": "003C",
                            "Advocate_Status__c": "Fatigued",
                        },
                    ],
                }
            )
        ],
    )
    results = connector.write(
        "Contact",
        [
            RecordChange(
                "003A",
                {"Advocate_Status__c": "Eligible", "Advocate_Next_Available__c": date(2026, 12, 1)},
            ),
            RecordChange("003B", {"Advocate_Score__c": None}),
            RecordChange("003C", {"Advocate_Status__c": "Fatigued"}),
        ],
    )
    assert [(r.record_id, r.success, r.code, r.retryable) for r in results] == [
        ("003A", True, None, False),
        ("003B", False, "UNABLE_TO_LOCK_ROW", True),
        ("003C", False, "INSUFFICIENT_ACCESS_OR_READONLY", False),
    ]
    assert results[2].message is not None
    assert "Advocate_Status__c" in results[2].message
    assert "grant edit access" in results[2].message


def test_collections_send_at_most_200_records_a_request_grouped_by_parent_account(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    sizes: list[list[str]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = [r["id"] for r in json.loads(request.body)["records"]]
        sizes.append(ids)
        return 200, {}, json.dumps(_ok(ids))

    rsps.add_callback(responses.PATCH, COLLECTIONS, callback=answer)
    changes = [RecordChange(f"003{i:04d}", {"Advocate_Eligible__c": True}) for i in range(250)]
    parents = {c.record_id: f"001{int(c.record_id[3:]) % 3}" for c in changes}
    results = connector.write("Contact", changes, parents=parents)
    assert [len(s) for s in sizes] == [200, 50]
    sent = [i for s in sizes for i in s]
    assert [parents[i] for i in sent] == sorted(parents[i] for i in sent)
    assert [r.record_id for r in results] == [c.record_id for c in changes]  # caller's order
    assert all(r.success for r in results)


def test_a_rejected_request_becomes_per_record_failures_not_an_exception(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.patch(
        COLLECTIONS,
        status=400,
        body=sf_error("INVALID_FIELD", "No such column 'Nope__c' on sobject of type Contact"),
    )
    results = connector.write(
        "Contact", [RecordChange("003A", {"Nope__c": 1}), RecordChange("003B", {"Nope__c": 2})]
    )
    assert [(r.success, r.code, r.retryable) for r in results] == [
        (False, "INVALID_FIELD", False)
    ] * 2


def test_transient_request_failures_are_retried_then_reported_retryable(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    conn = SalesforceConnector(SalesforceConfig(**{**config.__dict__, "max_attempts": 2}))
    token_response(rsps)
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    [result] = conn.write("Contact", [RecordChange("003A", {"Advocate_Eligible__c": True})])
    assert (result.success, result.retryable) == (False, True)


def test_bulk_ingest_above_threshold_reports_each_record_and_clears_with_na(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    conn = SalesforceConnector(SalesforceConfig(**{**config.__dict__, "bulk_write_threshold": 2}))
    token_response(rsps)
    rsps.post(
        f"{API}/jobs/ingest",
        json={"id": "750I", "state": "Open"},
        match=[
            matchers.json_params_matcher(
                {
                    "operation": "update",
                    "object": "Contact",
                    "contentType": "CSV",
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                }
            )
        ],
    )
    expected_csv = (
        "Id,Advocate_Status__c,Advocate_Score__c\n003A,Eligible,80\n003B,Fatigued,#N/A\n003C,,10\n"
    )
    rsps.put(
        f"{API}/jobs/ingest/750I/batches",
        status=201,
        body="",
        match=[matchers.body_matcher(expected_csv)],
    )
    rsps.patch(
        f"{API}/jobs/ingest/750I",
        json={"id": "750I", "state": "UploadComplete"},
        match=[matchers.json_params_matcher({"state": "UploadComplete"})],
    )
    rsps.get(f"{API}/jobs/ingest/750I", json={"id": "750I", "state": "JobComplete"})
    rsps.get(
        f"{API}/jobs/ingest/750I/successfulResults",
        body='"sf__Id","sf__Created",Id\n"003A","false",003A\n',
    )
    rsps.get(
        f"{API}/jobs/ingest/750I/failedResults",
        body=(
            '"sf__Id","sf__Error",Id\n'
            '"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--",003B\n'
        ),
    )
    rsps.get(f"{API}/jobs/ingest/750I/unprocessedrecords", body="Id,Advocate_Status__c\n003C,\n")
    results = conn.write(
        "Contact",
        [
            RecordChange("003A", {"Advocate_Status__c": "Eligible", "Advocate_Score__c": 80}),
            RecordChange("003B", {"Advocate_Status__c": "Fatigued", "Advocate_Score__c": None}),
            RecordChange("003C", {"Advocate_Score__c": 10}),
        ],
    )
    assert [(r.record_id, r.success, r.code, r.retryable) for r in results] == [
        ("003A", True, None, False),
        ("003B", False, "UNABLE_TO_LOCK_ROW", True),
        ("003C", False, "UNPROCESSED", True),
    ]
