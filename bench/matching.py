"""Benchmark: reference matching, 50,000 open deals against a million contacts.

Run: ``python -m bench.matching [contacts] [--deals N] [--backend sqlite|postgresql]
[--keep FILE]`` (defaults: 1,000,000 contacts, 50,000 open deals, a temporary SQLite store).
PostgreSQL: a scratch database is created on the server ``BENCH_PG_URL`` names (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped after, as ``bench.rules_eval`` does;
``BENCH_DATABASE_URL`` runs on that database instead (its tables are emptied first).

Seeds in SQL: five contacts per account; accounts over 12 industries, 4 regions, 3 segments
and a health score (the size band); 40% of contacts Eligible and available for reference
calls, scores spread 0-100; the deals on random accounts, plus 10% closed. Then, in a child
process (so that its peak RSS is the matching's, not the seeding's):

1. a first match run: every deal ranked, its suggestions stored and its text queued for
   ``Opportunity.Suggested_References__c`` (all new); the queue is then confirmed by an
   in-memory CRM (:class:`connectors.memory.MemoryConnector`, the writeback's own apply,
   timed apart);
2. a second run on the same data: it must queue nothing (no change, no write).

Prints wall and CPU seconds of each run (the machine may be shared: CPU time is this process's
work; SQLite runs in it too), the figures of each run (candidates in the store and read by the
ranking) and each run's own peak RSS (the apply's apart), which should not grow with the
contacts once they outnumber what the deals can be proposed (deals x top_n).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.report import _pick, _seq
from connectors.memory import MemoryConnector
from sync_service.mapping import load_mappings
from sync_service.match.config import parse_matching
from sync_service.match.stage import match_all
from sync_service.ops.memory import reset_peak_rss, rss_mib
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


def measure(url: str) -> dict[str, object]:
    """Two match runs and the apply between them, on the seeded store at ``url``."""
    engine = make_engine(url)
    rules = parse_matching(RULES, {}, "bench")
    source = load_mappings(ROOT / "mappings").salesforce
    assert source is not None
    target = source.writeback_for("opportunity")
    assert target is not None
    out: dict[str, object] = {"backend": engine.dialect.name, "rss_start_mib": rss_mib()}
    runs = []
    for run_id in (1, 2):
        out["peak_per_phase"] = reset_peak_rss()
        started, cpu = time.perf_counter(), time.process_time()
        counts = match_all(engine, rules, target=target, now=NOW, run_id=run_id)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        runs.append({"wall": wall, "cpu": cpu_s, **counts.as_counts(), "rss_mib": rss_mib()})
        if run_id == 1:
            reset_peak_rss()
            started = time.perf_counter()
            report = WritebackReport(dry_run=False)
            apply_pending(
                engine,
                MemoryConnector(),
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
            out["applied"] = report.counts["success"]
            out["apply_s"] = time.perf_counter() - started
            out["apply_rss_mib"] = rss_mib()
    out["runs"] = runs
    out["peak_rss_mib"] = max(r["rss_mib"] for r in runs)
    engine.dispose()
    return out


def _scratch_database(admin_url: str) -> tuple[sa.Engine, str, str]:
    """A new, empty PostgreSQL database on the server ``admin_url`` names."""
    name = f"bench_matching_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return admin, name, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contacts", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--deals", type=int, default=50_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--keep", type=Path, help="reuse (or create) this SQLite store")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    tmp = tempfile.TemporaryDirectory()
    admin: sa.Engine | None = None
    scratch = ""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url is None and args.backend == "postgresql":
        pg_admin = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        admin, scratch, url = _scratch_database(pg_admin)
    path = args.keep or Path(tmp.name) / "bench.db"
    reuse = url is None and args.keep is not None and path.exists()
    url = url or f"sqlite:///{path}"
    try:
        run(url, args.contacts, args.deals, reuse=reuse)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()


def run(url: str, contacts: int, deals: int, *, reuse: bool) -> None:
    """Seed (unless ``reuse``), measure in a child process, print and check the figures."""
    engine = make_engine(url)
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
        seed(engine, contacts, deals)
        print(f"seeded {contacts:,} contacts in {time.perf_counter() - started:,.0f} s")
    print(f"backend: {engine.dialect.name}; {contacts:,} contacts, {deals:,} open deals")
    engine.dispose()
    child = subprocess.run(
        [sys.executable, "-m", "bench.matching", "--measure", url],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    res = json.loads(child.stdout.strip().splitlines()[-1])
    runs = res["runs"]
    for label, r in zip(("first run", "second run"), runs, strict=True):
        print(
            f"{label}: {r['wall']:5.1f} s wall, {r['cpu']:5.1f} s cpu; deals {r['deals']:,}, "
            f"candidates {r['candidates']:,} (read {r['candidates_read']:,}), suggestions "
            f"{r['suggestions']:,}, without {r['deals_without']:,}, queued {r['enqueued']:,}, "
            f"unchanged {r['unchanged']:,}; peak RSS {r['rss_mib']:,.0f} MiB"
        )
        if label == "first run":
            print(
                f"  (apply to an in-memory CRM: {res['applied']:,} records confirmed "
                f"in {res['apply_s']:.1f} s, peak RSS {res['apply_rss_mib']:,.0f} MiB)"
            )
    each = "each run's own" if res["peak_per_phase"] else "the process's, cumulative"
    print(
        f"peak RSS of the match runs: {res['peak_rss_mib']:,.0f} MiB ({each}; at the "
        f"child's start, imports done: {res['rss_start_mib']:,.0f} MiB)"
    )
    assert runs[0]["deals"] == deals
    assert runs[0]["deals_without"] == 0
    assert runs[1]["enqueued"] == 0, "a second run on the same data must write nothing"


if __name__ == "__main__":
    main()
