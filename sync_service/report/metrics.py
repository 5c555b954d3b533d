"""Advocate figures for ``/metrics``: the pool by status, violations, the under-used.

So a Grafana user can chart the program beside the service's health::

    advocate_pool_contacts{status}                   contacts per current status
    advocate_asks_window{team}                       asks in the report window, per team
    advocate_violations{team,ask_type,status}        asks made while Fatigued/Suspended/Opted Out
    advocate_under_used_contacts                     Eligible and not asked in the window
    advocate_report_window_days                      the window those figures cover

The figures change only when an evaluation runs, while Prometheus scrapes every few seconds;
and the violations need a history lookup per ask in the window. So the collector keeps its
last answer for ``max_age_seconds`` (default a minute) instead of querying on every scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from sync_service.report.asks import (
    VIOLATING,
    asks_by_status_at_ask,
    count_under_used,
    window_start,
)
from sync_service.report.sql import is_contact
from sync_service.store.models import evaluations

log = logging.getLogger(__name__)

PREFIX = "advocate_"


class AdvocateCollector(Collector):
    """Reads the program's figures from the store, at most once per ``max_age_seconds``."""

    def __init__(
        self,
        engine: Engine,
        now: Callable[[], datetime],
        *,
        window_days: int = 90,
        max_age_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.now = now
        self.window_days = window_days
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        """Nothing up front: describing would run the queries at registration time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The figures; none when the store does not answer (the store collector says so)."""
        with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self.max_age_seconds:
                try:
                    cached = (time.monotonic(), self._families())
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("metrics: advocate figures unavailable (%s)", type(exc).__name__)
                    self._cached = None
                    return
                self._cached = cached
        yield from cached[1]

    def _families(self) -> list[Metric]:
        now = self.now()
        start, today = window_start(now, self.window_days), now.date()
        e = evaluations
        with self.engine.connect() as conn:
            pool_rows = conn.execute(
                sa.select(e.c.status, sa.func.count()).where(is_contact()).group_by(e.c.status)
            ).all()
            asks = asks_by_status_at_ask(conn, start, today)
            under_used = count_under_used(conn, start, today)
        pool = GaugeMetricFamily(
            f"{PREFIX}pool_contacts", "Contacts per current advocate status.", labels=["status"]
        )
        for status, n in sorted(pool_rows):
            pool.add_metric([status], int(n))
        per_team: dict[str, int] = defaultdict(int)
        violations = GaugeMetricFamily(
            f"{PREFIX}violations",
            "Asks in the window made while the contact was Fatigued, Suspended or Opted Out.",
            labels=["team", "ask_type", "status"],
        )
        for team, kind, status, n in asks:
            per_team[team] += n
            if status in VIOLATING:
                violations.add_metric([team, kind, str(status)], n)
        window = GaugeMetricFamily(
            f"{PREFIX}asks_window", "Asks in the report window, per team.", labels=["team"]
        )
        for team, n in sorted(per_team.items()):
            window.add_metric([team], n)
        unused = GaugeMetricFamily(
            f"{PREFIX}under_used_contacts",
            "Contacts Eligible now and not asked in the report window.",
        )
        unused.add_metric([], under_used)
        days = GaugeMetricFamily(
            f"{PREFIX}report_window_days", "Days of asks the advocate figures cover."
        )
        days.add_metric([], self.window_days)
        return [pool, window, violations, unused, days]
