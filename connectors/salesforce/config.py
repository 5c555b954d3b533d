"""The Salesforce connector's own settings: plain values, built by the service from its settings.

The connector never imports the service; the service hands it a :class:`SalesforceConfig`
(``SalesforceConfig.from_values(settings.salesforce.model_dump(), ca_bundle=...)``). Secrets are
plain strings here, excluded from ``repr`` so that they never reach a log line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AuthFlow = Literal["auto", "jwt", "client_credentials", "password", "token"]

#: Fields holding secrets: hidden from repr and never logged.
SECRET_FIELDS: frozenset[str] = frozenset(
    {"client_secret", "password", "security_token", "access_token"}
)


@dataclass(frozen=True)
class SalesforceConfig:
    """How to reach the org and how hard to use it.

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
        batch_size: records per :class:`~connectors.base.Batch` handed to the caller.
        bulk_page_size: rows per Bulk API 2.0 result page (``maxRecords``).
        bulk_poll_seconds: first wait between polls of a bulk job (grows to ``bulk_poll_max``).
    """

    login_url: str = "https://login.salesforce.com"
    auth_flow: AuthFlow = "auto"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    private_key_file: str | Path | None = None
    access_token: str | None = field(default=None, repr=False)
    instance_url: str | None = None
    api_version: str = "62.0"
    timeout_seconds: float = 120.0
    max_attempts: int = 6
    query_batch_size: int = 2000
    bulk_query_threshold: int = 10_000
    bulk_write_threshold: int = 2_000
    budget_share: float = 0.8
    run_budget_share: float | None = None
    ca_bundle: str | Path | None = None
    batch_size: int = 2000
    bulk_page_size: int = 50_000
    bulk_poll_seconds: float = 0.25
    bulk_poll_max: float = 10.0
    bulk_job_timeout_seconds: float = 3600.0
    user_agent: str = "advocate-sync/0.1 (simple-salesforce)"

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint of the login host."""
        return self.login_url.rstrip("/") + "/services/oauth2/token"

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **overrides: Any) -> SalesforceConfig:
        """Build from a mapping (e.g. the service's settings), ignoring keys it does not know.

        Values with ``get_secret_value()`` (pydantic ``SecretStr``) are unwrapped; paths are kept.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        merged = {**dict(values), **overrides}
        kwargs: dict[str, Any] = {}
        for key, value in merged.items():
            if key not in known or value is None:
                continue
            unwrap = getattr(value, "get_secret_value", None)
            kwargs[key] = unwrap() if callable(unwrap) else value
        return cls(**kwargs)
