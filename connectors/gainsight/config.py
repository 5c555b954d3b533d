"""The Gainsight connector's settings, declared once (see :mod:`connectors.config`).

:class:`GainsightOptions` is what an admin sets (``GAINSIGHT_BASE_URL`` /
``GAINSIGHT_ACCESS_KEY`` and the limits); the service's ``GainsightSettings`` extends it.
:class:`GainsightConfig` is what the connector runs with: the options, with the tenant and key
now required, plus run-time values. The connector never reads the environment.
Defaults follow Gainsight's published limits: at most 5,000 records a read, 50 a write, about
100 synchronous calls a minute and 50,000 a day in fixed windows.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from connectors.config import ConnectorConfig, ConnectorOptions

#: Gainsight's documented maximum for ``limit`` in a query.
MAX_PAGE_SIZE = 5000
#: Gainsight's documented maximum of records per insert/update call.
MAX_WRITE_BATCH = 50
#: Gainsight's documented maximum number of ``keys`` on an update.
MAX_UPDATE_KEYS = 3

_URL = r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$"


class GainsightOptions(ConnectorOptions):
    """How to reach and how hard to use one Gainsight tenant: what an admin sets.

    Attributes:
        base_url: the tenant's API host (``https://acme.gainsightcloud.com``); paths such as
            ``/v1/data/objects/query/Company`` are appended to it. None: not configured.
        access_key: the ``accesskey`` header value; never shown in ``repr`` or logs.
        timeout_seconds: connect and read timeout of every call.
        max_attempts: attempts per call, retries of 429 and 5xx included.
        page_size: records per query call (1..5000).
        calls_per_minute: the tenant's per-minute allowance; calls are paced under it.
        calls_per_day: the tenant's daily allowance.
        budget_share: the share of ``calls_per_day`` this service may use; reaching it raises
            :class:`~canonical.errors.BudgetExhaustedError`.
    """

    base_url: str | None = Field(None, pattern=_URL)
    access_key: SecretStr | None = None
    timeout_seconds: float = Field(60.0, gt=0, le=900)
    max_attempts: int = Field(6, ge=1, le=20)
    page_size: int = Field(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    calls_per_minute: int = Field(100, ge=1)
    calls_per_day: int = Field(50_000, ge=1)
    budget_share: float = Field(0.8, gt=0, le=1)


class GainsightConfig(GainsightOptions, ConnectorConfig):
    """What the Gainsight connector runs with: the options plus run-time values.

    Attributes:
        base_url: required here.
        access_key: required here, and not empty.
        ca_bundle: a PEM file for a private CA (``REQUESTS_CA_BUNDLE``); None uses the default.
        user_agent: sent on every call so the tenant's admins can tell our traffic apart.
        max_retry_wait: the longest single wait between attempts (a larger Retry-After is capped).
        write_keys: the fields an update matches records by (``PUT ...?keys=``).
        calls_today: calls earlier runs already made today (UTC), so the daily stop holds
            across runs (see :func:`sync_service.ops.api_usage.calls_today`).
        filter_lookback_seconds: how far before the cursor the server-side date filter starts.
            Gainsight's documentation does not say in which time zone it reads a filter value
            without an offset; the connector sends UTC. If a tenant read it as local time
            behind UTC, changes would be skipped: set this to cover the offset (e.g. 86400).
            The rows it re-reads are dropped client-side, so it costs calls, never duplicates.
    """

    OPTIONS: ClassVar[type[ConnectorOptions]] = GainsightOptions
    SECTION: ClassVar[str] = "gainsight"
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "ca_bundle",
            "user_agent",
            "max_retry_wait",
            "write_keys",
            "calls_today",
            "filter_lookback_seconds",
        }
    )

    base_url: str = Field(pattern=_URL)
    access_key: SecretStr = Field(repr=False)
    ca_bundle: str | None = None
    user_agent: str = "advocate-sync/0.1 (+gainsight-connector)"
    max_retry_wait: float = Field(120.0, ge=0)
    write_keys: tuple[str, ...] = Field(("Gsid",), min_length=1, max_length=MAX_UPDATE_KEYS)
    calls_today: int = Field(0, ge=0)
    filter_lookback_seconds: int = Field(0, ge=0, le=7 * 86_400)

    @field_validator("access_key")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            msg = "empty; set GAINSIGHT_ACCESS_KEY"
            raise ValueError(msg)
        return value

    @property
    def api_root(self) -> str:
        """``base_url`` without a trailing slash."""
        return self.base_url.rstrip("/")

    @property
    def daily_budget(self) -> int:
        """Calls this service may make per day: ``calls_per_day * budget_share``, at least 1."""
        return max(1, int(self.calls_per_day * self.budget_share))
