"""Benchmark: the program report over a million contacts and two years of history.

Run: ``python -m bench.report [contacts] [--keep FILE]`` (default 1,000,000 contacts, on a
temporary SQLite store, or PostgreSQL with ``BENCH_DATABASE_URL``). Seeds the store in SQL
(five contacts per account; per contact one to eight status changes spread over two years,
each history a consistent chain ending in the contact's current verdict; two asks per contact
over two years, one in ten linked to a deal; one deal per account), then times each section's
queries, the charts and the HTML page, one by one, and then the whole report as the command
builds it (sections read side by side on one snapshot). Prints the seconds per part, the page's
size and the peak RSS, and the RSS growth while building (memory must not grow with the store:
every figure is grouped in the database). No API calls.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sync_service.ops.memory import rss_mib
from sync_service.report import ReportOptions, build_report
from sync_service.report.asks import demand_section, most_asked_section, utilisation_section
from sync_service.report.build import DEFAULT_WORKERS
from sync_service.report.charts import draw
from sync_service.report.coverage import coverage_section
from sync_service.report.history import pool_section, retention_section
from sync_service.report.influence import influence_section
from sync_service.report.page import render_html
from sync_service.report.tables import Report
from sync_service.settings import CoverageTarget
from sync_service.store.engine import make_engine, upgrade

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=730)
STATUSES = ("Eligible", "Fatigued", "Suspended", "Not Eligible", "Opted Out")
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
INDUSTRIES = ("Healthcare", "Retail", "Software", "Energy", "Finance", "Education", "Media")
TEAMS = ("Sales", "Customer Success", "Marketing", "Events", "PR", "Product", "Analyst Relations")
TYPES = ("Reference Call", "Case Study", "Webinar", "Peer Review", "Speaking", "Press")
OUTCOMES = ("Requested", "Accepted", "Declined", "Completed", "Completed")


def _pick(expr: str, values: tuple[str, ...]) -> str:
    """SQL choosing ``values[expr % len]`` (both dialects)."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


def _seq(dialect: str, n: int, name: str = "seq") -> str:
    if dialect == "postgresql":
        return f"(SELECT generate_series(0::bigint, {n - 1}) AS n) AS {name}"
    return (
        f"(WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < {n - 1}) "
        f"SELECT n FROM s) AS {name}"
    )


def _ts(dialect: str, seconds_expr: str) -> str:
    """A UTC timestamp ``seconds_expr`` seconds after START, as each backend stores it."""
    base = START.strftime("%Y-%m-%d %H:%M:%S")
    if dialect == "postgresql":
        return f"(TIMESTAMPTZ '{base}+00' + ({seconds_expr}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', '{base}', '+' || ({seconds_expr}) || ' seconds')"


def _day(dialect: str, days_ago_expr: str) -> str:
    """Today minus ``days_ago_expr`` days (a negative number: a day ahead)."""
    today = NOW.date().isoformat()
    if dialect == "postgresql":
        return f"(DATE '{today}' - ({days_ago_expr})::int)"
    return f"date('{today}', (-({days_ago_expr})) || ' days')"


