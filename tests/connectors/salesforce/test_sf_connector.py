"""The call wrapper: token renewal, retries, error translation, session settings."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from pydantic import SecretStr

from canonical.errors import (
    AuthError,
    BudgetExhaustedError,
    ConnectorError,
    FatalApiError,
    RateLimitedError,
    RetriableError,
)
from connectors.salesforce import SalesforceConfig, SalesforceConnector, build_session
from connectors.salesforce.auth import TokenCache
from tests.connectors.salesforce.sf_fakes import (
    API,
    INSTANCE,
    TOKEN_URL,
    bearer,
    no_sleep,
    sf_error,
    token_response,
)

QUERY = f"{API}/query/"


def _query(conn: SalesforceConnector) -> Any:
    return conn.call(lambda sf: sf.query("SELECT Id FROM Contact"), what="query Contact")


def _ok(rsps: responses.RequestsMock, token: str = "tok-1") -> None:
    rsps.get(QUERY, json={"done": True, "totalSize": 0, "records": []}, match=[bearer(token)])


def test_expired_session_is_renewed_once_and_the_call_repeated(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps, "tok-1")
    rsps.get(
        QUERY,
        status=401,
        body=sf_error("INVALID_SESSION_ID", "Session expired or invalid"),
        match=[bearer("tok-1")],
    )
    token_response(rsps, "tok-2")
    _ok(rsps, "tok-2")
    assert _query(connector)["done"] is True
    assert connector.token_renewals == 1


def test_second_401_after_renewal_surfaces_as_auth_error(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps, "tok-1")
    rsps.get(QUERY, status=401, body=sf_error("INVALID_SESSION_ID", "Session expired or invalid"))
    token_response(rsps, "tok-2")
    rsps.get(QUERY, status=401, body=sf_error("INVALID_SESSION_ID", "Session expired or invalid"))
    with pytest.raises(AuthError, match="freshly renewed token"):
        _query(connector)
    assert len(rsps.calls) == 4  # no retry loop on auth failures


def test_given_token_cannot_be_renewed_and_says_what_to_configure(
    rsps: responses.RequestsMock,
) -> None:
    conn = SalesforceConnector(
        SalesforceConfig(access_token="given", instance_url=INSTANCE), sleep=no_sleep
    )
    rsps.get(QUERY, status=401, body=sf_error("INVALID_SESSION_ID", "Session expired or invalid"))
    with pytest.raises(AuthError, match="SALESFORCE_ACCESS_TOKEN"):
        _query(conn)


def test_bulk_handlers_are_rebuilt_with_the_renewed_token(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps, "tok-1")
    rsps.get(
        f"{API}/jobs/query/750A",
        status=401,
        body=sf_error("INVALID_SESSION_ID", "Session expired or invalid"),
        match=[bearer("tok-1")],
    )
    token_response(rsps, "tok-2")
    rsps.get(
        f"{API}/jobs/query/750A",
        json={"id": "750A", "state": "JobComplete"},
        match=[bearer("tok-2")],
    )
    job = connector.call(lambda sf: sf.bulk2.Contact._client.get_job("750A", True), what="bulk")
    assert job["state"] == "JobComplete"


@pytest.mark.parametrize(
    ("failure", "expected_wait"),
    [
        ({"status": 500, "body": sf_error("UNKNOWN_EXCEPTION", "boom")}, None),
        ({"status": 503, "body": "Service Unavailable"}, None),
        ({"status": 429, "body": "slow down", "headers": {"Retry-After": "7"}}, 7.0),
        (
            {
                "status": 403,
                "body": sf_error(
                    "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
                ),
            },
            None,
        ),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, None),
        ({"body": requests.exceptions.ConnectionError("connection reset")}, None),
    ],
    ids=["500", "503", "429-retry-after", "concurrent-limit", "timeout", "connection-error"],
)
def test_transient_failures_are_retried_with_backoff(
    rsps: responses.RequestsMock,
    connector: SalesforceConnector,
    waits: list[float],
    failure: dict[str, Any],
    expected_wait: float | None,
) -> None:
    token_response(rsps)
    rsps.get(QUERY, **failure)
    _ok(rsps)
    assert _query(connector)["done"] is True
    assert len(waits) == 1
    if expected_wait is not None:
        assert waits[0] == expected_wait
    else:
        assert 0 <= waits[0] <= 60


def test_retries_are_bounded_and_the_last_error_surfaces(
    rsps: responses.RequestsMock, connector: SalesforceConnector, waits: list[float]
) -> None:
    token_response(rsps)
    for _ in range(4):
        rsps.get(QUERY, status=503, body="Service Unavailable")
    with pytest.raises(RetriableError) as info:
        _query(connector)
    assert info.value.status == 503
    assert len(waits) == 3  # max_attempts=4


@pytest.mark.parametrize(
    ("status", "code", "message", "cls", "action"),
    [
        (
            400,
            "INVALID_FIELD",
            "No such column 'Foo__c' on entity 'Contact'",
            FatalApiError,
            "field-level security",
        ),
        (400, "MALFORMED_QUERY", "unexpected token", FatalApiError, "filters"),
        (
            400,
            "INVALID_TYPE",
            "sObject type 'Nope__c' is not supported",
            FatalApiError,
            "object access",
        ),
        (
            400,
            "QUERY_TIMEOUT",
            "Your query request was running for too long.",
            FatalApiError,
            "Bulk API 2.0",
        ),
        (
            403,
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights",
            AuthError,
            "grant edit access",
        ),
        (
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
            BudgetExhaustedError,
            "allocation",
        ),
        (404, "NOT_FOUND", "The requested resource does not exist", FatalApiError, "object name"),
    ],
)
def test_non_retryable_errors_fail_fast_with_code_and_admin_action(
    rsps: responses.RequestsMock,
    connector: SalesforceConnector,
    waits: list[float],
    status: int,
    code: str,
    message: str,
    cls: type[ConnectorError],
    action: str,
) -> None:
    token_response(rsps)
    rsps.get(QUERY, status=status, body=sf_error(code, message))
    with pytest.raises(cls) as info:
        _query(connector)
    assert type(info.value) is cls
    assert info.value.code == code
    assert code in str(info.value)
    assert action in str(info.value)
    assert waits == []


def test_error_messages_never_carry_contact_emails(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    rsps.get(QUERY, status=400, body=sf_error("MALFORMED_QUERY", "near 'jane.doe@example.com'"))
    with pytest.raises(FatalApiError) as info:
        _query(connector)
    assert "jane.doe@example.com" not in str(info.value)
    assert "<email>" in str(info.value)


def test_every_request_carries_a_timeout(
    rsps: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    token_response(rsps)
    _ok(rsps)
    _query(connector)
    assert all(call.request.req_kwargs["timeout"] is not None for call in rsps.calls)
    assert rsps.calls[1].request.req_kwargs["timeout"] == (30.0, 120.0)


def test_session_sets_user_agent_and_ca_bundle() -> None:
    session = build_session(SalesforceConfig(ca_bundle="private-ca.pem", user_agent="ua/1"))
    assert session.verify == "private-ca.pem"
    assert session.headers["User-Agent"] == "ua/1"


def test_429_without_salesforce_body_is_rate_limited_with_retry_after() -> None:
    from connectors.salesforce.errors import from_status

    err = from_status(429, "Too Many Requests", headers={"Retry-After": "12"})
    assert isinstance(err, RateLimitedError)
    assert err.retry_after == 12.0


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (403, "TotalRequests Limit exceeded.", BudgetExhaustedError),
        (403, "ConcurrentPerOrgLongTxn Limit exceeded.", RateLimitedError),
        (403, "ConcurrentRequests (Concurrent API Requests) Limit exceeded", RateLimitedError),
        (429, "Too many requests", RateLimitedError),
        (429, "TotalRequests Limit exceeded.", BudgetExhaustedError),
    ],
)
def test_request_limit_exceeded_is_daily_only_when_salesforce_says_so(
    status: int, message: str, expected: type[ConnectorError]
) -> None:
    # REST "Status Codes and Error Responses": 403 with REQUEST_LIMIT_EXCEEDED is the org's API
    # limit; the message tells the daily total from the concurrent long-running limit.
    from connectors.salesforce.errors import from_status

    err = from_status(
        status,
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": message}],
        headers={"Retry-After": "3"},
    )
    assert type(err) is expected


def test_connectors_sharing_a_token_cache_log_in_once(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    # serve runs many jobs in one process: one login, not one per job.
    tokens = TokenCache()
    token_response(rsps, "tok-1")
    _ok(rsps, "tok-1")
    _ok(rsps, "tok-1")
    for _job in range(2):
        conn = SalesforceConnector(config, sleep=no_sleep, tokens=tokens)
        assert _query(conn)["done"] is True
        conn.close()
    assert tokens.logins == 1


def test_a_401_renews_the_shared_token_once_for_every_connector(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    tokens = TokenCache()
    first = SalesforceConnector(config, sleep=no_sleep, tokens=tokens)
    second = SalesforceConnector(config, sleep=no_sleep, tokens=tokens)
    token_response(rsps, "tok-1")
    _ok(rsps, "tok-1")
    _ok(rsps, "tok-1")
    _query(first)
    _query(second)
    # The session expires: the first connector to see it renews; the other takes the new token.
    expired = sf_error("INVALID_SESSION_ID", "Session expired or invalid")
    rsps.get(QUERY, status=401, body=expired, match=[bearer("tok-1")])
    token_response(rsps, "tok-2")
    _ok(rsps, "tok-2")
    _query(first)
    rsps.get(QUERY, status=401, body=expired, match=[bearer("tok-1")])
    _ok(rsps, "tok-2")
    _query(second)  # no second login: the cache already holds tok-2
    assert tokens.logins == 2
    assert (first.token_renewals, second.token_renewals) == (1, 1)
    logins = [c for c in rsps.calls if c.request.url == TOKEN_URL]
    assert len(logins) == 2


def test_other_credentials_do_not_reuse_a_cached_token(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    tokens = TokenCache()
    token_response(rsps, "tok-1")
    _ok(rsps, "tok-1")
    _query(SalesforceConnector(config, sleep=no_sleep, tokens=tokens))
    rotated = config.model_copy(update={"client_secret": SecretStr("rotated")})
    token_response(rsps, "tok-2")
    _ok(rsps, "tok-2")
    _query(SalesforceConnector(rotated, sleep=no_sleep, tokens=tokens))
    assert tokens.logins == 2
