"""Benchmark: features (SQL) + rules (polars) for N contacts, SQLite and PostgreSQL.

    python -m bench.rules_eval [N]          # default 1,000,000 contacts

Seeds a fresh store per backend with bulk inserts (N contacts, N/10 accounts, 0.6 N NPS answers,
0.3 N tickets, 0.1 N renewals, 0.5 N asks; Gainsight companies for half the accounts), then, in
a child process (so that peak RSS is the evaluation's, not the seeding's):

* end to end: every features chunk read from SQL, aggregated in polars and evaluated (contacts
  and accounts) with the shipped ``config/rules.yaml`` -> contacts/s, the median of 3 passes
  after a first one (reported apart: the process's and the database's cold start);
* ``evaluate_all`` writing verdicts and history (first run: everyone new), then again (no change);
* in a child of its own, a whole evaluation as a dry run: its peak RSS, which must level off
  with the org's size (the features are read in bounded chunks);
* the rules alone on one 100,000-contact chunk: vectorised vs a naive per-row Python evaluation
  of the same rules (each SQL condition translated to a Python expression and ``eval``'d per
  contact, NULL handled per comparison) -> the ratio.

PostgreSQL: ``BENCH_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres) names a
server where a scratch database is created and dropped. No API calls are made (store only).
"""

from __future__ import annotations

import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from rules import evaluate, evaluate_accounts, load_policy
from sync_service.evaluate.evaluation import evaluate_all
from sync_service.evaluate.features.parallel import stream_feature_chunks
from sync_service.ops.memory import rss_mib
from sync_service.store.engine import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
SYNCED = "2026-11-01 00:00:00.000000"
#: end-to-end passes measured after the first (cold) one; the figure is their median
WARM_PASSES = 3


CONSENTS = [
    "Reference Call",
    "Reference Call;Case Study",
    "Reference Call;Speaking;Logo Use",
]


def _rand(n: int, seed: int, k: int) -> pl.Expr:
    return (pl.int_range(n, dtype=pl.UInt64).hash(seed) % k).cast(pl.Int64)


def _ids(prefix: str, idx: pl.Expr) -> pl.Expr:
    return pl.lit(prefix) + idx.cast(pl.String).str.zfill(15)


