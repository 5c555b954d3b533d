"""Writes: per-record results from sObject Collections (200 a request) and Bulk 2.0 ingest."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import responses
from responses import matchers

from connectors.base import RecordChange
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from tests.connectors.salesforce.sf_fakes import API, no_sleep, sf_error, token_response

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
    conn = SalesforceConnector(
        SalesforceConfig(**{**config.__dict__, "max_attempts": 2}), sleep=no_sleep
    )
    token_response(rsps)
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    rsps.patch(COLLECTIONS, status=503, body="unavailable")
    [result] = conn.write("Contact", [RecordChange("003A", {"Advocate_Eligible__c": True})])
    assert (result.success, result.retryable) == (False, True)


def test_bulk_ingest_above_threshold_reports_each_record_and_clears_with_na(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    conn = SalesforceConnector(
        SalesforceConfig(**{**config.__dict__, "bulk_write_threshold": 2}), sleep=no_sleep
    )
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


def _ingest_job(rsps: responses.RequestsMock, state: str, **info: Any) -> None:
    """Create, upload and close job 750F, which then reports ``state``."""
    rsps.post(f"{API}/jobs/ingest", json={"id": "750F", "state": "Open"})
    rsps.put(f"{API}/jobs/ingest/750F/batches", status=201, body="")
    rsps.patch(f"{API}/jobs/ingest/750F", json={"id": "750F", "state": "UploadComplete"})
    rsps.get(f"{API}/jobs/ingest/750F", json={"id": "750F", "state": state, **info})


def _bulk_connector(config: SalesforceConfig) -> SalesforceConnector:
    return SalesforceConnector(
        SalesforceConfig(**{**config.__dict__, "bulk_write_threshold": 2}), sleep=no_sleep
    )


def test_a_failed_bulk_job_keeps_what_it_wrote_and_retries_what_it_never_reached(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    # Bulk API 2.0 docs ("Understanding Bulk API 2.0 Ingest"): a Failed job does not process the
    # rest of its data, and what it processed is not rolled back; failedResults and
    # unprocessedrecords ("for failed or aborted jobs") tell which records are which.
    token_response(rsps)
    _ingest_job(rsps, "Failed", errorMessage="Batch failed after 10 retries")
    rsps.get(
        f"{API}/jobs/ingest/750F/successfulResults",
        body='"sf__Id","sf__Created",Id\n"003A","false",003A\n',
    )
    rsps.get(
        f"{API}/jobs/ingest/750F/failedResults",
        body=(
            '"sf__Id","sf__Error",Id\n'
            '"003B","STRING_TOO_LONG:Status: data value too large:Advocate_Status__c --",003B\n'
        ),
    )
    rsps.get(f"{API}/jobs/ingest/750F/unprocessedrecords", body="Id,Advocate_Status__c\n003C,x\n")
    results = _bulk_connector(config).write(
        "Contact", [RecordChange(r, {"Advocate_Status__c": "x"}) for r in ("003A", "003B", "003C")]
    )
    assert [(r.record_id, r.success, r.code, r.retryable) for r in results] == [
        ("003A", True, None, False),
        ("003B", False, "STRING_TOO_LONG", False),
        ("003C", False, "UNPROCESSED", True),
    ]
    assert "Failed" in (results[2].message or "")


def test_an_aborted_bulk_job_leaves_its_records_to_be_sent_again(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    token_response(rsps)
    _ingest_job(rsps, "Aborted")
    rsps.get(f"{API}/jobs/ingest/750F/successfulResults", body='"sf__Id","sf__Created",Id\n')
    rsps.get(f"{API}/jobs/ingest/750F/failedResults", body='"sf__Id","sf__Error",Id\n')
    rsps.get(f"{API}/jobs/ingest/750F/unprocessedrecords", body="Id,Advocate_Status__c\n003A,x\n")
    results = _bulk_connector(config).write(
        "Contact", [RecordChange(r, {"Advocate_Status__c": "x"}) for r in ("003A", "003B", "003C")]
    )
    assert {(r.code, r.retryable) for r in results} == {("UNPROCESSED", True)}


def test_a_bulk_job_refused_as_a_whole_fails_each_record_with_the_jobs_reason(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    token_response(rsps)
    _ingest_job(rsps, "Failed", errorMessage="InvalidBatch : Field name not found : Foo__c")
    rsps.get(f"{API}/jobs/ingest/750F/successfulResults", body='"sf__Id","sf__Created",Id\n')
    rsps.get(f"{API}/jobs/ingest/750F/failedResults", status=404, body=sf_error("NOT_FOUND", "x"))
    results = _bulk_connector(config).write(
        "Contact", [RecordChange(r, {"Advocate_Status__c": "x"}) for r in ("003A", "003B", "003C")]
    )
    assert {(r.success, r.code, r.retryable) for r in results} == {(False, "BULK_FAILED", False)}
    assert "Field name not found" in (results[0].message or "")


def test_bulk_success_is_matched_by_the_id_we_sent_not_the_18_character_sf_id(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    # successfulResults carries sf__Id (18 characters) plus the columns of the original upload.
    token_response(rsps)
    _ingest_job(rsps, "JobComplete")
    rsps.get(
        f"{API}/jobs/ingest/750F/successfulResults",
        body=(
            '"sf__Id","sf__Created",Id\n'
            '"003000000000001AAA","false",003000000000001\n'
            '"003000000000002AAA","false",003000000000002\n'
            '"003000000000003AAA","false",003000000000003\n'
        ),
    )
    rsps.get(f"{API}/jobs/ingest/750F/failedResults", body='"sf__Id","sf__Error",Id\n')
    rsps.get(f"{API}/jobs/ingest/750F/unprocessedrecords", body="Id,Advocate_Status__c\n")
    ids = ["003000000000001", "003000000000002", "003000000000003"]
    results = _bulk_connector(config).write(
        "Contact", [RecordChange(r, {"Advocate_Status__c": "x"}) for r in ids]
    )
    assert [(r.record_id, r.success) for r in results] == [(i, True) for i in ids]


def test_datetimes_are_written_as_documented_with_milliseconds_and_z(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    # REST "Valid Date and DateTime Formats" and Bulk API 2.0 "Valid Date Format in Records":
    # yyyy-MM-ddTHH:mm:ss.SSSZ (three optional millisecond digits), dates yyyy-MM-dd.
    from datetime import datetime, timedelta, timezone

    from connectors.salesforce.writer import _csv_value

    stamp = datetime(2026, 1, 1, 12, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert _csv_value(stamp) == "2026-01-01T10:30:05.123Z"
    assert _csv_value(date(2026, 1, 1)) == "2026-01-01"
    token_response(rsps)
    rsps.patch(
        COLLECTIONS,
        json=_ok(["003A"]),
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "records": [
                        {
                            "attributes": {"type": "Contact"},
                            "id": "003A",
                            "Last_Reviewed__c": "2026-01-01T10:30:05.123Z",
                            "Advocate_Next_Available__c": "2026-01-01",
                        }
                    ],
                }
            )
        ],
    )
    [result] = connector.write(
        "Contact",
        [
            RecordChange(
                "003A",
                {"Last_Reviewed__c": stamp, "Advocate_Next_Available__c": date(2026, 1, 1)},
            )
        ],
    )
    assert result.success