def seed(engine: sa.Engine, contacts: int) -> None:
    d = engine.dialect.name
    accounts = max(1, contacts // 5)
    false, synced = ("false", "now()") if d == "postgresql" else ("0", "'2026-12-01 00:00:00'")
    span = 730 * 86_400
    steps = "1 + (c.n * 7) % 8"  # status changes per contact, 1..8
    statements = [
        f"""INSERT INTO accounts (source, id, name, region, segment, industry, deleted, synced_at)
        SELECT 'salesforce', 'A' || n, 'Account ' || n, {_pick("n", REGIONS)},
               {_pick("n / 4", SEGMENTS)}, {_pick("n / 12", INDUSTRIES)}, {false}, {synced}
        FROM {_seq(d, accounts)}""",
        f"""INSERT INTO contacts (source, id, account_id, first_name, last_name, deleted, synced_at)
        SELECT 'salesforce', 'C' || n, 'A' || (n / 5), 'First' || n, 'Last' || n, {false},
               {synced}
        FROM {_seq(d, contacts)}""",
        # history: change i of contact n at START + (i + frac) * span / steps; status cycles
        f"""INSERT INTO evaluation_history (entity_type, entity_id, old_status, new_status,
               reason, changed_at)
        SELECT 'contact', 'C' || c.n,
               CASE WHEN s.n = 0 THEN NULL ELSE {_pick("c.n + s.n + 4", STATUSES)} END,
               {_pick("c.n + s.n", STATUSES)}, 'bench',
               {_ts(d, f"(s.n * {span} + (c.n % 997) * {span // 1000}) / ({steps})")}
        FROM {_seq(d, contacts, "c")} JOIN {_seq(d, 8, "s")} ON s.n < {steps}""",
        f"""INSERT INTO evaluations (entity_type, entity_id, status, eligible, score, reason,
               next_available, evaluated_at)
        SELECT 'contact', 'C' || c.n, {_pick(f"c.n + {steps} - 1", STATUSES)},
               {_pick(f"c.n + {steps} - 1", STATUSES)} = 'Eligible', (c.n % 1000) / 10.0,
               'bench', NULL, {synced}
        FROM {_seq(d, contacts, "c")}""",
        # one deal per account, closing from two years ago to a year ahead; the closed ones
        # won three times in five
        f"""INSERT INTO opportunities (source, id, account_id, stage, is_closed, is_won,
               close_date, amount, deleted, synced_at)
        SELECT 'salesforce', 'O' || n, 'A' || n, 'Stage', (n % 1095) >= 365,
               (n % 1095) >= 365 AND n % 5 < 3, {_day(d, "(n % 1095) - 365")},
               1000 * (5 + n % 400), {false}, {synced}
        FROM {_seq(d, accounts)}""",
        # two asks per contact over two years, spread over contacts and days; one in ten
        # serves another account's deal
        f"""INSERT INTO advocacy_asks (source, id, contact_id, account_id, ask_type, status,
               requested_date, team, opportunity_id, deleted, synced_at)
        SELECT 'salesforce', 'K' || n, 'C' || ((n * 7919) % {contacts}),
               'A' || (((n * 7919) % {contacts}) / 5), {_pick("n / 7", TYPES)},
               {_pick("n / 3", OUTCOMES)}, {_day(d, "n % 730")}, {_pick("n", TEAMS)},
               CASE WHEN n % 10 = 0 THEN 'O' || ((n * 31) % {accounts}) END, {false},
               {synced}
        FROM {_seq(d, 2 * contacts)}""",
    ]
    with engine.begin() as conn:
        for stmt in statements:
            conn.execute(sa.text(stmt))
        if d == "sqlite":
            conn.execute(sa.text("ANALYZE"))
    if d == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contacts", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="reuse (or create) this SQLite store")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "bench.db"
    reuse = url is None and args.keep is not None and path.exists()
    engine = make_engine(url or f"sqlite:///{path}")
    upgrade(engine)
    if not reuse:
        with engine.begin() as conn:
            for table in (
                "advocacy_asks",
                "opportunities",
                "evaluations",
                "evaluation_history",
                "contacts",
                "accounts",
            ):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        started = time.perf_counter()
        seed(engine, args.contacts)
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:,.0f} s")
    with engine.connect() as conn:
        counts = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("contacts", "evaluation_history", "advocacy_asks", "opportunities")
        }
    print(f"backend: {engine.dialect.name}; " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    options = ReportOptions(targets={"segment": CoverageTarget(at_least=100_000)})
    rss_before = rss_mib()
    times: dict[str, tuple[float, float]] = {}
    sections = []
    parts: list[tuple[str, Callable[[sa.Connection], Any]]] = [
        ("pool", lambda c: pool_section(c, NOW, options.history_weeks)),
        ("utilisation", lambda c: utilisation_section(c, NOW, 90, top=20, crm_url=None)),
        ("coverage", lambda c: coverage_section(c, options.fields, options.targets)),
        ("demand", lambda c: demand_section(c, NOW, 90, options.history_weeks)),
        ("retention", lambda c: retention_section(c, NOW, 90)),
        ("most-asked", lambda c: most_asked_section(c, NOW, 90, top=20, crm_url=None)),
        ("influence", lambda c: influence_section(c, NOW, options.history_weeks)),
    ]
    total, total_cpu = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        for name, build in parts:
            started, cpu = time.perf_counter(), time.process_time()
            sections.append(build(conn))
            times[name] = (time.perf_counter() - started, time.process_time() - cpu)
    report = Report(NOW, 90, options.history_weeks, sections)
    started, cpu = time.perf_counter(), time.process_time()
    charts = draw(report)
    times["charts"] = (time.perf_counter() - started, time.process_time() - cpu)
    started, cpu = time.perf_counter(), time.process_time()
    html = render_html(report, charts=charts)
    times["html"] = (time.perf_counter() - started, time.process_time() - cpu)
    elapsed = time.perf_counter() - total
    print(f"  {'part':<12} {'wall':>7} {'cpu':>7}   (cpu: this process; SQLite runs in it too)")
    for name, (wall, cpu_s) in times.items():
        print(f"  {name:<12} {wall:6.2f}s {cpu_s:6.2f}s")
    cpu_all = time.process_time() - total_cpu
    print(
        f"report, sections one by one: {elapsed:.1f} s in all ({cpu_all:.1f} s cpu); "
        f"HTML {len(html.encode()):,} B"
    )
    # What `sync-service report` and /report do: the sections read side by side on one snapshot
    started, cpu = time.perf_counter(), time.process_time()
    whole = build_report(engine, options, NOW)
    page = render_html(whole, charts=draw(whole))
    parallel = time.perf_counter() - started
    print(
        f"report, sections in parallel ({DEFAULT_WORKERS} readers): {parallel:.1f} s in all "
        f"({time.process_time() - cpu:.1f} s cpu); HTML {len(page.encode()):,} B; "
        f"{elapsed / parallel:.2f}x the one-by-one wall time; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"peak RSS: {rss_mib():.0f} MiB (before the report: {rss_before:.0f} MiB)")
    print("API calls: 0")
    engine.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
