from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests
import responses

from canonical.errors import (
    AuthError,
    BudgetExhaustedError,
    ConfigError,
    FatalApiError,
    RateLimitedError,
    RetriableError,
)
from connectors.base import StreamSpec
from connectors.gainsight import CallBudget, GainsightConfig
from connectors.gainsight.errors import parse_retry_after, safe_text
from tests.connectors.gainsight.gainsight_fake import (
    BASE,
    KEY,
    FakeClock,
    at,
    envelope,
    make_connector,
)

URL = f"{BASE}/v1/data/objects/query/Company"
SPEC = StreamSpec(
    name="accounts",
    object_name="Company",
    fields=("Name",),
    primary_key="Gsid",
    replication_key="ModifiedDate",
)
UNTIL = at("2026-11-23T09:00:00")
EMPTY = envelope({"records": []})


def drain(conn) -> list:  # type: ignore[no-untyped-def]
    return [r for b in conn.stream(SPEC).read(None, UNTIL) for r in b.records]


@responses.activate
def test_429_waits_what_retry_after_says_then_succeeds() -> None:
    responses.post(URL, status=429, headers={"Retry-After": "7"}, json={"result": False})
    responses.post(URL, json=EMPTY)
    conn, clock = make_connector()
    assert drain(conn) == []
    assert len(responses.calls) == 2
    assert clock.sleeps == [7.0]
    assert conn.usage().extra["statuses"] == {"200": 1, "429": 1}


@responses.activate
def test_429_without_retry_after_backs_off_and_gives_up_after_max_attempts() -> None:
    for _ in range(3):
        responses.post(URL, status=429)
    conn, clock = make_connector(max_attempts=3)
    with pytest.raises(RateLimitedError):
        drain(conn)
    assert len(responses.calls) == 3
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 120 for s in clock.sleeps)


@responses.activate
def test_5xx_is_retried() -> None:
    responses.post(URL, status=503, body="<html>maintenance</html>")
    responses.post(URL, status=500, json={"result": False, "errorCode": "X"})
    responses.post(URL, json=EMPTY)
    conn, _ = make_connector()
    assert drain(conn) == []
    assert len(responses.calls) == 3


@responses.activate
def test_connection_errors_are_retried_then_raised_as_retriable() -> None:
    for _ in range(2):
        responses.post(URL, body=requests.ConnectionError("reset"))
    conn, _ = make_connector(max_attempts=2)
    with pytest.raises(RetriableError, match="lost its connection"):
        drain(conn)


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_auth_failure_fails_at_once_with_one_call(status: int, caplog) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        URL,
        status=status,
        json={"result": False, "errorCode": "GS_APIG_2401", "errorDesc": "Unauthorized"},
    )
    conn, clock = make_connector()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        drain(conn)
    assert len(responses.calls) == 1
    assert clock.sleeps == []
    assert "GAINSIGHT_ACCESS_KEY" in str(info.value)
    assert KEY not in str(info.value)
    assert KEY not in caplog.text


@responses.activate
def test_auth_error_code_in_a_200_envelope_is_an_auth_failure() -> None:
    responses.post(
        URL, json={"result": False, "errorCode": "GS_APIG_2401", "errorDesc": "Unauthorized"}
    )
    conn, _ = make_connector()
    with pytest.raises(AuthError):
        drain(conn)
    assert len(responses.calls) == 1


@responses.activate
def test_result_false_in_a_200_is_an_error_not_an_empty_page() -> None:
    responses.post(
        URL,
        json={
            "result": False,
            "errorCode": "GSOBJ_1005",
            "errorDesc": "Invalid dateTime format (Email= jane.doe@example.com)",
            "requestId": "req-9",
            "data": None,
        },
    )
    conn, _ = make_connector()
    with pytest.raises(FatalApiError) as info:
        drain(conn)
    assert info.value.code == "GSOBJ_1005"
    assert "jane.doe@example.com" not in str(info.value)
    assert "<email>" in str(info.value)
    assert len(responses.calls) == 1  # a refused request is not retried


@responses.activate
def test_400_is_fatal_and_names_the_object() -> None:
    responses.post(URL, status=400, json={"result": False, "errorCode": "GSOBJ_1023"})
    conn, _ = make_connector()
    with pytest.raises(FatalApiError, match="query Company"):
        drain(conn)
    assert len(responses.calls) == 1


@responses.activate
def test_redirects_are_not_followed() -> None:
    responses.post(URL, status=302, headers={"Location": "https://evil.example/steal"})
    conn, _ = make_connector()
    with pytest.raises(FatalApiError, match="redirect"):
        drain(conn)
    assert len(responses.calls) == 1


@responses.activate
def test_non_json_200_is_retried() -> None:
    responses.post(URL, body="<html>proxy</html>")
    responses.post(URL, json=EMPTY)
    conn, _ = make_connector()
    assert drain(conn) == []
    assert len(responses.calls) == 2


