"""Fixtures for the Salesforce connector tests: a config, recorded HTTP, instant retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from tests.connectors.salesforce.sf_fakes import LOGIN


@pytest.fixture
def waits() -> list[float]:
    """Retry and poll waits of the ``connector`` fixture, recorded instead of slept."""
    return []


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def config() -> SalesforceConfig:
    return SalesforceConfig(
        login_url=LOGIN,
        client_id="cid",
        client_secret="s3cret-value",
        max_attempts=4,
        bulk_query_threshold=5,
        bulk_write_threshold=300,
        batch_size=2,
        query_batch_size=2000,
        bulk_page_size=3,
    )


@pytest.fixture
def connector(config: SalesforceConfig, waits: list[float]) -> Iterator[SalesforceConnector]:
    conn = SalesforceConnector(config, sleep=waits.append)
    yield conn
    conn.close()


@pytest.fixture
def private_key_file(tmp_path: Path) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "server.key"
    path.write_bytes(pem)
    return path, key.public_key()
