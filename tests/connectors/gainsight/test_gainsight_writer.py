from __future__ import annotations

import json
from datetime import date

import responses
from responses import matchers

from connectors.base import RecordChange
from tests.connectors.gainsight.gainsight_fake import BASE, envelope, make_connector

URL = f"{BASE}/v1/data/objects/Company"


def changes(n: int) -> list[RecordChange]:
    return [
        RecordChange(f"G{i:03d}", {"Advocate_Status__gc": "Eligible", "Advocate_Score__gc": i})
        for i in range(n)
    ]


def test_writes_are_off_by_default() -> None:
    conn, _ = make_connector()
    with responses.RequestsMock():  # any call would fail: none is registered
        results = conn.write("Company", changes(3))
    assert [r.success for r in results] == [False] * 3
    assert {r.code for r in results} == {"WRITES_DISABLED"}


@responses.activate
def test_updates_go_in_calls_of_at_most_50_keyed_by_gsid() -> None:
    def answer(request):  # type: ignore[no-untyped-def]
        recs = json.loads(request.body)["records"]
        data = {"count": len(recs), "errors": None, "records": [{"Gsid": r["Gsid"]} for r in recs]}
        return 200, {}, json.dumps(envelope(data))

    responses.add_callback(
        responses.PUT,
        URL,
        callback=answer,
        match=[matchers.query_param_matcher({"keys": "Gsid"})],
    )
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(120))
    sizes = [len(json.loads(c.request.body)["records"]) for c in responses.calls]
    assert sizes == [50, 50, 20]
    assert all(r.success for r in results)
    assert [r.record_id for r in results] == [f"G{i:03d}" for i in range(120)]
    first = json.loads(responses.calls[0].request.body)["records"][0]
    assert first == {"Advocate_Status__gc": "Eligible", "Advocate_Score__gc": 0, "Gsid": "G000"}


@responses.activate
def test_per_record_errors_in_the_envelope_fail_only_those_records() -> None:
    data = {
        "count": 2,
        "errors": [
            {
                "errorCode": "GSOBJ_1005",
                "errorDesc": "Invalid value",
                "record": {"Gsid": "G001"},
            }
        ],
        "records": [{"Gsid": "G000"}, {"Gsid": "G002"}],
    }
    responses.put(URL, json=envelope(data))
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(3))
    assert [(r.record_id, r.success, r.code) for r in results] == [
        ("G000", True, None),
        ("G001", False, "GSOBJ_1005"),
        ("G002", True, None),
    ]


@responses.activate
def test_a_record_gainsight_did_not_confirm_is_not_marked_written() -> None:
    responses.put(URL, json=envelope({"count": 1, "errors": None, "records": [{"Gsid": "G000"}]}))
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(2))
    assert results[0].success
    assert (results[1].success, results[1].code, results[1].retryable) == (
        False,
        "UNCONFIRMED",
        True,
    )


@responses.activate
def test_all_failed_result_false_with_errors_is_reported_per_record() -> None:
    body = {
        "result": False,
        "errorCode": "GSOBJ_1000",
        "errorDesc": "Validation failed",
        "data": {"count": 0, "errors": [{"index": 0, "errorDesc": "bad"}], "records": []},
    }
    responses.put(URL, json=body)
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(1))
    assert (results[0].success, results[0].message) == (False, "bad")


@responses.activate
def test_server_errors_after_retries_become_retryable_failures() -> None:
    for _ in range(2):
        responses.put(URL, status=503)
    conn, _ = make_connector(writes_enabled=True, max_attempts=2)
    results = conn.write("Company", changes(2))
    assert all(not r.success and r.retryable for r in results)
    assert len(responses.calls) == 2


@responses.activate
def test_dates_are_sent_as_iso_text_and_people_objects_are_refused() -> None:
    responses.put(URL, json=envelope({"count": 1, "errors": None, "records": [{"Gsid": "G1"}]}))
    conn, _ = make_connector(writes_enabled=True)
    res = conn.write(
        "Company", [RecordChange("G1", {"Advocate_Next_Available__gc": date(2027, 1, 2)})]
    )
    assert res[0].success
    assert (
        json.loads(responses.calls[0].request.body)["records"][0]["Advocate_Next_Available__gc"]
        == "2027-01-02"
    )
    people = conn.write("Person", changes(1))
    assert people[0].code == "UNSUPPORTED_OBJECT"
    assert len(responses.calls) == 1


def _validating_update(bad: set[str], code: str = "GSOBJ_1008"):  # type: ignore[no-untyped-def]
    """An Update API that, as documented, refuses the whole call if any record is invalid."""

    def answer(request):  # type: ignore[no-untyped-def]
        recs = json.loads(request.body)["records"]
        if any(r["Gsid"] in bad for r in recs):
            body = {
                "result": False,
                "errorCode": code,
                "errorDesc": "Invalid Boolean Value: maybe (Advocate_Eligible__gc = maybe)",
                "requestId": "r-2",
                "data": None,
                "message": None,
            }
            return 400, {}, json.dumps(body)
        data = {"count": len(recs), "errors": None, "records": [{"Gsid": r["Gsid"]} for r in recs]}
        return 200, {}, json.dumps(envelope(data))

    return answer


@responses.activate
def test_one_invalid_record_does_not_fail_the_good_records_of_its_batch() -> None:
    # "If the validation fails for any record on any field, then the API call fails with a
    # validation error" (Company / Custom Object API): the batch is halved down to the culprit.
    responses.add_callback(responses.PUT, URL, callback=_validating_update({"G017"}))
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(50))
    assert [r.record_id for r in results] == [f"G{i:03d}" for i in range(50)]
    failed = [(r.record_id, r.code, r.retryable) for r in results if not r.success]
    assert failed == [("G017", "GSOBJ_1008", False)]
    assert len(responses.calls) <= 1 + 2 * 6  # about two calls per halving, not one per record


@responses.activate
def test_a_batch_refused_in_every_part_stops_splitting() -> None:
    # Every record invalid (a mapping sending the wrong type, say): a few calls, then stop.
    responses.add_callback(
        responses.PUT, URL, callback=_validating_update({f"G{i:03d}" for i in range(50)})
    )
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(50))
    assert not any(r.success for r in results)
    assert {r.code for r in results} == {"GSOBJ_1008"}
    assert len(responses.calls) == 3


@responses.activate
def test_a_refusal_that_is_not_about_a_value_is_not_split() -> None:
    responses.put(URL, status=400, json={"result": False, "errorCode": "GSOBJ_1023"})
    conn, _ = make_connector(writes_enabled=True)
    results = conn.write("Company", changes(10))
    assert {r.code for r in results} == {"GSOBJ_1023"}
    assert len(responses.calls) == 1
