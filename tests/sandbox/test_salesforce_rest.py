"""The Salesforce side driven by simple-salesforce itself: auth, describe, SOQL, collections."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox import Sandbox
from sandbox.ids import is_sf_id


def _jwt(sb: Sandbox, **overrides: object) -> str:
    claims: dict[str, object] = {
        "iss": sb.credentials["client_id"],
        "sub": sb.credentials["username"],
        "aud": sb.salesforce_url,
        "exp": int(time.time()) + 180,
    }
    claims.update(overrides)
    with open(sb.credentials["private_key_file"], "rb") as fh:
        key = fh.read()
    return jwt.encode(claims, key, algorithm="RS256")


def test_jwt_bearer_flow_issues_a_working_token(sb: Sandbox, session: requests.Session) -> None:
    resp = session.post(
        f"{sb.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _jwt(sb),
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["instance_url"] == sb.salesforce_url
    sf = Salesforce(
        instance_url=body["instance_url"], session_id=body["access_token"], session=session
    )
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == sb.count("Account")


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"sub": "someone@else"}, "invalid_grant"),
        ({"iss": "not-the-app"}, "invalid_client_id"),
        ({"aud": "https://example.com"}, "invalid_grant"),
        ({"exp": int(time.time()) - 600}, "invalid_grant"),
    ],
)
def test_jwt_bearer_flow_rejects_bad_assertions(
    sb: Sandbox, session: requests.Session, override: dict[str, object], error: str
) -> None:
    resp = session.post(
        f"{sb.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _jwt(sb, **override),
        },
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == error


def test_password_and_refresh_grants(sb: Sandbox, session: requests.Session) -> None:
    base = f"{sb.salesforce_url}/services/oauth2/token"
    creds = sb.credentials
    ok = session.post(
        base,
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "username": creds["username"],
            "password": creds["password"],
        },
        timeout=10,
    )
    assert ok.status_code == 200
    bad = session.post(
        base,
        data={
            "grant_type": "password",
            "client_id": creds["client_id"],
            "username": creds["username"],
            "password": "wrong",
        },
        timeout=10,
    )
    assert bad.json()["error"] == "invalid_grant"
    refreshed = session.post(
        base,
        data={
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "refresh_token": creds["refresh_token"],
        },
        timeout=10,
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != ok.json()["access_token"]


def test_describe_lists_fields_with_salesforce_shape(sf: Salesforce) -> None:
    desc = sf.Contact.describe()
    fields = {f["name"]: f for f in desc["fields"]}
    status = fields["Advocate_Status__c"]
    assert status["type"] == "picklist"
    assert status["restrictedPicklist"] is True
    assert [p["value"] for p in status["picklistValues"]] == [
        "Eligible",
        "Fatigued",
        "Suspended",
        "Not Eligible",
        "Opted Out",
    ]
    assert fields["Advocate_Reason__c"]["length"] == 255
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["SystemModstamp"]["updateable"] is False
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Case", "Reference_Request__c"} <= names


def test_query_all_iter_pages_through_every_record(sb: Sandbox, sf: Salesforce) -> None:
    before = sb.api_calls["salesforce.query"]
    records = list(
        sf.query_all_iter(
            "SELECT Id, Email, AccountId, Reference_Opt_In__c FROM Contact ORDER BY Id",
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
    )
    total = sb.count("Contact")
    assert total > 400  # several pages
    assert len(records) == total
    assert len({r["Id"] for r in records}) == total
    assert all(is_sf_id(r["Id"]) and r["Id"].startswith("003") for r in records)
    assert records[0]["attributes"]["type"] == "Contact"
    assert isinstance(records[0]["Reference_Opt_In__c"], bool)
    assert [r["Id"] for r in records] == sorted(r["Id"] for r in records)
    pages = sb.api_calls["salesforce.query"] - before
    assert pages == -(-total // 200)


def test_query_more_follows_next_records_url(sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["done"] is False or first["totalSize"] <= 200
    if not first["done"]:
        assert "/query/01g" in first["nextRecordsUrl"]
        more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        assert more["records"]


def test_where_clause_filters_like_salesforce(sb: Sandbox, sf: Salesforce) -> None:
    contacts = sb.records("Contact")
    opted = [c for c in contacts if c["Reference_Opt_In__c"] and not c["Reference_Opt_Out__c"]]
    soql = (
        "SELECT Id FROM Contact WHERE (Reference_Opt_In__c = true AND NOT "
        "Reference_Opt_Out__c = true) OR Email = null"
    )
    got = {r["Id"] for r in sf.query_all(soql)["records"]}
    assert got == {c["Id"] for c in opted} | {c["Id"] for c in contacts if c["Email"] is None}
    email = contacts[0]["Email"]
    upper = sf.query(format_soql("SELECT Id FROM Contact WHERE Email = {}", email.upper()))
    assert contacts[0]["Id"] in {r["Id"] for r in upper["records"]}  # case-insensitive
    ids = [c["Id"] for c in contacts[:3]]
    in_q = sf.query(format_soql("SELECT Id FROM Contact WHERE Id IN {}", ids))
    assert {r["Id"] for r in in_q["records"]} == set(ids)
    like = sf.query("SELECT Name FROM Account WHERE Name LIKE 'acme%' ORDER BY Name DESC LIMIT 3")
    names = [r["Name"] for r in like["records"]]
    assert names
    assert all(n.lower().startswith("acme") for n in names)
    assert names == sorted(names, reverse=True)


def test_datetime_watermark_picks_up_a_changed_record(sb: Sandbox, sf: Salesforce) -> None:
    since = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    contact = sb.records("Contact")[5]
    sb.update("Contact", contact["Id"], {"Title": "Chief Advocate"})
    soql = format_soql(
        "SELECT Id, Title, SystemModstamp FROM Contact WHERE SystemModstamp >= {}", since
    )
    rows = sf.query_all(soql)["records"]
    assert [r["Id"] for r in rows] == [contact["Id"]]
    assert rows[0]["Title"] == "Chief Advocate"
    assert rows[0]["SystemModstamp"].endswith("+0000")


def test_query_all_sees_deleted_and_merged_records(sb: Sandbox, sf: Salesforce) -> None:
    accounts = sb.records("Account")
    winner, loser = accounts[-1]["Id"], accounts[-2]["Id"]
    gone = sb.records("Contact")[-1]["Id"]
    sb.delete("Contact", gone)
    sb.merge("Account", winner, loser)
    live = {r["Id"] for r in sf.query_all("SELECT Id FROM Contact")["records"]}
    assert gone not in live
    deleted = sf.query_all(
        "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True
    )["records"]
    assert gone in {r["Id"] for r in deleted}
    merged = sf.query_all(
        format_soql("SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Id = {}", loser),
        include_deleted=True,
    )["records"]
    assert merged[0]["IsDeleted"] is True
    assert merged[0]["MasterRecordId"] == winner
    assert (
        sf.query(format_soql("SELECT COUNT() FROM Contact WHERE AccountId = {}", loser))[
            "totalSize"
        ]
        == 0
    )


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, Nope__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE SystemModstamp >= '2026-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM Contact LIMIT x", "MALFORMED_QUERY"),
    ],
)
def test_bad_soql_raises_malformed_request(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.content[0]["errorCode"] == code


def test_collections_update_reports_per_record_results(sb: Sandbox, sf: Salesforce) -> None:
    a, b, c, d = (r["Id"] for r in sb.records("Contact")[:4])
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Contact"},
                    "id": a,
                    "Advocate_Status__c": "Fatigued",
                    "Advocate_Next_Available__c": "2026-12-24",
                    "Advocate_Eligible__c": False,
                },
                {"attributes": {"type": "Contact"}, "id": b, "Advocate_Status__c": "Bogus"},
                {"attributes": {"type": "Contact"}, "id": c, "Advocate_Reason__c": "x" * 256},
                {"attributes": {"type": "Contact"}, "id": d, "Name": "Read Only"},
            ],
        },
    )
    assert results[0] == {"id": a, "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] for r in results[1:]]
    assert codes == [
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "STRING_TOO_LONG",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    ]
    assert results[2]["errors"][0]["fields"] == ["Advocate_Reason__c"]
    row = sb.record("Contact", a)
    assert row is not None
    assert row["Advocate_Status__c"] == "Fatigued"
    assert row["Advocate_Next_Available__c"] == "2026-12-24"


def test_collections_all_or_none_rolls_back(sb: Sandbox, sf: Salesforce) -> None:
    a, b = (r["Id"] for r in sb.records("Account")[:2])
    before = sb.record("Account", a)
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "id": a, "Advocate_Score__c": 50},
                {"attributes": {"type": "Account"}, "id": b, "Advocate_Status__c": "Nope"},
            ],
        },
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sb.record("Account", a) == before


def test_collections_reject_more_than_200_records_and_unknown_fields(
    sb: Sandbox, sf: Salesforce
) -> None:
    cid = sb.records("Contact")[0]["Id"]
    rec = {"attributes": {"type": "Contact"}, "id": cid, "Title": "x"}
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects", method="PATCH", json={"records": [rec] * 201})
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"records": [{**rec, "No_Such__c": 1}]},
        )
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_lock_row_faults_fail_single_records(sb: Sandbox, sf: Salesforce) -> None:
    sb.faults.lock_row_rate = 1.0
    cid = sb.records("Contact")[0]["Id"]
    results = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [{"attributes": {"type": "Contact"}, "id": cid, "Title": "T"}]},
    )
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


def test_sobject_patch_and_404(sb: Sandbox, sf: Salesforce) -> None:
    cid = sb.records("Contact")[1]["Id"]
    sf.Contact.update(cid, {"Advocate_Score__c": 87.5})
    assert sb.record("Contact", cid)["Advocate_Score__c"] == 87.5  # type: ignore[index]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("no/such/thing")


def test_expired_token_raises_expired_session(sb: Sandbox, sf: Salesforce) -> None:
    sf.query("SELECT COUNT() FROM Account")
    sb.faults.expire_tokens()
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT COUNT() FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_daily_budget_runs_out_with_request_limit_exceeded(sb: Sandbox, sf: Salesforce) -> None:
    sf.query("SELECT COUNT() FROM Account")
    used = sf.api_usage["api-usage"].used
    assert used >= 1
    sb.faults.api_limit = used + 2
    sf.query("SELECT COUNT() FROM Account")
    sf.query("SELECT COUNT() FROM Account")
    assert sf.api_usage["api-usage"].used == used + 2
    assert sf.api_usage["api-usage"].total == used + 2
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT COUNT() FROM Account")
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_server_errors_and_rates(sb: Sandbox, sf: Salesforce) -> None:
    sb.faults.fail_next(503)
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT COUNT() FROM Account")
    assert info.value.status == 503
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] > 0
    sb.faults.rate_500 = 0.5
    outcomes = []
    for _ in range(40):
        try:
            sf.query("SELECT COUNT() FROM Account")
            outcomes.append("ok")
        except SalesforceGeneralError as exc:
            outcomes.append(str(exc.status))
    assert 5 < outcomes.count("500") < 35
    assert "ok" in outcomes


def test_add_and_rename_field_show_in_describe_and_soql(sb: Sandbox, sf: Salesforce) -> None:
    sb.add_field("Account", "Tier__c", "picklist", picklist=("Gold", "Silver"))
    fields = {f["name"] for f in sf.Account.describe()["fields"]}
    assert "Tier__c" in fields
    aid = sb.records("Account")[0]["Id"]
    sb.update("Account", aid, {"Tier__c": "Gold"})
    assert (
        sf.query(format_soql("SELECT Tier__c FROM Account WHERE Id = {}", aid))["records"][0][
            "Tier__c"
        ]
        == "Gold"
    )
    sb.rename_field("Account", "Tier__c", "Level__c")
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Tier__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sf.query("SELECT Level__c FROM Account WHERE Level__c = 'Gold'")["totalSize"] == 1


def test_and_or_mixed_without_parentheses_is_malformed(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(
            "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z "
            "OR SystemModstamp = 2026-01-01T00:00:00Z AND Id > '0035g0000000001AAA'"
        )
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    ok = sf.query(
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z "
        "OR (SystemModstamp = 2026-01-01T00:00:00Z AND Id > '0035g0000000001AAA')"
    )
    assert ok["totalSize"] > 0


def _sub(sb: Sandbox, ref: str, soql: str, resource: str = "queryAll") -> dict[str, str]:
    url = f"/services/data/v{sb.api_version}/{resource}/?q={requests.utils.quote(soql)}"
    return {"method": "GET", "url": url, "referenceId": ref}


def test_composite_answers_each_subrequest_and_counts_one_call(sb: Sandbox, sf: Salesforce) -> None:
    before = sb.api_calls
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                _sub(sb, "contacts", "SELECT COUNT() FROM Contact"),
                _sub(sb, "bad", "SELECT Nope__c FROM Contact", "query"),
                {
                    "method": "GET",
                    "url": f"/services/data/v{sb.api_version}/sobjects/Account/describe",
                    "referenceId": "describe",
                },
            ],
        },
    )
    subs = answer["compositeResponse"]
    assert [s["referenceId"] for s in subs] == ["contacts", "bad", "describe"]
    assert subs[0]["httpStatusCode"] == 200
    assert subs[0]["body"]["totalSize"] == len(sb.records("Contact", include_deleted=True))
    assert subs[1]["httpStatusCode"] == 400  # a failed subrequest does not stop the others
    assert subs[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert subs[2]["httpStatusCode"] == 200
    assert subs[2]["body"]["name"] == "Account"
    after = sb.api_calls
    assert after["salesforce"] - before["salesforce"] == 1  # the whole request is one call
    assert after["salesforce.composite_request"] - before["salesforce.composite_request"] == 1
    assert after["salesforce.query"] == before["salesforce.query"]


def test_composite_all_or_none_halts_after_a_failure(sf: Salesforce, sb: Sandbox) -> None:
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                _sub(sb, "bad", "SELECT Nope__c FROM Contact"),
                _sub(sb, "after", "SELECT COUNT() FROM Contact"),
            ],
        },
    )
    codes = [s["httpStatusCode"] for s in answer["compositeResponse"]]
    assert codes == [400, 400]
    assert answer["compositeResponse"][1]["body"][0]["errorCode"] == "PROCESSING_HALTED"


@pytest.mark.parametrize(
    ("subs", "needle"),
    [(26, "25 subrequests"), (6, "at most 5 query operations")],
)
def test_composite_keeps_salesforces_limits(
    sf: Salesforce, sb: Sandbox, subs: int, needle: str
) -> None:
    requests_ = [_sub(sb, f"r{i}", "SELECT COUNT() FROM Contact") for i in range(subs)]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite", method="POST", json={"compositeRequest": requests_})
    assert needle in info.value.content[0]["message"]
