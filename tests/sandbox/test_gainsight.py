"""The Gainsight side through plain requests: auth, query, update, rate limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from sandbox import Sandbox


def _query(
    sb: Sandbox, session: requests.Session, obj: str, body: dict[str, Any]
) -> requests.Response:
    return session.post(
        f"{sb.gainsight_url}/v1/data/objects/query/{obj}",
        json=body,
        headers={"accesskey": sb.credentials["gainsight_access_key"]},
        timeout=10,
    )


def test_missing_or_wrong_access_key_is_401(sb: Sandbox, session: requests.Session) -> None:
    url = f"{sb.gainsight_url}/v1/data/objects/query/Company"
    assert session.post(url, json={"select": ["Gsid"]}, timeout=10).status_code == 401
    wrong = session.post(url, json={"select": ["Gsid"]}, headers={"accesskey": "x"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["result"] is False
    assert wrong.json()["errorCode"] == "GS_APIG_2401"  # the documented code


def test_query_pages_with_limit_and_offset(sb: Sandbox, session: requests.Session) -> None:
    total = sb.count("Person")
    seen: list[str] = []
    offset = 0
    while True:
        resp = _query(
            sb,
            session,
            "Person",
            {
                "select": ["Gsid", "Email", "SfdcContactId", "ModifiedDate"],
                "orderBy": {"Gsid": "asc"},
                "limit": 200,
                "offset": offset,
            },
        )
        body = resp.json()
        assert body["result"] is True
        assert body["requestId"]
        records = body["data"]["records"]
        seen.extend(r["Gsid"] for r in records)
        if len(records) < 200:
            break
        offset += 200
    assert len(seen) == total
    assert seen == sorted(seen)


def test_where_conditions_and_expression(sb: Sandbox, session: requests.Session) -> None:
    companies = sb.records("Company")
    body = {
        "select": ["Gsid", "CurrentScore", "SfdcAccountId", "PaymentOverdue__gc"],
        "where": {
            "conditions": [
                {"name": "CurrentScore", "alias": "A", "value": [50], "operator": "LT"},
                {"name": "PaymentOverdue__gc", "alias": "B", "value": [True], "operator": "EQ"},
                {"name": "SfdcAccountId", "alias": "C", "value": [], "operator": "IS_NULL"},
            ],
            "expression": "(A OR B) AND NOT C",
        },
        "limit": 5000,
    }
    got = {r["Gsid"] for r in _query(sb, session, "Company", body).json()["data"]["records"]}
    want = {
        c["Gsid"]
        for c in companies
        if (c["CurrentScore"] < 50 or c["PaymentOverdue__gc"]) and c["SfdcAccountId"] is not None
    }
    assert got == want
    assert got


def test_datetime_filter_on_modified_date(sb: Sandbox, session: requests.Session) -> None:
    person = sb.records("Person")[3]
    sb.update("Person", person["Gsid"], {"Role": "Champion"})
    changed = sb.record("Person", person["Gsid"])
    assert changed is not None
    body = {
        "select": ["Gsid", "Role"],
        "where": {
            "conditions": [
                {
                    "name": "ModifiedDate",
                    "alias": "A",
                    "value": [changed["ModifiedDate"]],
                    "operator": "GTE",
                }
            ]
        },
    }
    records = _query(sb, session, "Person", body).json()["data"]["records"]
    assert records == [{"Gsid": person["Gsid"], "Role": "Champion"}]


def test_nps_answers_have_a_realistic_mix(sb: Sandbox, session: requests.Session) -> None:
    records = _query(
        sb, session, "SurveyUserAnswer", {"select": ["NPSScore", "ResponseDate"], "limit": 5000}
    ).json()["data"]["records"]
    scores = [r["NPSScore"] for r in records]
    promoters = sum(s >= 9 for s in scores) / len(scores)
    detractors = sum(s <= 6 for s in scores) / len(scores)
    assert 0.3 < promoters < 0.8
    assert 0.05 < detractors < 0.4
    # Date-times come back as epoch milliseconds, as the Read API documents.
    assert all(isinstance(r["ResponseDate"], int) for r in records)
    earliest = datetime.fromtimestamp(min(r["ResponseDate"] for r in records) / 1000, UTC)
    assert earliest >= datetime(2024, 11, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"select": ["Nope"]}, "GS_INVALID_FIELD"),
        ({"select": ["Gsid"], "limit": 5001}, "GS_LIMIT_EXCEEDED"),
        (
            {
                "select": ["Gsid"],
                "where": {
                    "conditions": [
                        {"name": "Name", "alias": "A", "value": ["x"], "operator": "EQ"}
                    ],
                    "expression": "A AND B",
                },
            },
            "GS_INVALID_REQUEST",
        ),
    ],
)
def test_bad_queries_are_rejected(
    sb: Sandbox, session: requests.Session, body: dict[str, Any], code: str
) -> None:
    resp = _query(sb, session, "Company", body)
    assert resp.status_code == 400
    assert resp.json()["errorCode"] == code
    assert resp.json()["result"] is False


def test_update_by_keys_writes_and_reports_per_record_errors(
    sb: Sandbox, session: requests.Session
) -> None:
    people = sb.records("Person")[:2]
    resp = session.put(
        f"{sb.gainsight_url}/v1/data/objects/Person?keys=Gsid",
        json={
            "records": [
                {"Gsid": people[0]["Gsid"], "Advocate_Status__gc": "Eligible"},
                {"Gsid": people[1]["Gsid"], "Advocate_Status__gc": "Whatever"},
                {"Gsid": "1P0P99999999999999999999999999999999", "Role": "x"},
            ]
        },
        headers={"accesskey": sb.credentials["gainsight_access_key"]},
        timeout=10,
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["data"]["count"] == 1
    assert [e["index"] for e in body["data"]["errors"]] == [1, 2]
    assert body["data"]["errors"][1]["errorCode"] == "GS_RECORD_NOT_FOUND"
    updated = sb.record("Person", people[0]["Gsid"])
    assert updated is not None
    assert updated["Advocate_Status__gc"] == "Eligible"
    assert updated["ModifiedDate"] > people[0]["ModifiedDate"]


def test_update_over_50_records_is_rejected(sb: Sandbox, session: requests.Session) -> None:
    gsid = sb.records("Company")[0]["Gsid"]
    resp = session.put(
        f"{sb.gainsight_url}/v1/data/objects/Company?keys=Gsid",
        json={"records": [{"Gsid": gsid, "Stage": "Mature"}] * 51},
        headers={"accesskey": sb.credentials["gainsight_access_key"]},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["errorCode"] == "GS_LIMIT_EXCEEDED"


def test_per_minute_budget_answers_429_with_retry_after(
    sb: Sandbox, session: requests.Session
) -> None:
    # Fixed windows (as Gainsight documents): five quick calls inside one wall-clock minute.
    for _ in range(3):
        sb.faults.reset()
        sb.faults.gainsight_per_minute = 3
        minute = int(time.time() // 60)
        body = {"select": ["Gsid"], "limit": 1}
        answers = [_query(sb, session, "Company", body) for _ in range(5)]
        if int(time.time() // 60) == minute:
            break
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    limited = answers[-1]
    # The seconds left in the current minute, not a sliding 60.
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert limited.json()["errorCode"] == "GS_RATE_LIMIT"


def test_gainsight_server_errors(sb: Sandbox, session: requests.Session) -> None:
    sb.faults.fail_next(503, system="gainsight")
    assert _query(sb, session, "Company", {"select": ["Gsid"]}).status_code == 503
    assert _query(sb, session, "Company", {"select": ["Gsid"]}).status_code == 200


def test_daily_budget_answers_429_until_midnight(sb: Sandbox, session: requests.Session) -> None:
    sb.faults.gainsight_per_day = 2
    statuses = [
        _query(sb, session, "Company", {"select": ["Gsid"], "limit": 1}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = _query(sb, session, "Company", {"select": ["Gsid"], "limit": 1})
    assert 1 <= int(limited.headers["Retry-After"]) <= 86401
