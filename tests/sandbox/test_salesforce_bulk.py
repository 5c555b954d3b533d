"""Bulk API 2.0 through simple-salesforce's own bulk2 handler: query jobs and ingest jobs."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox import Sandbox


def _rows(chunks: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for chunk in chunks:
        out.extend(csv.DictReader(io.StringIO(chunk)))
    return out


def test_bulk_query_returns_every_record_across_locator_pages(sb: Sandbox, sf: Salesforce) -> None:
    chunks = list(
        sf.bulk2.Contact.query(
            "SELECT Id, Email, Reference_Opt_In__c, Account.Name, SystemModstamp FROM Contact",
            max_records=150,
            wait=0,
        )
    )
    rows = _rows(chunks)
    total = sb.count("Contact")
    assert len(chunks) == -(-total // 150)
    assert len(rows) == total
    assert set(rows[0]) == {"Id", "Email", "Reference_Opt_In__c", "Account.Name", "SystemModstamp"}
    assert {r["Reference_Opt_In__c"] for r in rows} == {"true", "false"}
    assert rows[0]["SystemModstamp"].endswith("Z")
    account_names = {a["Id"]: a["Name"] for a in sb.records("Account")}
    contact = sb.records("Contact")[0]
    by_id = {r["Id"]: r for r in rows}
    assert by_id[contact["Id"]]["Account.Name"] == account_names[contact["AccountId"]]


def test_bulk_query_all_includes_deleted_records(sb: Sandbox, sf: Salesforce) -> None:
    victim = sb.records("Case")[0]["Id"]
    sb.delete("Case", victim)
    live = _rows(list(sf.bulk2.Case.query("SELECT Id FROM Case", wait=0)))
    everything = _rows(list(sf.bulk2.Case.query_all("SELECT Id, IsDeleted FROM Case", wait=0)))
    assert victim not in {r["Id"] for r in live}
    assert {r["Id"]: r["IsDeleted"] for r in everything}[victim] == "true"


def test_bulk_query_headers_follow_the_documented_protocol(
    sb: Sandbox, sf: Salesforce, session: requests.Session
) -> None:
    headers = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    base = f"{sb.salesforce_url}/services/data/v{sb.api_version}/jobs/query"
    job = session.post(
        base, json={"operation": "query", "query": "SELECT Id FROM Account"}, headers=headers
    ).json()
    assert job["state"] == "UploadComplete"
    assert job["id"].startswith("750")
    states = [session.get(f"{base}/{job['id']}", headers=headers).json()["state"] for _ in range(3)]
    assert states[-1] == "JobComplete"
    first = session.get(f"{base}/{job['id']}/results?maxRecords=50", headers=headers)
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Sforce-NumberOfRecords"] == "50"
    locator = first.headers["Sforce-Locator"]
    assert locator != "null"
    rest = session.get(
        f"{base}/{job['id']}/results?maxRecords=100000&locator={locator}", headers=headers
    )
    assert rest.headers["Sforce-Locator"] == "null"
    assert int(rest.headers["Sforce-NumberOfRecords"]) == sb.count("Account") - 50
    assert rest.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_bulk_query_rejects_bad_soql(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        list(sf.bulk2.Contact.query("SELECT Nope__c FROM Contact", wait=0))
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_bulk_update_writes_and_reports_failures(sb: Sandbox, sf: Salesforce) -> None:
    contacts = sb.records("Contact")[10:14]
    records = [
        {"Id": contacts[0]["Id"], "Advocate_Status__c": "Eligible", "Advocate_Score__c": "72.5"},
        {"Id": contacts[1]["Id"], "Advocate_Status__c": "Not A Status"},
        {"Id": contacts[2]["Id"], "Advocate_Reason__c": "r" * 300},
        {"Id": contacts[3]["Id"], "Advocate_Eligible__c": "true"},
    ]
    [summary] = sf.bulk2.Contact.update(records=records, wait=0)
    assert summary["numberRecordsProcessed"] == 4
    assert summary["numberRecordsFailed"] == 2
    failed = list(
        csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(summary["job_id"])))
    )
    assert {f["sf__Id"] for f in failed} == {contacts[1]["Id"], contacts[2]["Id"]}
    assert {f["sf__Error"].split(":")[0] for f in failed} == {
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "STRING_TOO_LONG",
    }
    ok = list(
        csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(summary["job_id"])))
    )
    assert {o["sf__Id"] for o in ok} == {contacts[0]["Id"], contacts[3]["Id"]}
    assert {o["sf__Created"] for o in ok} == {"false"}
    first = sb.record("Contact", contacts[0]["Id"])
    assert first is not None
    assert first["Advocate_Status__c"] == "Eligible"
    assert first["Advocate_Score__c"] == 72.5
    assert first["SystemModstamp"] > contacts[0]["SystemModstamp"]
    assert sb.record("Contact", contacts[3]["Id"])["Advocate_Eligible__c"] is True  # type: ignore[index]


def test_bulk_update_lock_row_faults_are_per_record(sb: Sandbox, sf: Salesforce) -> None:
    sb.faults.lock_row_rate = 1.0
    cid = sb.records("Contact")[20]["Id"]
    [summary] = sf.bulk2.Contact.update(records=[{"Id": cid, "Title": "Locked"}], wait=0)
    assert summary["numberRecordsFailed"] == 1
    failed = sf.bulk2.Contact.get_failed_records(summary["job_id"])
    assert "UNABLE_TO_LOCK_ROW" in failed
    assert sb.record("Contact", cid)["Title"] != "Locked"  # type: ignore[index]


def test_bulk_insert_creates_records_with_new_ids(sb: Sandbox, sf: Salesforce) -> None:
    contact = sb.records("Contact")[0]
    before = sb.count("Reference_Request__c")
    [summary] = sf.bulk2.Reference_Request__c.insert(
        records=[
            {
                "Contact__c": contact["Id"],
                "Account__c": contact["AccountId"],
                "Type__c": "Reference Call",
                "Status__c": "Requested",
                "Requested_Date__c": "2026-11-20",
                "Team__c": "Sales",
            }
        ],
        wait=0,
    )
    assert summary["numberRecordsFailed"] == 0
    assert sb.count("Reference_Request__c") == before + 1
    ok = list(
        csv.DictReader(
            io.StringIO(sf.bulk2.Reference_Request__c.get_successful_records(summary["job_id"]))
        )
    )
    assert ok[0]["sf__Created"] == "true"
    assert ok[0]["sf__Id"].startswith("a0X")


def test_a_failed_ingest_job_lists_its_rows_as_unprocessed(sb: Sandbox, sf: Salesforce) -> None:
    # Bulk API 2.0 "Get Job Unprocessed Record Results": the rows a failed or aborted job never
    # processed, with the columns of the original upload.
    cid = sb.records("Contact")[30]["Id"]
    client = sf.bulk2.Contact._client
    job = client.create_job("update")
    client.upload_job_data(job["id"], f"Id,No_Such_Field__c\n{cid},x\n")
    client.close_job(job["id"])
    info = client.get_job(job["id"], False)
    assert info["state"] == "Failed"
    assert "No_Such_Field__c" in info["errorMessage"]
    unprocessed = list(
        csv.DictReader(io.StringIO(client.get_ingest_results(job["id"], "unprocessedrecords")))
    )
    assert unprocessed == [{"Id": cid, "No_Such_Field__c": "x"}]
    assert client.get_ingest_results(job["id"], "successfulResults").strip() == (
        '"sf__Id","sf__Created","Id","No_Such_Field__c"'
    )
