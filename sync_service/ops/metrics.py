"""Prometheus metrics, computed from the store at scrape time.

Every figure that matters across replicas and restarts (run results, records per stream, API
budget, writeback outcomes, quarantine size, last success) is read from the store's ``runs``,
``quarantine`` and ``writeback_outbox`` tables by :class:`StoreCollector` when ``/metrics`` is
scraped. So any replica reports the same numbers, a restart loses nothing, and the series is
right even for runs another replica made. A scrape makes a handful of small grouped queries.

Only what is truly per process (runs skipped because another replica held the lock) lives in
ordinary in-memory counters.

Metric names (all prefixed ``advocate_``)::

    runs_total{job,status}                       runs recorded, by final status
    runs_in_progress{job}                        runs open right now (any replica)
    last_run_duration_seconds{job}               wall time of the newest finished run
    last_run_finished_timestamp_seconds{job}
    last_run_status{job,status}                  1 for the newest finished run's status
    last_success_timestamp_seconds{job}          when the job last ended ``success``
    rejected_config_edits_total{job}             runs that went on with the last valid mappings
                                                 or rules because an edit was rejected
    last_run_rejected_edit_problems{job}         problems of the rejected edit in the newest run
                                                 (0: it ran on the configuration on disk)
    last_run_records{job,stream}                 records pulled per stream in that run
    last_run_quarantined{job,stream}
    last_run_writeback{job,result}               success / failed in that run
    last_run_api_calls{job,system}               API calls that run made
    last_run_peak_memory_mib{job}                the process's peak RSS when that run ended
    api_budget_used{system} / api_budget_limit{system} / api_budget_remaining{system}
    quarantine_records{connector,stream}         unresolved quarantined records
    writeback_outbox{state}                      outbox rows by state (pending, failed, done)
    store_up                                     1 when the store answered this scrape
    skipped_runs_total{job}                      this process: runs skipped, lock busy

plus, as served by ``serve``, the advocate figures of :mod:`sync_service.report.metrics`
(pool by status, violations, under-used), and the standard ``process_*`` metrics (resident
memory, CPU, open files) of this process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from sync_service.ops.runs import PEAK_MEMORY, REJECTED_EDIT
from sync_service.store.models import quarantine, runs, writeback_outbox

log = logging.getLogger(__name__)

PREFIX = "advocate_"
FINAL_STATUSES = ("success", "partial", "failed", "held")
#: How many recent runs are scanned for the newest API budget figure of each system.
_BUDGET_SCAN = 50

SKIPPED_RUNS = Counter(
    f"{PREFIX}skipped_runs",
    "Runs this process skipped because another runner held the job's lock.",
    ["job"],
    registry=None,
)


def _last_run_gauge(name: str, text: str, *labels: str) -> GaugeMetricFamily:
    """A family about each job's newest finished run: ``last_run_<name>``, labelled by job."""
    return GaugeMetricFamily(f"{PREFIX}last_run_{name}", text, labels=["job", *labels])


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


