"""The Salesforce connector's settings, declared once (see :mod:`connectors.config`).

:class:`SalesforceOptions` is what an admin sets; the service's ``SalesforceSettings`` extends
it. :class:`SalesforceConfig` is what the connector runs with: the options plus run-time values
the service supplies (``SalesforceConfig.from_options(settings.salesforce, ca_bundle=...)``).
Secrets are :class:`~pydantic.SecretStr`, so they never reach ``repr`` or a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from connectors.config import ConnectorConfig, ConnectorOptions

AuthFlow = Literal["auto", "jwt", "client_credentials", "password", "token"]

#: Fields holding secrets: hidden from repr and never logged.
SECRET_FIELDS: frozenset[str] = frozenset(
    {"client_secret", "password", "security_token", "access_token"}
)

#: A login or instance host: ``https://host[:port]``, nothing after it.
_HOST_URL = r"^https?://[^\s/]+(:\d+)?/?$"


class SalesforceOptions(ConnectorOptions):
    """How to reach the org and how hard to use it: what an admin sets.

    Attributes:
        login_url: the login host (``https://login.salesforce.com``, ``https://test.salesforce.com``
            or the My Domain URL); the OAuth token endpoint lives under it.
        auth_flow: ``auto`` picks the strongest flow the given credentials allow.
        timeout_seconds: the (connect, read) timeout of every HTTP request.
        max_attempts: attempts of one call before a retriable error surfaces.
        query_batch_size: REST page size asked with ``Sforce-Query-Options`` (200..2000).
        bulk_query_threshold: above this many rows (from ``COUNT()``) a stream reads with
            Bulk API 2.0 instead of REST.
        bulk_write_threshold: above this many changes a write uses a Bulk API 2.0 ingest job.
        budget_share: stop once the org's daily API usage passes this share of its allocation.
        run_budget_share: stop once this run's own calls pass this share of the allocation.
    """

    login_url: str = Field("https://login.salesforce.com", pattern=_HOST_URL)
    auth_flow: AuthFlow = "auto"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key_file: Path | None = None
    access_token: SecretStr | None = None
    instance_url: str | None = Field(None, pattern=_HOST_URL)
    api_version: str = Field("62.0", pattern=r"^\d{2,3}\.0$")
    timeout_seconds: float = Field(120.0, gt=0, le=900)
    max_attempts: int = Field(6, ge=1, le=20)
    query_batch_size: int = Field(2000, ge=200, le=2000)
    bulk_query_threshold: int = Field(10_000, ge=0)
    bulk_write_threshold: int = Field(2_000, ge=0)
    budget_share: float = Field(0.8, gt=0, le=1)
    run_budget_share: float | None = Field(None, gt=0, le=1)


class SalesforceConfig(SalesforceOptions, ConnectorConfig):
    """What the Salesforce connector runs with: the options plus run-time values.

    Attributes:
        ca_bundle: a PEM file for a private CA (``REQUESTS_CA_BUNDLE``); None: default trust.
        batch_size: records per :class:`~connectors.base.Batch` handed to the caller.
        bulk_page_size: rows per Bulk API 2.0 result page (``maxRecords``).
        bulk_poll_seconds: first wait between polls of a bulk job (grows to ``bulk_poll_max``).
        bulk_poll_max: the longest wait between polls.
        bulk_job_timeout_seconds: how long a bulk job may run before the run stops.
        user_agent: sent on every request.
        describe_cache_dir: where describes are kept across runs (the service's var dir);
            None: only for the life of the connector.
        describe_cache_key: what else makes a kept describe stale (the mappings' digest).
    """

    OPTIONS: ClassVar[type[ConnectorOptions]] = SalesforceOptions
    SECTION: ClassVar[str] = "salesforce"
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "ca_bundle",
            "batch_size",
            "bulk_page_size",
            "bulk_poll_seconds",
            "bulk_poll_max",
            "bulk_job_timeout_seconds",
            "user_agent",
            "describe_cache_dir",
            "describe_cache_key",
        }
    )

    ca_bundle: str | Path | None = None
    batch_size: int = Field(2000, ge=1)
    bulk_page_size: int = Field(50_000, ge=1)
    bulk_poll_seconds: float = Field(0.25, ge=0)
    bulk_poll_max: float = Field(10.0, ge=0)
    bulk_job_timeout_seconds: float = Field(3600.0, gt=0)
    user_agent: str = "advocate-sync/0.1 (simple-salesforce)"
    describe_cache_dir: str | Path | None = None
    describe_cache_key: str = ""

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint of the login host."""
        return self.login_url.rstrip("/") + "/services/oauth2/token"
