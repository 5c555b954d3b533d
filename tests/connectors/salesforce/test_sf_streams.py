"""Stream reads: COUNT first, REST paging, Bulk API 2.0 locators, CSV typing, cursors, ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import responses
from responses import matchers

from canonical.errors import FatalApiError, MappingError
from connectors.base import DELETED_KEY, MERGED_INTO_KEY, Cursor, StreamSpec
from connectors.salesforce import SalesforceConnector, soql
from tests.connectors.salesforce.sf_fakes import (
    API,
    INSTANCE,
    describe_response,
    sf_error,
    token_response,
)

UNTIL = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
SPEC = StreamSpec(
    name="contacts", object_name="Contact", fields=("Email", "Account.Name", "Reference_Opt_In__c")
)
FIELDS = [
    "Id",
    "SystemModstamp",
    "Email",
    "Account.Name",
    "Reference_Opt_In__c",
    "IsDeleted",
    "MasterRecordId",
]
QUERY_ALL = f"{API}/queryAll/"


def _row(i: int, ts: str = "2026-11-20T10:00:00.000+0000", **extra: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/003{i}"},
        "Id": f"003{i:03d}",
        "SystemModstamp": ts,
        "Email": None,
        "Account": {"attributes": {"type": "Account"}, "Name": f"Acme {i}"},
        "Reference_Opt_In__c": True,
        "IsDeleted": False,
        "MasterRecordId": None,
        **extra,
    }


def _count(rsps: responses.RequestsMock, n: int, since: Cursor | None = None) -> None:
    rsps.get(
        QUERY_ALL,
        json={"done": True, "totalSize": n, "records": []},
        match=[matchers.query_param_matcher({"q": soql.count_query(SPEC, since, UNTIL)})],
    )


def test_small_delta_reads_rest_query_all_at_largest_batch_size_following_next_records_url(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    describe_response(rsps)
    since = Cursor(datetime(2026, 11, 1, tzinfo=UTC), "003000")
    _count(rsps, 3, since)
    batch_size = matchers.header_matcher({"Sforce-Query-Options": "batchSize=2000"})
    rsps.get(
        QUERY_ALL,
        json={
            "done": False,
            "totalSize": 3,
            "records": [_row(1), _row(2)],
            "nextRecordsUrl": "/services/data/v62.0/query/01gXX-2000",
        },
        match=[
            matchers.query_param_matcher({"q": soql.read_query(SPEC, FIELDS, since, UNTIL)}),
            batch_size,
        ],
    )
    merged = _row(3, "2026-11-21T08:00:00.000+0000", IsDeleted=True, MasterRecordId="003001")
    rsps.get(
        f"{INSTANCE}/services/data/v62.0/query/01gXX-2000",
        json={"done": True, "totalSize": 3, "records": [merged]},
        match=[batch_size],
    )

    batches = list(connector.stream(SPEC).read(since, UNTIL))

    assert [len(b.records) for b in batches] == [2, 1]
    first = batches[0].records[0]
    assert first == {
        "Id": "003001",
        "SystemModstamp": "2026-11-20T10:00:00.000+0000",
        "Email": None,
        "Account.Name": "Acme 1",
        "Reference_Opt_In__c": True,
        DELETED_KEY: False,
    }
    assert batches[1].records[0][DELETED_KEY] is True
    assert batches[1].records[0][MERGED_INTO_KEY] == "003001"
    assert batches[0].cursor == Cursor(datetime(2026, 11, 20, 10, tzinfo=UTC), "003002")
    assert batches[1].cursor == Cursor(datetime(2026, 11, 21, 8, tzinfo=UTC), "003003")


def test_no_rows_since_the_cursor_costs_only_the_count(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    describe_response(rsps)
    _count(rsps, 0)
    assert list(connector.stream(SPEC).read(None, UNTIL)) == []
    assert connector.usage().calls == 3


def _composite(rsps: responses.RequestsMock, answers: list[tuple[int, Any]]) -> Any:
    return rsps.post(
        f"{API}/composite",
        json={
            "compositeResponse": [
                {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": f"c{i}"}
                for i, (status, body) in enumerate(answers)
            ]
        },
    )


def _account_describe(rsps: responses.RequestsMock) -> None:
    describe_response(
        rsps,
        "Account",
        [
            {"name": "Id", "type": "id"},
            {"name": "Name", "type": "string"},
            {"name": "SystemModstamp", "type": "datetime"},
        ],
    )


def test_every_planned_read_costs_one_composite_call_and_a_whole_first_page_is_the_read(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    accounts = StreamSpec(name="accounts", object_name="Account", fields=("Name",))
    since = Cursor(datetime(2026, 11, 23, 18, 0, tzinfo=UTC), "")
    token_response(rsps)
    describe_response(rsps)
    _account_describe(rsps)
    call = _composite(
        rsps,
        [
            (200, {"totalSize": 1, "done": True, "records": [_row(1)]}),
            (200, {"totalSize": 0, "done": True, "records": []}),
        ],
    )
    connector.plan_reads([(SPEC, since, UNTIL), (accounts, since, UNTIL)])
    [batch] = list(connector.stream(SPEC).read(since, UNTIL))
    assert [r["Id"] for r in batch.records] == ["003001"]
    assert batch.records[0]["Account.Name"] == "Acme 1"  # flattened as a queried page is
    assert batch.cursor == Cursor(datetime(2026, 11, 20, 10, tzinfo=UTC), "003001")
    assert list(connector.stream(accounts).read(since, UNTIL)) == []
    assert connector.usage().calls == 4  # the login, the two describes, one composite call
    subs = json.loads(call.calls[0].request.body)["compositeRequest"]
    assert [s["method"] for s in subs] == ["GET", "GET"]
    assert subs[0]["url"] == "/services/data/v62.0/queryAll/?" + urlencode(
        {"q": soql.read_query(SPEC, FIELDS, since, UNTIL)}
    )
    assert subs[0]["httpHeaders"] == {"Sforce-Query-Options": "batchSize=2000"}


def test_a_first_load_is_planned_as_a_count_and_a_partial_first_page_is_read_again(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    since = Cursor(datetime(2026, 11, 23, 18, 0, tzinfo=UTC), "")
    accounts = StreamSpec(name="accounts", object_name="Account", fields=("Name",))
    token_response(rsps)
    describe_response(rsps)  # the first load is not described to be planned
    more = {"totalSize": 3, "done": False, "nextRecordsUrl": "/x", "records": [_row(1)]}
    call = _composite(rsps, [(200, more), (200, {"totalSize": 0, "done": True, "records": []})])
    connector.plan_reads([(SPEC, since, UNTIL), (accounts, None, UNTIL)])
    subs = json.loads(call.calls[0].request.body)["compositeRequest"]
    assert "SELECT+COUNT" not in subs[0]["url"]
    assert subs[1]["url"].startswith("/services/data/v62.0/queryAll/?q=SELECT+COUNT")
    # the page was not the whole read: the stream queries for itself (its count is planned)
    rsps.get(
        QUERY_ALL,
        json={"done": True, "totalSize": 3, "records": [_row(1), _row(2), _row(3)]},
        match=[matchers.query_param_matcher({"q": soql.read_query(SPEC, FIELDS, since, UNTIL)})],
    )
    records = [r for b in connector.stream(SPEC).read(since, UNTIL) for r in b.records]
    assert [r["Id"] for r in records] == ["003001", "003002", "003003"]
    assert connector.usage().calls == 4  # the login, the describe, the composite, the query


def test_a_stream_whose_planned_count_failed_or_differs_asks_for_itself(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    since = Cursor(datetime(2026, 11, 23, 18, 0, tzinfo=UTC), "")
    token_response(rsps)
    describe_response(rsps)
    _composite(rsps, [(400, [{"errorCode": "INVALID_FIELD", "message": "no such field"}])])
    connector.plan_reads([(SPEC, since, UNTIL)])
    _count(rsps, 0, since)  # the failed subrequest: the stream's own COUNT()
    assert list(connector.stream(SPEC).read(since, UNTIL)) == []
    _count(rsps, 0)  # another window than planned (a remapped stream reads from the start)
    assert list(connector.stream(SPEC).read(None, UNTIL)) == []


def _bulk_csv(rows: list[list[str]]) -> str:
    header = "Id,SystemModstamp,Email,Account.Name,Reference_Opt_In__c,IsDeleted,MasterRecordId"
    return "\n".join([header, *(",".join(r) for r in rows)]) + "\n"


def test_large_delta_reads_bulk_query_all_page_by_page_with_locators(
    rsps: responses.RequestsMock, connector: SalesforceConnector, waits: list[float]
) -> None:
    token_response(rsps)
    describe_response(rsps)
    _count(rsps, 6)  # above bulk_query_threshold=5
    rsps.post(
        f"{API}/jobs/query",
        json={"id": "750Q", "state": "UploadComplete"},
        match=[
            matchers.json_params_matcher(
                {
                    "operation": "queryAll",
                    "query": soql.read_query(SPEC, FIELDS, None, UNTIL, ordered=False),
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                }
            )
        ],
    )
    rsps.get(f"{API}/jobs/query/750Q", json={"id": "750Q", "state": "InProgress"})
    rsps.get(f"{API}/jobs/query/750Q", json={"id": "750Q", "state": "JobComplete"})
    t = "2026-11-2{}T10:00:00.000Z"
    rsps.get(
        f"{API}/jobs/query/750Q/results",
        body=_bulk_csv(
            [
                ["003005", t.format(2), "a@x.test", "Acme", "true", "false", ""],
                ["003002", t.format(3), "", "", "false", "false", ""],
                ["003009", t.format(1), "", '"Acme, Inc"', "true", "true", "003001"],
            ]
        ),
        headers={"Sforce-Locator": "LOC2", "Sforce-NumberOfRecords": "3"},
        match=[matchers.query_param_matcher({"maxRecords": "3"})],
    )
    rsps.get(
        f"{API}/jobs/query/750Q/results",
        body=_bulk_csv(
            [
                ["003004", t.format(3), "", "", "true", "false", ""],
                ["003001", t.format(0), "", "", "", "false", ""],
            ]
        ),
        headers={"Sforce-Locator": "null", "Sforce-NumberOfRecords": "2"},
        match=[matchers.query_param_matcher({"maxRecords": "3", "locator": "LOC2"})],
    )

    stream = connector.stream(SPEC)
    batches = list(stream.read(None, UNTIL))

    assert stream.last_mode == "bulk"
    ids = [r["Id"] for b in batches for r in b.records]
    assert ids == ["003005", "003002", "003009", "003004", "003001"]
    assert all(len(b.records) <= 2 for b in batches)
    # Unordered results: only the final batch moves the cursor, to the greatest one seen.
    assert [b.cursor for b in batches[:-1]] == [None] * (len(batches) - 1)
    assert batches[-1].cursor == Cursor(datetime(2026, 11, 23, 10, tzinfo=UTC), "003004")
    rec = {r["Id"]: r for b in batches for r in b.records}
    assert rec["003005"]["Reference_Opt_In__c"] is True
    assert rec["003002"]["Reference_Opt_In__c"] is False
    assert rec["003001"]["Reference_Opt_In__c"] is None
    assert rec["003002"]["Email"] is None
    assert rec["003009"]["Account.Name"] == "Acme, Inc"
    assert rec["003009"][DELETED_KEY] is True
    assert rec["003009"][MERGED_INTO_KEY] == "003001"
    assert len(waits) == 1  # one poll wait while InProgress


def test_failed_bulk_job_is_fatal_with_the_jobs_message(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    describe_response(rsps)
    _count(rsps, 60)
    rsps.post(f"{API}/jobs/query", json={"id": "750F", "state": "UploadComplete"})
    rsps.get(
        f"{API}/jobs/query/750F",
        json={"id": "750F", "state": "Failed", "errorMessage": "INVALID_FIELD: Foo"},
    )
    with pytest.raises(FatalApiError, match="ended Failed: INVALID_FIELD: Foo"):
        list(connector.stream(SPEC).read(None, UNTIL))


def test_missing_mapped_fields_name_object_and_each_field(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    describe_response(
        rsps, fields=[{"name": "Id", "type": "id"}, {"name": "SystemModstamp", "type": "datetime"}]
    )
    spec = StreamSpec(name="contacts", object_name="Contact", fields=("Email", "Opt_In__c"))
    with pytest.raises(MappingError) as info:
        list(connector.stream(spec).read(None, UNTIL))
    assert info.value.problems[0].startswith(
        "Contact.Email: field does not exist or is not readable"
    )
    assert info.value.problems[1].startswith("Contact.Opt_In__c:")
    assert "Opt_In__c" in str(info.value)


def test_unknown_object_is_a_mapping_error(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.get(
        f"{API}/sobjects/Nope__c/describe/",
        status=404,
        body=sf_error("NOT_FOUND", "The requested resource does not exist"),
    )
    spec = StreamSpec(name="x", object_name="Nope__c", fields=())
    with pytest.raises(MappingError, match="'Nope__c' does not exist"):
        list(connector.stream(spec).read(None, UNTIL))


def test_describe_is_cached_for_the_run(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    describe_response(rsps)
    info = connector.describe("Contact")
    assert connector.describe("Contact") is info
    assert info.field("advocate_status__c").picklist_values == ("Eligible",)  # type: ignore[union-attr]
    assert info.fields["Advocate_Status__c"].restricted_picklist
    assert info.fields["Health__c"].is_formula
    assert info.fields["Asks_Count__c"].is_rollup
    assert not info.fields["Email"].updateable


def test_ids_lists_live_rows_for_reconciliation(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.get(
        f"{API}/query/",
        json={"done": True, "totalSize": 3, "records": []},
        match=[matchers.query_param_matcher({"q": "SELECT COUNT() FROM Contact"})],
    )
    rsps.get(
        f"{API}/query/",
        json={
            "done": True,
            "totalSize": 3,
            "records": [{"attributes": {}, "Id": i} for i in ("003A", "003B", "003C")],
        },
        match=[matchers.query_param_matcher({"q": "SELECT Id FROM Contact ORDER BY Id"})],
    )
    assert list(connector.stream(SPEC).ids()) == [["003A", "003B"], ["003C"]]
