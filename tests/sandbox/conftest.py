"""One small sandbox per test module (seeding and TLS setup once), faults reset per test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce

from sandbox import Sandbox

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    with Sandbox(accounts=120, seed=11, now=NOW) as sb:
        yield sb


@pytest.fixture
def sb(module_sandbox: Sandbox) -> Iterator[Sandbox]:
    module_sandbox.faults.reset()
    yield module_sandbox
    module_sandbox.faults.reset()
    module_sandbox.api_used = 0


@pytest.fixture
def session(sb: Sandbox) -> Iterator[requests.Session]:
    with sb.session() as s:
        yield s


def client_credentials_token(sb: Sandbox, session: requests.Session) -> dict[str, str]:
    resp = session.post(
        f"{sb.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sb.credentials["client_id"],
            "client_secret": sb.credentials["client_secret"],
        },
        timeout=10,
    )
    resp.raise_for_status()
    body: dict[str, str] = resp.json()
    return body


@pytest.fixture
def sf(sb: Sandbox, session: requests.Session) -> Salesforce:
    token = client_credentials_token(sb, session)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version=sb.api_version,
    )
