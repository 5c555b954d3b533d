"""Benchmark: reference matching, 50,000 open deals against a million contacts.

Run: ``python -m bench.matching [contacts] [--deals N] [--keep FILE]`` (defaults: 1,000,000
contacts, 50,000 open deals; a temporary SQLite store, or PostgreSQL with
``BENCH_DATABASE_URL``). Seeds in SQL: five contacts per account; accounts over 12 industries,
4 regions, 3 segments and a health score (the size band); 40% of contacts Eligible and
available for reference calls, scores spread 0-100; the deals on random accounts, plus 10%
closed. Then:

1. a first match run: every deal ranked, its suggestions stored and its text queued for
   ``Opportunity.Suggested_References__c`` (all new); the queue is then confirmed by an
   in-memory CRM (the writeback's own apply, timed apart);
2. a second run on the same data: it must queue nothing (no change, no write).

Prints wall and CPU seconds of each run (the machine may be shared: CPU time is this process's
work; SQLite runs in it too), the figures of each run, and the peak RSS before and after (memory
holds the candidates and one batch of deals, not the deals x contacts product).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.report import _pick, _seq, rss_mib
from connectors.memory import MemoryConnector
from sync_service.mapping import load_mappings
from sync_service.match.config import parse_matching
from sync_service.match.stage import match_all
from sync_service.store.engine import make_engine, upgrade
from sync_service.writeback.apply import apply_pending
from sync_service.writeback.report import WritebackReport

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
INDUSTRIES = (
    "Healthcare",
    "Retail",
    "Software",
    "Energy",
    "Finance",
    "Education",
    "Media",
    "Manufacturing",
    "Logistics",
    "Telecom",
    "Public Sector",
    "Hospitality",
)
STATUSES = ("Eligible", "Fatigued", "Eligible", "Not Eligible", "Suspended")
RULES = """
top_n: 3
ask_type: Reference Call
terms: {industry: 3, region: 2, segment: 1, size_band: 1}
size: {field: health_score, bounds: [40, 70]}
opportunities: {min_amount: 10000}
load_spreading: 0.5
"""


def seed(engine: sa.Engine, contacts: int, deals: int) -> None:
    d = engine.dialect.name
    accounts = max(1, contacts // 5)
    false, true = ("false", "true") if d == "postgresql" else ("0", "1")
    synced = "now()" if d == "postgresql" else "'2026-12-01 00:00:00'"
    closed = deals // 10
    statements = [
        f"""INSERT INTO accounts (source, id, name, region, segment, industry, health_score,
               deleted, synced_at)
        SELECT 'salesforce', 'A' || n, 'Account ' || n, {_pick("(n * 7) / 3", REGIONS)},
               {_pick("(n * 13) / 5", SEGMENTS)}, {_pick("(n * 31) / 7", INDUSTRIES)},
               (n * 37) % 100, {false}, {synced}
        FROM {_seq(d, accounts)}""",
        f"""INSERT INTO contacts (source, id, account_id, first_name, last_name, deleted, synced_at)
        SELECT 'salesforce', 'C' || n, 'A' || (n / 5), 'First' || n, 'Last' || n, {false},
               {synced}
        FROM {_seq(d, contacts)}""",
        f"""INSERT INTO evaluations (entity_type, entity_id, status, eligible, score, reason,
               available_for, evaluated_at)
        SELECT 'contact', 'C' || n, {_pick("n / 3", STATUSES)},
               {_pick("n / 3", STATUSES)} = 'Eligible', ((n * 7919) % 1000) / 10.0, 'bench',
               CASE WHEN n % 10 = 0 THEN 'Case Study' ELSE 'Reference Call;Case Study' END,
               {synced}
        FROM {_seq(d, contacts)}""",
        f"""INSERT INTO opportunities (source, id, account_id, stage, is_closed, amount, deleted,
               synced_at)
        SELECT 'salesforce', 'O' || n, 'A' || ((n * 104729) % {accounts}),
               CASE WHEN n < {closed} THEN 'Closed Won' ELSE 'Negotiation' END,
               CASE WHEN n < {closed} THEN {true} ELSE {false} END,
               10000 + (n % 400) * 1000, {false}, {synced}
        FROM {_seq(d, deals + closed)}""",
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
    parser.add_argument("--deals", type=int, default=50_000)
    parser.add_argument("--keep", type=Path, help="reuse (or create) this SQLite store")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    path = args.keep or Path(tmp.name) / "bench.db"
    reuse = url is None and args.keep is not None and path.exists()
    engine = make_engine(url or f"sqlite:///{path}")
    upgrade(engine)
    tables = (
        "match_suggestions",
        "writeback_outbox",
        "writeback_state",
        "writeback_log",
        "opportunities",
        "evaluations",
        "contacts",
        "accounts",
    )
    if not reuse:
        with engine.begin() as conn:
            for table in tables:
                conn.execute(sa.text(f"DELETE FROM {table}"))
        started = time.perf_counter()
        seed(engine, args.contacts, args.deals)
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:,.0f} s")
    rules = parse_matching(RULES, {}, "bench")
    source = load_mappings(ROOT / "mappings").salesforce
    assert source is not None
    target = source.writeback_for("opportunity")
    assert target is not None
    print(f"backend: {engine.dialect.name}; {args.contacts:,} contacts, {args.deals:,} open deals")

    rss_before = rss_mib()
    results = []
    for label in ("first run", "second run"):
        started, cpu = time.perf_counter(), time.process_time()
        counts = match_all(engine, rules, target=target, now=NOW, run_id=len(results) + 1)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        results.append((label, wall, cpu_s, counts))
        print(
            f"{label}: {wall:5.1f} s wall, {cpu_s:5.1f} s cpu; deals {counts.deals:,}, "
            f"candidates {counts.candidates:,}, suggestions {counts.suggestions:,}, "
            f"without {counts.without:,}, queued {counts.enqueued:,}, unchanged "
            f"{counts.unchanged:,}; peak RSS {rss_mib():,.0f} MiB"
        )
        if label == "first run":
            crm = MemoryConnector()
            started = time.perf_counter()
            report = WritebackReport(dry_run=False)
            apply_pending(
                engine,
                crm,
                target,
                report=report,
                batch_size=10_000,
                max_attempts=1,
                retry_base_seconds=0,
                retry_max_seconds=0,
                run_id=None,
                now=lambda: NOW,
                sleep=time.sleep,
            )
            print(
                f"  (apply to an in-memory CRM: {report.counts['success']:,} records confirmed "
                f"in {time.perf_counter() - started:.1f} s)"
            )
    print(f"peak RSS: {rss_mib():,.0f} MiB (before matching: {rss_before:,.0f} MiB)")
    first, second = results[0][3], results[1][3]
    assert first.deals == args.deals
    assert first.without == 0
    assert second.enqueued == 0, "a second run on the same data must write nothing"


if __name__ == "__main__":
    main()