class StoreCollector(Collector):
    """Reads the run history and queues from the store each time metrics are collected."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        """Nothing up front: describing would run the queries at registration time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family; a store that does not answer gives ``store_up 0``."""
        up = GaugeMetricFamily(f"{PREFIX}store_up", "1 when the store answered this scrape.")
        try:
            families = list(self._families())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics: the store did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        with self.engine.connect() as conn:
            yield from self._run_counts(conn)
            yield from self._last_runs(conn)
            yield from self._budget(conn)
            yield from self._queues(conn)

    def _run_counts(self, conn: sa.Connection) -> Iterator[Metric]:
        total = CounterMetricFamily(
            f"{PREFIX}runs",
            "Runs recorded in the store, by final status.",
            labels=["job", "status"],
        )
        running = GaugeMetricFamily(
            f"{PREFIX}runs_in_progress", "Runs open right now, on any replica.", labels=["job"]
        )
        rows = conn.execute(
            sa.select(runs.c.job, runs.c.status, sa.func.count()).group_by(
                runs.c.job, runs.c.status
            )
        )
        for job, status, n in rows:
            if status == "running":
                running.add_metric([job], n)
            else:
                total.add_metric([job, status], n)
        last_ok = GaugeMetricFamily(
            f"{PREFIX}last_success_timestamp_seconds",
            "When each job last finished with status success (Unix time).",
            labels=["job"],
        )
        ok_rows = conn.execute(
            sa.select(runs.c.job, sa.func.max(runs.c.finished_at))
            .where(runs.c.status == "success")
            .group_by(runs.c.job)
        )
        for job, finished in ok_rows:
            stamp = _ts(finished)  # max() keeps the column's type: an aware UTC datetime
            if stamp is not None:
                last_ok.add_metric([job], stamp)
        rejected = CounterMetricFamily(
            f"{PREFIX}rejected_config_edits",
            "Runs that went on with the last valid mappings or rules: an edit was rejected.",
            labels=["job"],
        )
        rejected_rows = conn.execute(
            sa.select(runs.c.job, sa.func.count()).where(REJECTED_EDIT).group_by(runs.c.job)
        )
        for job, n in rejected_rows:
            rejected.add_metric([job], n)
        yield total
        yield running
        yield last_ok
        yield rejected

    def _last_runs(self, conn: sa.Connection) -> Iterator[Metric]:
        newest = (
            sa.select(sa.func.max(runs.c.id))
            .where(runs.c.finished_at.is_not(None))
            .group_by(runs.c.job)
            .scalar_subquery()
        )
        rows = conn.execute(sa.select(runs).where(runs.c.id.in_(newest))).mappings()
        duration = _last_run_gauge(
            "duration_seconds", "Wall time of each job's newest finished run."
        )
        finished = _last_run_gauge(
            "finished_timestamp_seconds", "When each job's newest run finished (Unix time)."
        )
        status = _last_run_gauge(
            "status",
            "1 for the final status of each job's newest finished run, 0 for the others.",
            "status",
        )
        records = _last_run_gauge(
            "records", "Records pulled per stream by each job's newest finished run.", "stream"
        )
        quarantined = _last_run_gauge(
            "quarantined",
            "Records quarantined per stream by each job's newest finished run.",
            "stream",
        )
        writeback = _last_run_gauge(
            "writeback",
            "Writeback records confirmed (success) or refused (failed) in the newest run.",
            "result",
        )
        rejected = _last_run_gauge(
            "rejected_edit_problems",
            "Problems of the rejected config edit in each job's newest run (0: none).",
        )
        calls = _last_run_gauge(
            "api_calls", "API calls made per system by each job's newest finished run.", "system"
        )
        memory = _last_run_gauge(
            "peak_memory_mib",
            "The process's peak resident memory (MiB) when each job's newest run ended.",
        )
        for row in rows:
            job = row["job"]
            if row["finished_at"] is not None:
                duration.add_metric([job], (row["finished_at"] - row["started_at"]).total_seconds())
                finished.add_metric([job], row["finished_at"].timestamp())
            for s in FINAL_STATUSES:
                status.add_metric([job, s], 1.0 if row["status"] == s else 0.0)
            rejected.add_metric([job], float(len(row["config_errors"] or [])))
            for key, value in (row["counts"] or {}).items():
                n = _number(value)
                if n is None:
                    continue
                kind, _, rest = str(key).partition(".")
                if kind == "records" and rest:
                    records.add_metric([job, rest], n)
                elif kind == "quarantined" and rest:
                    quarantined.add_metric([job, rest], n)
                elif kind == "writeback" and rest in ("success", "failed"):
                    writeback.add_metric([job, rest], n)
                elif key == PEAK_MEMORY:
                    memory.add_metric([job], n)
            for system, figures in (row["api_calls"] or {}).items():
                if isinstance(figures, dict) and _number(figures.get("calls")) is not None:
                    calls.add_metric([job, str(system)], float(figures["calls"]))
        yield from (
            duration,
            finished,
            status,
            records,
            quarantined,
            writeback,
            calls,
            rejected,
            memory,
        )

    def _budget(self, conn: sa.Connection) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            f"{PREFIX}api_budget_used",
            "API budget used per system, as the newest run that called it reported.",
            labels=["system"],
        )
        limit = GaugeMetricFamily(
            f"{PREFIX}api_budget_limit", "API budget limit per system.", labels=["system"]
        )
        remaining = GaugeMetricFamily(
            f"{PREFIX}api_budget_remaining",
            "API budget left per system (limit - used, not below 0).",
            labels=["system"],
        )
        seen: set[str] = set()
        recent = conn.execute(
            sa.select(runs.c.api_calls)
            .where(runs.c.finished_at.is_not(None))
            .order_by(runs.c.id.desc())
            .limit(_BUDGET_SCAN)
        )
        for (api_calls,) in recent:
            for system, figures in (api_calls or {}).items():
                if system in seen or not isinstance(figures, dict):
                    continue
                u, lim = _number(figures.get("used")), _number(figures.get("limit"))
                if u is None and lim is None:
                    continue
                seen.add(system)
                if u is not None:
                    used.add_metric([system], u)
                if lim is not None:
                    limit.add_metric([system], lim)
                if u is not None and lim is not None:
                    remaining.add_metric([system], max(0.0, lim - u))
        yield from (used, limit, remaining)

    def _queues(self, conn: sa.Connection) -> Iterator[Metric]:
        quarantine_size = GaugeMetricFamily(
            f"{PREFIX}quarantine_records",
            "Unresolved records in quarantine, per connector and stream.",
            labels=["connector", "stream"],
        )
        rows = conn.execute(
            sa.select(quarantine.c.connector, quarantine.c.stream, sa.func.count())
            .where(quarantine.c.resolved.is_(False))
            .group_by(quarantine.c.connector, quarantine.c.stream)
        )
        for connector, stream, n in rows:
            quarantine_size.add_metric([connector, stream], n)
        outbox = GaugeMetricFamily(
            f"{PREFIX}writeback_outbox", "Writeback outbox rows by state.", labels=["state"]
        )
        for state, n in conn.execute(
            sa.select(writeback_outbox.c.state, sa.func.count()).group_by(writeback_outbox.c.state)
        ):
            outbox.add_metric([state], n)
        yield quarantine_size
        yield outbox


def build_registry(engine: Engine, *extra: Collector) -> CollectorRegistry:
    """A registry with the store collector, this process's own counters and ``extra``.

    ``extra``: collectors of the stages above ops (the report's advocate figures), passed in
    by whoever serves ``/metrics`` so that ops does not depend on them.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine))
    for collector in extra:
        registry.register(collector)
    registry.register(SKIPPED_RUNS)
    # process_resident_memory_bytes and friends: memory must stay bounded by the batch size.
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