def test_pacing_keeps_each_fixed_minute_under_calls_per_minute() -> None:
    clock = FakeClock(at("2026-11-23T10:00:30").timestamp())
    budget = CallBudget(3, 1000, clock=clock, sleep=clock.sleep)
    sent_at = []
    for _ in range(8):
        budget.acquire()
        sent_at.append(clock())
    minutes = [int(t // 60) for t in sent_at]
    assert max(minutes.count(m) for m in set(minutes)) == 3
    assert len(set(minutes)) == 3
    # Waits end at the next minute's start, not a full minute later.
    assert clock.sleeps[0] == pytest.approx(30.01)
    assert budget.waits == 2


@responses.activate
def test_paced_reads_never_exceed_the_minute_limit() -> None:
    stamps: list[float] = []
    conn, clock = make_connector(page_size=1, calls_per_minute=2)

    def answer(request):  # type: ignore[no-untyped-def]
        stamps.append(clock())
        n = len(stamps)
        recs = [] if n > 5 else [{"Gsid": f"G{n}", "ModifiedDate": 1_700_000_000_000 + n * 1000}]
        import json

        return 200, {}, json.dumps(envelope({"records": recs}))

    responses.add_callback(responses.POST, URL, callback=answer)
    rows = drain(conn)
    assert len(rows) == 5
    per_minute = [int(t // 60) for t in stamps]
    assert all(per_minute.count(m) <= 2 for m in per_minute)
    assert conn.usage().extra["pacing_waits"] == 2


@responses.activate
def test_daily_budget_stops_before_the_share_is_exceeded() -> None:
    conn, _ = make_connector(page_size=1, calls_per_day=10, budget_share=0.5)
    page = envelope({"records": [{"Gsid": "G", "ModifiedDate": 1_700_000_000_000}]})
    responses.post(URL, json=page)
    with pytest.raises(BudgetExhaustedError, match="resumes after 00:00 UTC"):
        drain(conn)
    assert len(responses.calls) == 5  # the 6th call was never sent
    usage = conn.usage()
    assert (usage.calls, usage.used, usage.limit) == (5, 5, 10)
    assert usage.extra["remaining_today"] == 0


def test_daily_budget_resets_on_a_new_utc_day_and_counts_earlier_runs() -> None:
    clock = FakeClock(at("2026-11-23T23:59:59").timestamp())
    budget = CallBudget(100, 3, clock=clock, sleep=clock.sleep, calls_today=2)
    budget.acquire()
    with pytest.raises(BudgetExhaustedError):
        budget.acquire()
    clock.now += 2
    budget.acquire()
    assert budget.calls_today == 1


def test_config_hides_the_access_key_and_rejects_bad_values() -> None:
    cfg = GainsightConfig(base_url=BASE, access_key=KEY)
    assert KEY not in repr(cfg)
    assert KEY not in str(cfg)
    with pytest.raises(ConfigError) as info:
        GainsightConfig(base_url="acme", access_key="", page_size=6000, budget_share=0)
    assert len(info.value.problems) == 4


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Mon, 23 Nov 2026 10:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_safe_text_masks_emails_and_shortens() -> None:
    assert safe_text("bad value for a.b@c.io") == "bad value for <email>"
    assert len(safe_text("x" * 1000)) == 160


@responses.activate
def test_429_without_retry_after_waits_for_the_next_fixed_minute_window() -> None:
    # Gainsight documents fixed-window limits (100 calls between 10:00 and 10:01): a retry
    # inside the spent window would draw another 429, so the wait reaches the next minute.
    responses.post(URL, status=429, json={"result": False})
    responses.post(URL, json=EMPTY)
    clock = FakeClock(at("2026-11-23T10:00:45").timestamp())
    conn, _ = make_connector(clock=clock)
    assert drain(conn) == []
    assert len(responses.calls) == 2
    assert clock.sleeps[0] >= 15.0
    assert int(clock.now // 60) == int(at("2026-11-23T10:01:00").timestamp() // 60)


@responses.activate
def test_429_with_a_retry_after_of_hours_ends_the_run_as_partial_at_once() -> None:
    # The daily limit (50,000 calls a day, fixed window): waiting and retrying would only burn
    # attempts; the run stops as partial (BudgetExhaustedError) and resumes later.
    responses.post(URL, status=429, headers={"Retry-After": "36000"}, json={"result": False})
    conn, clock = make_connector()
    with pytest.raises(BudgetExhaustedError, match="partial") as info:
        drain(conn)
    assert len(responses.calls) == 1
    assert clock.sleeps == []
    assert info.value.status == 429


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("GSOBJ_1001", "widen the field"),
        ("GSOBJ_1002", "mappings/gainsight.yaml"),
        ("GSOBJ_1005", "date filters"),
        ("GSOBJ_1007", "map a value"),
        ("GSOBJ_1023", "GAINSIGHT_BASE_URL"),
        ("GSOBJ_9999", "mappings/gainsight.yaml"),
    ],
)
@responses.activate
def test_documented_error_codes_say_what_to_do_in_one_line(code: str, action: str) -> None:
    # "Error Codes for Company, Relationship, and Custom Object APIs": each answers HTTP 400.
    responses.post(URL, status=400, json={"result": False, "errorCode": code, "errorDesc": "x"})
    conn, _ = make_connector()
    with pytest.raises(FatalApiError) as info:
        drain(conn)
    message = str(info.value)
    assert info.value.code == code
    assert action in message
    assert "\n" not in message


@responses.activate
def test_ip_not_allowed_for_the_key_is_an_auth_failure_saying_so() -> None:
    responses.post(
        URL, status=403, json={"result": False, "errorCode": "GS_APIG_2402", "errorDesc": "IP"}
    )
    conn, _ = make_connector()
    with pytest.raises(AuthError, match="IP address"):
        drain(conn)
    assert len(responses.calls) == 1
