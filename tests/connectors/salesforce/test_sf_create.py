"""Creates by external key: a record the org already holds is found, never made twice."""

from __future__ import annotations

import responses
from responses import matchers

from connectors.base import RecordChange
from connectors.salesforce import SalesforceConnector
from tests.connectors.salesforce.sf_fakes import API, token_response

COLLECTIONS = f"{API}/composite/sobjects"
QUERY = f"{API}/query/"


def _asks() -> list[RecordChange]:
    return [
        RecordChange("ask-1", {"Contact__c": "003A", "Requested_Date__c": "2026-12-07"}),
        RecordChange("ask-2", {"Contact__c": "003B", "Requested_Date__c": "2026-12-07"}),
    ]


def test_a_key_the_org_holds_is_reported_created_and_only_the_rest_is_inserted(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.get(
        QUERY,
        json={
            "totalSize": 1,
            "done": True,
            "records": [{"Id": "a0X000000000001AAA", "Guard_Ask_Id__c": "ask-1"}],
        },
        match=[
            matchers.query_param_matcher(
                {
                    "q": "SELECT Id, Guard_Ask_Id__c FROM Reference_Request__c "
                    "WHERE Guard_Ask_Id__c IN ('ask-1','ask-2')"
                }
            )
        ],
    )
    rsps.post(
        COLLECTIONS,
        json=[{"id": "a0X000000000002AAA", "success": True, "errors": []}],
        match=[
            matchers.json_params_matcher(
                {
                    "allOrNone": False,
                    "records": [
                        {
                            "attributes": {"type": "Reference_Request__c"},
                            "Contact__c": "003B",
                            "Requested_Date__c": "2026-12-07",
                            "Guard_Ask_Id__c": "ask-2",
                        }
                    ],
                }
            )
        ],
    )
    results = connector.create("Reference_Request__c", _asks(), "Guard_Ask_Id__c")
    assert [(r.record_id, r.success, r.crm_id) for r in results] == [
        ("ask-1", True, "a0X000000000001AAA"),
        ("ask-2", True, "a0X000000000002AAA"),
    ]


def test_a_refused_create_is_a_result_not_an_exception(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.get(QUERY, json={"totalSize": 0, "done": True, "records": []})
    rsps.post(
        COLLECTIONS,
        json=[
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "message": "This contact is not eligible to be asked now",
                        "fields": [],
                    }
                ],
            },
            {"id": "a0X000000000002AAA", "success": True, "errors": []},
        ],
    )
    first, second = connector.create("Reference_Request__c", _asks(), "Guard_Ask_Id__c")
    assert not first.success
    assert first.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert not first.retryable
    assert second.success
