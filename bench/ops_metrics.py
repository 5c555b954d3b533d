"""Benchmark: a ``/metrics`` scrape over a long run history.

Run: ``python -m bench.ops_metrics [runs]`` (default 200,000 rows in ``runs``, on a temporary
SQLite store, or PostgreSQL with ``BENCH_DATABASE_URL``). Times one scrape of the store
collector (a fixed number of grouped queries, whatever the history's length) and a naive
baseline in the same process that reads the whole ``runs`` table into Python and computes the
same per-job figures. Prints runs covered per second, SQL statements, peak RSS and the ratio.
No API calls (store only).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync_service.ops.memory import rss_mib
from sync_service.ops.metrics import build_registry, render
from sync_service.store.engine import make_engine, upgrade
from sync_service.store.models import runs

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOBS = ("salesforce", "gainsight", "reconcile", "evaluate", "writeback")


def seed(engine: sa.Engine, n: int) -> None:
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for i in range(n):
            start = T0 + timedelta(minutes=i)
            batch.append(
                {
                    "job": JOBS[i % len(JOBS)],
                    "status": "failed" if i % 17 == 0 else "success",
                    "started_at": start,
                    "finished_at": start + timedelta(seconds=30),
                    "counts": {"records.Contact": i % 2000, "writeback.success": i % 50},
                    "api_calls": {"salesforce": {"calls": 9, "used": i, "limit": 10**9}},
                }
            )
            if len(batch) == 5000:
                conn.execute(runs.insert(), batch)
                batch = []
        if batch:
            conn.execute(runs.insert(), batch)


def naive(engine: sa.Engine) -> dict[str, Any]:
    """What a first draft does: load every run, keep the newest per job in Python."""
    newest: dict[str, Any] = {}
    totals: dict[tuple[str, str], int] = {}
    with engine.connect() as conn:
        for row in conn.execute(sa.select(runs)).mappings().all():
            totals[(row["job"], row["status"])] = totals.get((row["job"], row["status"]), 0) + 1
            if row["job"] not in newest or row["id"] > newest[row["job"]]["id"]:
                newest[row["job"]] = dict(row)
    return {"newest": newest, "totals": totals}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    engine = make_engine(url or f"sqlite:///{Path(tmp.name) / 'bench.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(runs.delete())
    seed(engine, n)
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    registry = build_registry(engine)
    render(registry)  # warm the connection pool and statement cache
    statements[0] = 0
    started = time.perf_counter()
    body = render(registry)
    scrape = time.perf_counter() - started
    scrape_statements = statements[0]
    statements[0] = 0
    started = time.perf_counter()
    naive(engine)
    baseline = time.perf_counter() - started
    rss = rss_mib()
    print(f"backend: {engine.dialect.name}; runs in the store: {n:,}; scrape size {len(body):,} B")
    print(
        f"store collector: {scrape * 1000:,.0f} ms, {n / scrape:,.0f} runs/s, "
        f"{scrape_statements} statements"
    )
    print(
        f"naive (load every run): {baseline * 1000:,.0f} ms, {n / baseline:,.0f} runs/s, "
        f"{statements[0]} statements"
    )
    print(f"speed-up: {baseline / scrape:.1f}x")
    print("API calls: 0")
    print(f"peak RSS: {rss:.0f} MiB (includes the naive baseline's full load)")
    engine.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
