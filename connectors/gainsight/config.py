"""The Gainsight connector's own settings, independent of the service's settings module.

The service builds a :class:`GainsightConfig` from ``Settings.gainsight`` (and
``GAINSIGHT_BASE_URL`` / ``GAINSIGHT_ACCESS_KEY``); the connector never reads the environment.
Defaults follow Gainsight's published limits: at most 5,000 records a read, 50 a write, about
100 synchronous calls a minute and 50,000 a day in fixed windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from canonical.errors import ConfigError

#: Gainsight's documented maximum for ``limit`` in a query.
MAX_PAGE_SIZE = 5000
#: Gainsight's documented maximum of records per insert/update call.
MAX_WRITE_BATCH = 50
#: Gainsight's documented maximum number of ``keys`` on an update.
MAX_UPDATE_KEYS = 3

_URL = re.compile(r"^https?://[^\s/]+(:\d+)?(/[^\s]*)?$")


@dataclass(frozen=True)
class GainsightConfig:
    """How to reach and how hard to use one Gainsight tenant.

    Attributes:
        base_url: the tenant's API host (``https://acme.gainsightcloud.com``); paths such as
            ``/v1/data/objects/query/Company`` are appended to it.
        access_key: the ``accesskey`` header value; never shown in ``repr`` or logs.
        timeout_seconds: connect and read timeout of every call.
        max_attempts: attempts per call, retries of 429 and 5xx included.
        page_size: records per query call (1..5000).
        calls_per_minute: the tenant's per-minute allowance; calls are paced under it.
        calls_per_day: the tenant's daily allowance.
        budget_share: the share of ``calls_per_day`` this service may use; reaching it raises
            :class:`~canonical.errors.BudgetExhaustedError`.
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

    base_url: str
    access_key: str = field(repr=False)
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    page_size: int = MAX_PAGE_SIZE
    calls_per_minute: int = 100
    calls_per_day: int = 50_000
    budget_share: float = 0.8
    ca_bundle: str | None = None
    user_agent: str = "advocate-sync/0.1 (+gainsight-connector)"
    max_retry_wait: float = 120.0
    write_keys: tuple[str, ...] = ("Gsid",)
    calls_today: int = 0
    filter_lookback_seconds: int = 0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not _URL.match(self.base_url or ""):
            problems.append(
                "gainsight.base_url: give the tenant URL, e.g. https://acme.gainsightcloud.com"
            )
        if not self.access_key:
            problems.append("gainsight.access_key: empty; set GAINSIGHT_ACCESS_KEY")
        if not 0 < self.timeout_seconds <= 900:
            problems.append("gainsight.timeout_seconds: must be in (0, 900]")
        if self.max_attempts < 1:
            problems.append("gainsight.max_attempts: must be at least 1")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            problems.append(
                f"gainsight.page_size: must be 1..{MAX_PAGE_SIZE} (Gainsight's maximum)"
            )
        if self.calls_per_minute < 1 or self.calls_per_day < 1:
            problems.append("gainsight.calls_per_minute / calls_per_day: must be at least 1")
        if not 0 < self.budget_share <= 1:
            problems.append("gainsight.budget_share: must be in (0, 1]")
        if not 0 <= self.filter_lookback_seconds <= 7 * 86_400:
            problems.append("gainsight.filter_lookback_seconds: must be 0..604800")
        if self.calls_today < 0:
            problems.append("gainsight.calls_today: must not be negative")
        if not 1 <= len(self.write_keys) <= MAX_UPDATE_KEYS:
            problems.append(f"gainsight.write_keys: give 1..{MAX_UPDATE_KEYS} key fields")
        if problems:
            raise ConfigError(problems[0], problems=problems)

    @property
    def api_root(self) -> str:
        """``base_url`` without a trailing slash."""
        return self.base_url.rstrip("/")

    @property
    def daily_budget(self) -> int:
        """Calls this service may make per day: ``calls_per_day * budget_share``, at least 1."""
        return max(1, int(self.calls_per_day * self.budget_share))