def build(n: int) -> dict[str, pl.DataFrame]:
    """Synthetic canonical rows (deterministic)."""
    n_acc = max(1, n // 10)
    idx = pl.int_range(n_acc, dtype=pl.Int64)
    accounts = pl.select(
        _ids("001", idx).alias("id"),
        (pl.lit(TODAY) - pl.duration(days=_rand(n_acc, 1, 2000))).alias("customer_since"),
        (_rand(n_acc, 2, 100)).cast(pl.Float64).alias("health_score"),
        (_rand(n_acc, 3, 50) == 0).alias("payment_overdue"),
        pl.lit("Software").alias("industry"),
        pl.lit(None, dtype=pl.String).alias("sf_account_id"),
        pl.lit("salesforce").alias("source"),
    )
    gs = accounts.head(n_acc // 2).select(
        (pl.lit("GS") + pl.col("id")).alias("id"),
        pl.lit(None, dtype=pl.Date).alias("customer_since"),
        (pl.col("health_score") + 5).alias("health_score"),
        pl.lit(None, dtype=pl.Boolean).alias("payment_overdue"),
        pl.lit(None, dtype=pl.String).alias("industry"),
        pl.col("id").alias("sf_account_id"),
        pl.lit("gainsight").alias("source"),
    )
    cidx = pl.int_range(n, dtype=pl.Int64)
    contacts = pl.select(
        _ids("003", cidx).alias("id"),
        pl.when(_rand(n, 4, 50) == 0)
        .then(None)
        .otherwise(_ids("001", _rand(n, 5, n_acc)))
        .alias("account_id"),
        (_rand(n, 6, 10) < 6).alias("opted_in"),
        (_rand(n, 7, 50) == 0).alias("opted_out"),
        (pl.lit(TODAY) - pl.duration(days=_rand(n, 24, 900))).alias("opt_in_date"),
        # consent per activity: 1 in 4 none, else Reference Call plus 0-2 more
        pl.lit(pl.Series([None, *CONSENTS]))
        .gather(_rand(n, 25, len(CONSENTS) + 1))
        .alias("consent_types"),
    )
    acct_of = contacts.select("id", "account_id")

    def pick_contacts(m: int, seed: int) -> pl.DataFrame:
        return pl.select(_ids("003", _rand(m, seed, n)).alias("contact_id")).join(
            acct_of.rename({"id": "contact_id"}), on="contact_id", how="left"
        )

    m = int(n * 0.6)
    nps = pick_contacts(m, 8).with_columns(
        _ids("NPS", pl.int_range(m, dtype=pl.Int64)).alias("id"),
        _rand(m, 9, 11).alias("score"),
        (pl.lit(NOW) - pl.duration(hours=_rand(m, 10, 24 * 730))).alias("responded_at"),
    )
    m = int(n * 0.3)
    prio = pl.concat_str([pl.lit("P"), (_rand(m, 12, 4) + 1).cast(pl.String)])
    tickets = pl.select(
        _ids("500", pl.int_range(m, dtype=pl.Int64)).alias("id"),
        _ids("001", _rand(m, 11, n_acc)).alias("account_id"),
        prio.alias("priority"),
        (_rand(m, 13, 10) != 0).alias("is_closed"),
        (_rand(m, 14, 30) == 0).alias("is_escalated"),
        (pl.lit(NOW) - pl.duration(hours=_rand(m, 15, 24 * 180))).alias("opened_at"),
    )
    m = max(1, n // 10)
    risks = ["At Risk", "High", "Medium", "Low"]
    opps = pl.select(
        _ids("006", pl.int_range(m, dtype=pl.Int64)).alias("id"),
        _ids("001", _rand(m, 16, n_acc)).alias("account_id"),
        pl.lit("Renewal").alias("opportunity_type"),
        (_rand(m, 17, 5) == 0).alias("is_closed"),
        (pl.lit(TODAY) + pl.duration(days=_rand(m, 18, 365))).alias("close_date"),
        # 1 in 20 renewals at risk, 1 in 20 high
        pl.lit(pl.Series(risks)).gather(_rand(m, 19, 20).clip(0, 3)).alias("renewal_risk"),
    )
    m = n // 2
    types = pl.Series(["Reference Call", "Case Study", "Review", "Webinar", "Analyst"])
    teams = pl.Series(["Sales", "Marketing", "PR", "Product"])
    statuses = pl.Series(["Requested", "Accepted", "Declined", "Completed", "Cancelled"])
    asks = pick_contacts(m, 20).with_columns(
        _ids("a0R", pl.int_range(m, dtype=pl.Int64)).alias("id"),
        pl.lit(types).gather(_rand(m, 21, 5)).alias("ask_type"),
        pl.lit(teams).gather(_rand(m, 22, 4)).alias("team"),
        pl.lit(statuses).gather(_rand(m, 26, 5)).alias("status"),
        (pl.lit(TODAY) - pl.duration(days=_rand(m, 23, 365))).alias("requested_date"),
    )
    return {
        "accounts": pl.concat([accounts, gs]),
        "contacts": contacts,
        "nps_responses": nps,
        "tickets": tickets,
        "opportunities": opps,
        "advocacy_asks": asks,
    }


def seed(url: str, data: dict[str, pl.DataFrame]) -> None:
    """Bulk-load the canonical rows: COPY on PostgreSQL, executemany on SQLite."""
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for table, frame in data.items():
            frame = frame.with_columns(
                pl.col("source")
                if "source" in frame.columns
                else pl.lit("salesforce").alias("source"),
                pl.lit(False).alias("deleted"),
            )
            if conn.dialect.name == "postgresql":
                frame = frame.with_columns(pl.lit(NOW).alias("synced_at"))
                buf = io.BytesIO()
                frame.write_csv(buf, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%z")
                dbapi = conn.connection.driver_connection
                cols = ", ".join(frame.columns)
                with (
                    dbapi.cursor() as cur,
                    cur.copy(  # type: ignore[union-attr]
                        f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)"
                    ) as cp,
                ):
                    cp.write(buf.getvalue())
            else:
                frame = frame.with_columns(pl.lit(SYNCED).alias("synced_at"))
                conv = []
                for name, dtype in frame.schema.items():
                    if dtype == pl.Date:
                        conv.append(pl.col(name).dt.strftime("%Y-%m-%d"))
                    elif isinstance(dtype, pl.Datetime):
                        conv.append(pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S.%6f"))
                    elif dtype == pl.Boolean:
                        conv.append(pl.col(name).cast(pl.Int64))
                frame = frame.with_columns(conv) if conv else frame
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                marks = ", ".join("?" for _ in frame.columns)
                sql = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({marks})"
                for part in frame.iter_slices(100_000):
                    cur.executemany(sql, part.rows())
                cur.close()
        if conn.dialect.name == "sqlite":
            # fresh tables: give the planner statistics
            conn.execute(sa.text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        # what autovacuum does a little after a bulk load: statistics for the planner and the
        # visibility map, without which an index-only scan still reads every heap page
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            # the load's dirty pages written now, not by a checkpoint during the measurement
            conn.execute(sa.text("CHECKPOINT"))
    engine.dispose()


# ---- naive baseline: per-row Python evaluation of the same rules ----------------------------
_WORDS = {
    "AND": " and ",
    "OR": " or ",
    "NOT": " not ",
    "IN": " in ",
    "TRUE": "True",
    "FALSE": "False",
}


def _to_python(sql: str) -> str:
    text = re.sub(r"(?<![<>!=])=(?!=)", "==", sql).replace("<>", "!=")
    text = re.sub(r"\b(AND|OR|NOT|IN|TRUE|FALSE)\b", lambda m: _WORDS[m.group(1)], text)
    return text


def naive_evaluate(policy: Any, rows: list[dict[str, Any]], today: date) -> list[str]:
    """A per-row interpreter: each condition eval'd per contact; NULL comparisons -> unknown."""
    compiled = [(r.kind, compile(_to_python(r.when), r.id, "eval")) for r in policy.rules]
    out = []
    for row in rows:
        verdicts: dict[str, bool] = {}
        for kind, code in compiled:
            try:
                ok = bool(eval(code, {}, row))  # the baseline being measured
            except TypeError:  # None compared with a number: SQL's unknown
                ok = False
            if kind == "eligibility":
                ok = not ok
            verdicts[kind] = verdicts.get(kind, False) or ok
        fatigued = False
        for cap in policy.caps:
            count = row.get(f"cap__{cap.id}__count") or 0
            fatigued = fatigued or count >= cap.max_asks
        last = row.get("last_ask_date")
        if last is not None and last + timedelta(days=policy.rest_days) > today:
            fatigued = True
        if verdicts.get("opt_out"):
            out.append("Opted Out")
        elif verdicts.get("suspension"):
            out.append("Suspended")
        elif verdicts.get("eligibility"):
            out.append("Not Eligible")
        elif fatigued:
            out.append("Fatigued")
        else:
            out.append("Eligible")
    return out


def measure(url: str) -> dict[str, Any]:
    """Run in the child process: the figures for one store."""
    policy = load_policy(ROOT / "config" / "rules.yaml")
    engine = make_engine(url)
    res: dict[str, Any] = {}
    passes: list[float] = []
    for _ in range(1 + WARM_PASSES):
        t0 = time.perf_counter()
        n = n_acc = 0
        statuses: dict[str, int] = {}
        first: pl.DataFrame | None = None
        for chunk in stream_feature_chunks(engine, policy, NOW):
            out = evaluate(policy, chunk.contacts, NOW)
            acc = evaluate_accounts(policy, chunk.accounts, out, NOW)
            n += out.height
            n_acc += acc.height
            for s, k in out["status"].value_counts().iter_rows():
                statuses[s] = statuses.get(s, 0) + k
            # the rules-only figures below take the largest chunk (the readers hand over
            # whichever is ready first, e.g. the few contacts without an account)
            if first is None or chunk.contacts.height > first.height:
                first = chunk.contacts
        passes.append(time.perf_counter() - t0)
    # the first pass is the process's first (imports, polars' thread pool, the database's
    # cold caches): reported apart; the figure is the median of the passes after it, as a
    # serving process evaluates cycle after cycle
    res["cold_s"] = passes[0]
    res["passes_s"] = passes[1:]
    res["end_to_end_s"] = statistics.median(passes[1:])
    res["contacts"] = n
    res["accounts"] = n_acc
    res["statuses"] = statuses
    res["contacts_per_s"] = n / res["end_to_end_s"]
    res["cold_per_s"] = n / res["cold_s"]
    assert first is not None
    t0 = time.perf_counter()
    vec = evaluate(policy, first, NOW)
    res["rules_only_chunk"] = first.height
    res["rules_only_per_s"] = first.height / (time.perf_counter() - t0)
    rows = first.to_dicts()
    t0 = time.perf_counter()
    naive = naive_evaluate(policy, rows, TODAY)
    res["naive_per_s"] = len(rows) / (time.perf_counter() - t0)
    res["naive_agrees"] = sum(
        a == b for a, b in zip(naive, vec["status"].to_list(), strict=True)
    ) / len(rows)
    t0 = time.perf_counter()
    s1 = evaluate_all(engine, policy, NOW, None)
    res["evaluate_all_first_s"] = time.perf_counter() - t0
    res["evaluate_all_first_changed"] = s1.changed
    t0 = time.perf_counter()
    s2 = evaluate_all(engine, policy, NOW, None)
    res["evaluate_all_again_s"] = time.perf_counter() - t0
    res["evaluate_all_again_changed"] = s2.changed
    res["peak_rss_mib"] = rss_mib()  # VmHWM: ru_maxrss would carry the seeding parent's peak
    engine.dispose()
    return res


def measure_memory(url: str) -> dict[str, Any]:
    """Run in a child process of its own: the peak RSS of a whole evaluation (a dry run).

    Memory must not grow with the org: the features are read in chunks of ``DEFAULT_CHUNK``
    contacts, a few of them in flight, so this figure levels off once the org has that many
    chunks (compare two sizes above it).
    """
    policy = load_policy(ROOT / "config" / "rules.yaml")
    engine = make_engine(url)
    start = rss_mib()
    t0 = time.perf_counter()
    summary = evaluate_all(engine, policy, NOW, None, dry_run=True)
    out = {
        "evaluate_peak_rss_mib": rss_mib(),
        "evaluate_start_rss_mib": start,
        "evaluate_dry_run_s": time.perf_counter() - t0,
        "evaluate_contacts": summary.contacts,
    }
    engine.dispose()
    return out


def _child(mode: str, url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.rules_eval", mode, url],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--measure":
        print(json.dumps(measure(argv[1])))
        return 0
    if len(argv) >= 2 and argv[0] == "--measure-memory":
        print(json.dumps(measure_memory(argv[1])))
        return 0
    n = int(argv[0]) if argv else 1_000_000
    t0 = time.perf_counter()
    data = build(n)
    print(f"built {sum(f.height for f in data.values()):,} rows in {time.perf_counter() - t0:.1f}s")
    pg_admin = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        dbname = f"bench_rules_{uuid.uuid4().hex[:8]}"
        admin = make_engine(pg_admin, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
            targets.append(
                (
                    "PostgreSQL",
                    sa.make_url(pg_admin)
                    .set(database=dbname)
                    .render_as_string(hide_password=False),
                )
            )
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL skipped: {str(exc.orig).splitlines()[0] if exc.orig else exc}")
        try:
            for name, url in targets:
                t0 = time.perf_counter()
                seed(url, data)
                print(f"{name}: seeded in {time.perf_counter() - t0:.1f}s")
                results[name] = _child("--measure-memory", url) | _child("--measure", url)
        finally:
            if len(targets) > 1:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            admin.dispose()
    print(f"\n{n:,} contacts, policy config/rules.yaml; API calls: none (store only)")
    print(
        "| backend | features + rules (median of 3 passes) | contacts/s | first pass "
        "(cold) | evaluate_all (write, first / again) | rules only (vectorised) | "
        "naive per-row | ratio | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['end_to_end_s']:.1f} s "
            f"({' / '.join(f'{x:.2f}' for x in r['passes_s'])}) | {r['contacts_per_s']:,.0f} | "
            f"{r['cold_s']:.1f} s, {r['cold_per_s']:,.0f}/s | "
            f"{r['evaluate_all_first_s']:.1f} s / {r['evaluate_all_again_s']:.1f} s | "
            f"{r['rules_only_per_s']:,.0f}/s | {r['naive_per_s']:,.0f}/s | "
            f"{r['rules_only_per_s'] / r['naive_per_s']:.0f}x | {r['peak_rss_mib']:.0f} MiB |"
        )
    for name, r in results.items():
        print(f"{name}: statuses {r['statuses']}; naive agrees on {r['naive_agrees']:.1%}")
    for name, r in results.items():
        print(
            f"{name}: a whole evaluation (dry run, a process of its own) "
            f"{r['evaluate_dry_run_s']:.1f} s for {r['evaluate_contacts']:,} contacts, "
            f"peak RSS {r['evaluate_peak_rss_mib']:.0f} MiB "
            f"({r['evaluate_start_rss_mib']:.0f} MiB at its start)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
