"""Benchmark: the steady state, a cycle costs what changed (issue 18).

Run ``python -m bench.steady_state --contacts 110000``. One sandbox org (about 5.2 contacts per
account) and one SQLite store; each cycle is a real ``sync-service run-once`` process (process
start included), timed from outside:

1. ``first``: the first cycle (everything read, evaluated, written);
2. ``echo``: the next one, which reads back the records the first cycle's writeback updated,
   ``--gap`` seconds later (default 310: a scheduled cycle comes at least one overlap window,
   300 s by default, after the last one; a cycle sooner than that re-reads the echo);
3. ``1%``: 1% of the contacts and 1% of the cases changed in the sandbox beforehand;
4. ``0%``: nothing changed;
5. the same-run baseline, ``SYNC_FULL_CYCLES=1`` (``evaluate --full`` and a diff of every
   record, the behaviour before change tracking): another 1% change, then a 0% cycle.

Per cycle: wall and CPU seconds (the child's user + system: the machine is shared), seconds per
stage (from the run records), API calls (the sandbox's count), records written, contacts
evaluated and the child's peak RSS per job (from its run records). Prints one JSON line per
cycle, then the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTACTS_PER_ACCOUNT = 110_147 / 21_000  # the sandbox's seed
SYSTEMS = ("salesforce", "gainsight")


def _env(sb: Any, db: Path, cfg: Path, full: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SALESFORCE_", "GAINSIGHT_", "SYNC_", "DATABASE_URL"))
    }
    env.update(sb.env("client_credentials"))
    env.update({"DATABASE_URL": f"sqlite:///{db}", "SYNC_CONFIG": str(cfg)})
    env["SYNC_LOG_FORMAT"] = "json"
    if full:
        env["SYNC_FULL_CYCLES"] = "1"
    return env


def _cycle(
    sb: Any, db: Path, cfg: Path, log: Path, name: str, *, full: bool = False
) -> dict[str, Any]:
    from sync_service.ops.runs import PEAK_MEMORY, last_runs
    from sync_service.store.engine import make_engine

    engine = make_engine(f"sqlite:///{db}") if db.exists() else None
    before_id = max((r["id"] for r in last_runs(engine, limit=1)), default=0) if engine else 0
    # the counter keeps per-system totals beside the per-kind counts (and logins, which are
    # not API calls): the API calls are the systems' totals
    before_by = dict(sb.api_calls)
    started = time.monotonic()
    with log.open("a", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "run-once", "--json"],
            cwd=ROOT,
            env=_env(sb, db, cfg, full),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        # CPU from the child's rusage; its peak memory from its own run records below (its
        # ru_maxrss would carry this process's peak, the sandbox holding the org, across exec)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    engine = engine or make_engine(f"sqlite:///{db}")
    runs = [r for r in last_runs(engine, limit=50) if r["id"] > before_id]
    engine.dispose()
    stages: dict[str, float] = {}
    counts: dict[str, int] = {}
    # the child's own peak when each job ended (monotonic: the first job to raise it holds it)
    peaks: dict[str, int] = {}
    for r in sorted(runs, key=lambda r: r["id"]):
        if r["finished_at"] is not None:
            secs = (r["finished_at"] - r["started_at"]).total_seconds()
            stages[r["job"]] = round(stages.get(r["job"], 0.0) + secs, 2)
        for key, value in (r["counts"] or {}).items():
            if key == PEAK_MEMORY:
                peaks[r["job"]] = max(peaks.get(r["job"], 0), int(value))
            elif isinstance(value, int):
                counts[f"{r['job']}.{key}"] = counts.get(f"{r['job']}.{key}", 0) + value
    return {
        "cycle": name,
        "baseline": full,
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": max(peaks.values(), default=0),
        "peak_rss_by_job_mb": peaks,
        "stages_s": stages,
        "api_calls": sum(sb.api_calls[s] - before_by.get(s, 0) for s in SYSTEMS),
        "api_calls_by": {
            k: v - before_by.get(k, 0)
            for k, v in sb.api_calls.items()
            if v != before_by.get(k, 0) and k not in SYSTEMS
        },
        "written": counts.get("writeback.writeback.success", 0),
        "evaluated_contacts": counts.get("evaluate.evaluated.contacts", 0)
        + counts.get("evaluate_full.evaluated.contacts", 0),
        "changed_rows": sum(v for k, v in counts.items() if ".changed." in k),
        "statuses": [f"{r['job']}:{r['status']}" for r in sorted(runs, key=lambda r: r["id"])],
    }


def _change(sb: Any, share: float, rng: random.Random, tag: str) -> dict[str, int]:
    """Change ``share`` of the contacts (title; every third its opt-in) and of the cases."""
    out: dict[str, int] = {}
    for obj, make in (
        (
            "Contact",
            lambda r, i: (
                {"Title": f"{tag} {i}"}
                | ({"Reference_Opt_In__c": not r.get("Reference_Opt_In__c")} if i % 3 == 0 else {})
            ),
        ),
        ("Case", lambda r, i: {"Priority": "Low" if r.get("Priority") == "High" else "High"}),
    ):
        records = sb.records(obj)
        picked = rng.sample(records, max(1, int(len(records) * share)))
        od = sb.org.objdef(obj)
        updates = []
        for i, rec in enumerate(picked):
            stored = {}
            for name, value in make(rec, i).items():
                col, val, err = sb.org.coerce(od, name, value, check_access=False)
                if err is not None:
                    raise ValueError(err.message)
                stored[col] = val
            updates.append((rec[sb.org.key(obj)], stored))
        sb.org.apply_updates(obj, updates)
        out[obj] = len(updates)
    return out


def main() -> int:
    """Run the cycles; print one JSON line each and the ratio of the 1% cycles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=110_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--keep", type=Path, default=None, help="keep the store and log here")
    parser.add_argument(
        "--gap", type=float, default=310.0, help="seconds between the first and the echo cycle"
    )
    args = parser.parse_args()
    from sandbox import Sandbox

    accounts = max(10, round(args.contacts / CONTACTS_PER_ACCOUNT))
    rng = random.Random(18)
    with Sandbox(accounts=accounts, seed=7) as sb, tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db, cfg, log = folder / "steady.db", folder / "settings.yaml", folder / "steady.log"
        cfg.write_text(
            f"mappings_dir: {ROOT / 'mappings'}\nrules_file: {ROOT / 'config' / 'rules.yaml'}\n",
            encoding="utf-8",
        )
        print(json.dumps({"sandbox": sb.seed_counts, "accounts": accounts}), flush=True)
        results = []

        def cycle(name: str, full: bool = False) -> dict[str, Any]:
            result = _cycle(sb, db, cfg, log, name, full=full)
            results.append(result)
            print(json.dumps(result, default=str), flush=True)
            return result

        cycle("first")
        time.sleep(args.gap)
        cycle("echo")
        print(json.dumps({"changed": _change(sb, args.share, rng, "c1")}), flush=True)
        inc = cycle("1%")
        cycle("0%")
        print(json.dumps({"changed": _change(sb, args.share, rng, "c2")}), flush=True)
        base = cycle("1%", full=True)
        cycle("0%", full=True)
        print(
            json.dumps(
                {
                    "ratio_wall_1pct": round(base["wall_s"] / inc["wall_s"], 2),
                    "ratio_cpu_1pct": round(base["cpu_s"] / inc["cpu_s"], 2),
                }
            ),
            flush=True,
        )
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
