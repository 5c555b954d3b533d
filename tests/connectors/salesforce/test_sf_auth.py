"""Every auth flow against the token endpoint of login_url."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses

from canonical.errors import AuthError, ConfigError
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.auth import audience, resolve_flow
from connectors.salesforce.config import SalesforceOptions
from tests.connectors.salesforce.sf_fakes import (
    API,
    INSTANCE,
    LOGIN,
    TOKEN_URL,
    bearer,
    no_sleep,
    token_response,
)


def _form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def _limits_call(rsps: responses.RequestsMock, token: str) -> None:
    rsps.get(f"{API}/limits/", json={"DailyApiRequests": {"Max": 100}}, match=[bearer(token)])


def test_jwt_bearer_signs_rs256_assertion_for_login_host_with_short_expiry(
    rsps: responses.RequestsMock, private_key_file: tuple[Path, Any]
) -> None:
    path, public_key = private_key_file
    cfg = SalesforceConfig(
        login_url=LOGIN + "/",
        auth_flow="jwt",
        client_id="cid",
        username="int@acme.test",
        private_key_file=path,
    )
    token_response(rsps, "jwt-token")
    _limits_call(rsps, "jwt-token")
    conn = SalesforceConnector(cfg, sleep=no_sleep)
    conn.call(lambda sf: sf.limits(), what="limits")
    form = _form(rsps.calls[0])
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(form["assertion"], public_key, algorithms=["RS256"], audience=LOGIN)
    assert claims["iss"] == "cid"
    assert claims["sub"] == "int@acme.test"
    assert claims["aud"] == LOGIN
    assert 0 < claims["exp"] - time.time() <= 300


def test_client_credentials_posts_client_id_and_secret_to_the_token_endpoint(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    token_response(rsps, "cc-token")
    _limits_call(rsps, "cc-token")
    SalesforceConnector(config, sleep=no_sleep).call(lambda sf: sf.limits(), what="limits")
    assert rsps.calls[0].request.url == TOKEN_URL
    assert _form(rsps.calls[0]) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "s3cret-value",
    }


def test_password_flow_appends_security_token_and_warns_it_is_being_retired(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = SalesforceConfig(
        login_url=LOGIN,
        auth_flow="password",
        client_id="cid",
        client_secret="cs",
        username="int@acme.test",
        password="pw",
        security_token="TKN",
    )
    token_response(rsps, "pw-token")
    _limits_call(rsps, "pw-token")
    with caplog.at_level(logging.WARNING):
        SalesforceConnector(cfg, sleep=no_sleep).call(lambda sf: sf.limits(), what="limits")
    form = _form(rsps.calls[0])
    assert form["grant_type"] == "password"
    assert form["password"] == "pwTKN"
    assert any("being retired" in r.getMessage() for r in caplog.records)
    assert not any(
        "pwTKN" in r.getMessage() or "pw-token" in r.getMessage() for r in caplog.records
    )


def test_given_token_is_used_without_a_login_call(rsps: responses.RequestsMock) -> None:
    cfg = SalesforceConfig(access_token="given", instance_url=INSTANCE)
    _limits_call(rsps, "given")
    SalesforceConnector(cfg, sleep=no_sleep).call(lambda sf: sf.limits(), what="limits")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    ("values", "flow"),
    [
        (
            {"client_id": "c", "username": "u", "private_key_file": "k.pem", "client_secret": "s"},
            "jwt",
        ),
        (
            {"client_id": "c", "client_secret": "s", "username": "u", "password": "p"},
            "client_credentials",
        ),
        (
            {
                "client_id": "c",
                "client_secret": "s",
                "username": "u",
                "password": "p",
                "auth_flow": "password",
            },
            "password",
        ),
        ({"access_token": "t", "instance_url": INSTANCE}, "token"),
    ],
)
def test_auto_picks_the_strongest_flow_the_credentials_allow(
    values: dict[str, Any], flow: str
) -> None:
    assert resolve_flow(SalesforceConfig(**values)) == flow


def test_a_flow_missing_its_credentials_is_a_config_error_naming_them() -> None:
    with pytest.raises(ConfigError, match="SALESFORCE_PRIVATE_KEY_FILE"):
        resolve_flow(SalesforceConfig(auth_flow="jwt", client_id="c", username="u"))
    with pytest.raises(ConfigError, match="no usable Salesforce credentials"):
        resolve_flow(SalesforceConfig())


def test_rejected_login_is_auth_error_with_action_and_without_the_secret(
    rsps: responses.RequestsMock, config: SalesforceConfig
) -> None:
    rsps.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_client_id", "error_description": "client identifier invalid"},
    )
    with pytest.raises(AuthError) as info:
        SalesforceConnector(config, sleep=no_sleep).call(lambda sf: sf.limits(), what="limits")
    assert "SALESFORCE_CLIENT_ID" in str(info.value)
    assert "s3cret-value" not in str(info.value)
    assert len(rsps.calls) == 1  # not retried


def test_token_endpoint_outage_is_retried(
    rsps: responses.RequestsMock, config: SalesforceConfig, waits: list[float]
) -> None:
    rsps.post(TOKEN_URL, status=503, body="unavailable")
    token_response(rsps, "after-outage")
    _limits_call(rsps, "after-outage")
    SalesforceConnector(config, sleep=waits.append).call(lambda sf: sf.limits(), what="limits")
    assert len(waits) == 1


def test_config_repr_never_shows_secrets() -> None:
    cfg = SalesforceConfig(
        client_secret="S1", password="P2", security_token="T3", access_token="A4"
    )
    text = repr(cfg)
    assert not any(secret in text for secret in ("S1", "P2", "T3", "A4"))


def test_config_from_options_takes_every_option_and_refuses_unknown_names() -> None:
    options = SalesforceOptions(client_id="c", client_secret="hidden", timeout_seconds=9)
    cfg = SalesforceConfig.from_options(options, ca_bundle="ca.pem")
    assert cfg.client_secret is not None
    assert cfg.client_secret.get_secret_value() == "hidden"
    assert (cfg.client_id, cfg.timeout_seconds, cfg.ca_bundle) == ("c", 9, "ca.pem")
    with pytest.raises(ConfigError, match=r"salesforce\.overlap_seconds"):
        SalesforceConfig.from_options(options, overlap_seconds=5)


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://acme.my.salesforce.com/", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://login.example.test/", "https://login.example.test"),
    ],
)
def test_jwt_audience_is_login_or_test_for_salesforce_hosts(login_url: str, expected: str) -> None:
    # a My Domain URL as the audience earns "invalid_grant: audience is invalid"
    assert audience(login_url) == expected
