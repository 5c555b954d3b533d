"""Benchmark: pull a large sandbox org into SQLite via REST, via Bulk API 2.0, and naively.

Run ``python -m bench.salesforce_sync`` (default: ``Sandbox(accounts=200_000)``, about 1M
contacts with their accounts, cases, opportunities and asks). Each mode runs in its own child
process against the same sandbox, so that its peak RSS (its own ``VmHWM``) is its own:

* ``naive`` — a plain simple-salesforce ``query_all`` per object, every row mapped and upserted
  into the store (the baseline every ratio is against);
* ``rest``  — the connector forced to REST ``queryAll`` pages (largest batch size) + ingest;
* ``bulk``  — the connector forced to Bulk API 2.0 query jobs + ingest;
* ``rest-read``, ``bulk-read`` — the same reads with no store (the connector's own ceiling).

Prints records/s, peak RSS, API calls (and REST calls against one per 2,000 rows) per mode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sync_service.ops.memory import rss_mib

TARGET_BULK_RPS = 50_000
TARGET_RSS_MB = 500


def _connector_config(overrides: dict[str, Any]) -> Any:
    from connectors.salesforce import SalesforceConfig
    from sync_service.settings import load_settings

    settings = load_settings(None, os.environ)
    return SalesforceConfig.from_options(
        settings.salesforce, ca_bundle=settings.ca_bundle, **overrides
    )


def _entities(mappings_dir: Path) -> list[Any]:
    from sync_service.mapping import load_mappings

    mappings = load_mappings(mappings_dir)
    assert mappings.salesforce is not None
    return list(mappings.salesforce.entities.values())


def child(mode: str, db: Path, mappings_dir: Path) -> dict[str, Any]:
    """One mode, in this (child) process; returns its figures."""
    from connectors.salesforce import SalesforceConnector
    from connectors.salesforce.streams import flatten
    from sync_service.ops.runs import run_record
    from sync_service.store.engine import make_engine, upgrade
    from sync_service.store.models import CANONICAL_TABLES
    from sync_service.store.upsert import upsert
    from sync_service.sync.ingest import IngestOptions, sync_stream

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    entities = _entities(mappings_dir)
    overrides: dict[str, Any] = {"budget_share": 1.0, "max_attempts": 6}
    if mode in ("rest", "rest-read"):
        overrides |= {"bulk_query_threshold": 10**12, "batch_size": 2000}
    elif mode in ("bulk", "bulk-read"):
        overrides |= {"bulk_query_threshold": 0, "batch_size": 10_000, "bulk_page_size": 50_000}
    connector = SalesforceConnector(_connector_config(overrides))
    per_stream: dict[str, dict[str, float]] = {}
    records = 0
    sf = connector.client()  # log in first: a login is not an API call of any stream
    start = time.perf_counter()
    if mode.endswith("-read"):
        until = datetime.now(UTC)
        for mapping in entities:
            spec = mapping.stream_spec()
            before, t0 = connector.usage().calls, time.perf_counter()
            rows = sum(len(b.records) for b in connector.stream(spec).read(None, until))
            records += rows
            per_stream[spec.name] = {
                "rows": rows,
                "calls": connector.usage().calls - before,
                "seconds": time.perf_counter() - t0,
            }
    elif mode == "naive":
        with engine.begin() as conn:
            for mapping in entities:
                spec = mapping.stream_spec()
                fields = ", ".join(
                    dict.fromkeys([spec.primary_key, *spec.fields, "SystemModstamp"])
                )
                before, t0 = connector.usage().calls, time.perf_counter()
                result = sf.query_all(f"SELECT {fields} FROM {spec.object_name}")
                rows = []
                for raw in result["records"]:
                    row = mapping.to_row(flatten(raw))
                    row["source"] = "salesforce"
                    row["synced_at"] = datetime.now(UTC)
                    rows.append(row)
                upsert(conn, CANONICAL_TABLES[mapping.entity], rows)
                records += len(rows)
                per_stream[spec.name] = {
                    "rows": len(rows),
                    "calls": connector.usage().calls - before,
                    "seconds": time.perf_counter() - t0,
                }
    else:
        opts = IngestOptions(overlap=timedelta(seconds=300), now=datetime.now(UTC))
        with run_record(engine, "salesforce") as run:
            for mapping in entities:
                name = mapping.stream_spec().name
                before, t0 = connector.usage().calls, time.perf_counter()
                sync_stream(engine, connector, mapping, run, opts)
                rows = int(run.counts.get(f"records.{name}", 0))
                records += rows
                per_stream[name] = {
                    "rows": rows,
                    "calls": connector.usage().calls - before,
                    "seconds": time.perf_counter() - t0,
                }
    seconds = time.perf_counter() - start
    return {
        "peak_rss_mb": rss_mib(),
        "mode": mode,
        "records": records,
        "seconds": seconds,
        "calls": connector.usage().calls,
        "per_stream": per_stream,
    }


def _run_child(mode: str, db: Path, mappings_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    out = db.with_suffix(".json")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.salesforce_sync",
            "--child",
            mode,
            "--db",
            str(db),
            "--mappings",
            str(mappings_dir),
            "--out",
            str(out),
        ],
        env=env,
    )
    _, status, _usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _rest_overhead(result: dict[str, Any]) -> int:
    """Worst per-stream excess of REST calls over one per 2,000 rows."""
    return max(
        (s["calls"] - math.ceil(s["rows"] / 2000) for s in result["per_stream"].values()),
        default=0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--modes", default="naive,rest,bulk,rest-read,bulk-read")
    parser.add_argument("--mappings", type=Path, default=Path("mappings"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = child(args.child, args.db, args.mappings)
        args.out.write_text(json.dumps(result))
        return 0

    from sandbox import Sandbox

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(f"seeding Sandbox(accounts={args.accounts:,}, seed={args.seed}) ...", flush=True)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    with (
        Sandbox(accounts=args.accounts, seed=args.seed) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"seeded in {time.perf_counter() - t0:.0f}s", flush=True)
        env = {**os.environ, **sb.env()}
        for mode in modes:
            print(f"running {mode} ...", flush=True)
            result = _run_child(mode, Path(tmp) / f"{mode}.db", args.mappings.resolve(), env)
            results.append(result)
            print(f"  {result['records']:,} records in {result['seconds']:.1f}s", flush=True)
    base = next((r for r in results if r["mode"] == "naive"), None)
    print()
    print(
        f"{'mode':<9} {'records':>10} {'seconds':>8} {'rec/s':>9} {'peak RSS MB':>11} "
        f"{'API calls':>9} {'vs naive':>8}"
    )
    for r in results:
        rps = r["records"] / r["seconds"] if r["seconds"] else 0.0
        ratio = ""
        if base and base["seconds"] and r is not base:
            ratio = f"{rps / (base['records'] / base['seconds']):.2f}x"
        print(
            f"{r['mode']:<9} {r['records']:>10,} {r['seconds']:>8.1f} {rps:>9,.0f} "
            f"{r['peak_rss_mb']:>11.0f} {r['calls']:>9,} {ratio:>8}"
        )
    print()
    for r in results:
        streams = ", ".join(
            f"{name} {s['rows'] / s['seconds']:,.0f}/s" if s.get("seconds") else name
            for name, s in r["per_stream"].items()
        )
        print(f"{r['mode']:<9} per stream: {streams}")
    for r in results:
        if r["mode"] == "rest":
            print(
                f"REST: worst stream makes {_rest_overhead(r)} call(s) beyond one per 2,000 rows "
                "(target: within 2)"
            )
        if r["mode"] == "bulk":
            rps = r["records"] / r["seconds"]
            ok = rps >= TARGET_BULK_RPS and r["peak_rss_mb"] < TARGET_RSS_MB
            print(
                f"Bulk: {rps:,.0f} rec/s, peak RSS {r['peak_rss_mb']:.0f} MB "
                f"(targets >= {TARGET_BULK_RPS:,} rec/s, < {TARGET_RSS_MB} MB): "
                f"{'met' if ok else 'NOT met'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
