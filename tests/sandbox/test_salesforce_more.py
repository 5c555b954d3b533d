"""More of the Salesforce surface: sObject CRUD, getDeleted/getUpdated, faults, wide queries."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox import Sandbox


def test_sobject_get_create_delete(sb: Sandbox, sf: Salesforce) -> None:
    account = sb.records("Account")[3]
    got = sf.Account.get(account["Id"])
    assert got["Name"] == account["Name"]
    assert got["attributes"]["type"] == "Account"
    created = sf.Contact.create({"LastName": "Nakamura", "AccountId": account["Id"]})
    assert created["success"] is True
    assert created["id"].startswith("003")
    row = sb.record("Contact", created["id"])
    assert row is not None
    assert row["Name"] == "Nakamura"
    assert row["Reference_Opt_In__c"] is False
    sf.Contact.delete(created["id"])
    assert sb.record("Contact", created["id"])["IsDeleted"] is True  # type: ignore[index]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(created["id"])


def test_get_deleted_and_get_updated(sb: Sandbox, sf: Salesforce) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    opp = sb.records("Opportunity")[0]["Id"]
    changed = sb.records("Opportunity")[1]["Id"]
    sb.delete("Opportunity", opp)
    sb.update("Opportunity", changed, {"StageName": "Closed Won"})
    deleted = sf.Opportunity.deleted(start, end)
    assert opp in {d["id"] for d in deleted["deletedRecords"]}
    updated = sf.Opportunity.updated(start, end)
    assert changed in updated["ids"]
    row = sb.record("Opportunity", changed)
    assert row is not None
    assert row["IsClosed"] is True
    assert row["IsWon"] is True
    too_old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    with pytest.raises(Exception, match="INVALID_REPLICATION_DATE"):
        sf.Opportunity.deleted(too_old, end)
    assert "ids" in sf.Opportunity.updated(too_old, end)  # getUpdated reaches 30 days back


def test_query_all_cursor_stays_on_query_all(sb: Sandbox, sf: Salesforce) -> None:
    sb.delete("Contact", sb.records("Contact")[7]["Id"])
    page = sf.query(
        "SELECT Id FROM Contact",
        include_deleted=True,
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    assert "/queryAll/" in page["nextRecordsUrl"]
    total = sum(1 for _ in sf.query_all_iter("SELECT Id FROM Contact", include_deleted=True))
    assert total == sb.count("Contact", include_deleted=True)
    assert total > sb.count("Contact")


def test_unknown_cursor_is_invalid_query_locator(sb: Sandbox, sf: Salesforce) -> None:
    with pytest.raises(Exception, match="INVALID_QUERY_LOCATOR"):
        sf.query_more(f"/services/data/v{sb.api_version}/query/01g5g0000000zzzAAA-200", True)


def test_wide_query_falls_back_to_python_rendering(sb: Sandbox, sf: Salesforce) -> None:
    for i in range(62):
        sb.add_field("Case", f"Extra_{i}__c", "boolean" if i % 2 else "string")
    case = sb.records("Case")[0]["Id"]
    sb.update("Case", case, {"Extra_1__c": True, "Extra_2__c": "two"})
    fields = ", ".join(f"Extra_{i}__c" for i in range(62))
    rows = sf.query(
        format_soql(f"SELECT Id, Account.Name, {fields} FROM Case WHERE Id = {{}}", case)
    )
    rec = rows["records"][0]
    assert rec["Extra_1__c"] is True
    assert rec["Extra_3__c"] is False
    assert rec["Extra_2__c"] == "two"
    assert rec["Extra_0__c"] is None
    assert rec["Account"]["attributes"]["type"] == "Account"
    for i in range(62):
        sb.remove_field("Case", f"Extra_{i}__c")


def test_salesforce_429_carries_retry_after(
    sb: Sandbox, sf: Salesforce, session: requests.Session
) -> None:
    sb.faults.retry_after = 7
    sb.faults.fail_next(429)
    resp = session.get(
        f"{sb.salesforce_url}/services/data/v{sb.api_version}/limits",
        headers={"Authorization": f"Bearer {sf.session_id}"},
        timeout=10,
    )
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_latency_is_added_to_every_call(sb: Sandbox, sf: Salesforce) -> None:
    sb.faults.latency = 0.2
    started = time.perf_counter()
    sf.query("SELECT COUNT() FROM Account")
    assert time.perf_counter() - started >= 0.2


def test_api_calls_are_counted_per_kind(sb: Sandbox, sf: Salesforce) -> None:
    before = sb.api_calls
    sf.query("SELECT COUNT() FROM Account")
    sf.Contact.describe()
    after = sb.api_calls
    assert after["salesforce"] - before["salesforce"] == 2
    assert after["salesforce.query"] - before["salesforce.query"] == 1
    assert after["salesforce.sobjects"] - before["salesforce.sobjects"] == 1
    sb.faults.fail_next(500)
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT COUNT() FROM Account")
    assert sb.api_calls["salesforce"] - after["salesforce"] == 1  # failed calls count too


def test_bulk_delete_and_hard_delete(sb: Sandbox, sf: Salesforce) -> None:
    asks = sb.records("Reference_Request__c")
    soft, hard = asks[0]["Id"], asks[1]["Id"]
    [summary] = sf.bulk2.Reference_Request__c.delete(records=[{"Id": soft}], wait=0)
    assert summary["numberRecordsFailed"] == 0
    [summary] = sf.bulk2.Reference_Request__c.hard_delete(records=[{"Id": hard}], wait=0)
    assert summary["numberRecordsFailed"] == 0
    assert sb.record("Reference_Request__c", soft)["IsDeleted"] is True  # type: ignore[index]
    assert sb.record("Reference_Request__c", hard) is None


def test_forced_concurrency_limit_is_403_request_limit_exceeded(
    sb: Sandbox, sf: Salesforce
) -> None:
    sb.faults.fail_next(403)
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT COUNT() FROM Account")
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Concurrent" in info.value.content[0]["message"]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0


def test_a_page_can_be_fetched_again_after_a_failure(sb: Sandbox, sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    url = first["nextRecordsUrl"]
    sb.faults.fail_next(500)
    with pytest.raises(SalesforceGeneralError):
        sf.query_more(url, identifier_is_url=True)
    again = sf.query_more(url, identifier_is_url=True)
    last = again
    while not last["done"]:
        last = sf.query_more(last["nextRecordsUrl"], identifier_is_url=True)
    assert sf.query_more(url, identifier_is_url=True)["records"] == again["records"]
