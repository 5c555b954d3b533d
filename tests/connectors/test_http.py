"""The connectors' shared session: a configured CA bundle beats the environment's."""

from __future__ import annotations

import pytest

from connectors.http import ServiceSession


def test_configured_ca_bundle_wins_over_requests_ca_bundle(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    session = ServiceSession()
    session.verify = "/configured/ca.pem"
    merged = session.merge_environment_settings("https://example.test", {}, None, None, None)
    assert merged["verify"] == "/configured/ca.pem"


def test_environment_bundle_applies_when_none_is_configured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    merged = ServiceSession().merge_environment_settings(
        "https://example.test", {}, None, None, None
    )
    assert merged["verify"] == "/env/bundle.pem"


def test_a_per_request_verify_still_wins(monkeypatch: pytest.MonkeyPatch):
    session = ServiceSession()
    session.verify = "/configured/ca.pem"
    merged = session.merge_environment_settings("https://example.test", {}, None, False, None)
    assert merged["verify"] is False
