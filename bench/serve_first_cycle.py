"""Check: ``serve`` on a fresh SQLite store runs its first cycle with no failed job, N times.

Run ``python -m bench.serve_first_cycle --accounts 20000 --times 5``. Each round starts a
``serve`` process (Salesforce and Gainsight jobs due at once, as on a first start) on a new
SQLite file against one sandbox, waits until the Salesforce and Gainsight syncs, an evaluation
and a writeback have finished, stops it with SIGTERM and checks: no run failed, no
``database is locked`` in the log, every run closed, exit code 0. Prints one line per round.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _round(sb: object, folder: Path, n: int, timeout: float) -> dict[str, object]:
    from sync_service.ops.runs import last_runs
    from sync_service.store.engine import make_engine

    db = folder / f"round{n}.db"
    cfg = folder / "settings.yaml"
    cfg.write_text(
        f"mappings_dir: {ROOT / 'mappings'}\nrules_file: {ROOT / 'config' / 'rules.yaml'}\n"
        "jobs:\n  salesforce: {interval_minutes: 30}\n  gainsight: {interval_minutes: 60}\n"
        "  reconcile: {cron: '0 3 * * *'}\n",
        encoding="utf-8",
    )
    log_path = folder / f"round{n}.log"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SALESFORCE_", "GAINSIGHT_", "SYNC_", "DATABASE_URL"))
        },
        **sb.env("client_credentials"),  # type: ignore[attr-defined]
        "DATABASE_URL": f"sqlite:///{db}",
        "SYNC_CONFIG": str(cfg),
        "SYNC_HTTP_PORT": "0",
        "SYNC_LOG_FORMAT": "json",
    }
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_service", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        engine = None
        try:
            deadline = started + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(1)
                if not db.exists():
                    continue
                engine = engine or make_engine(f"sqlite:///{db}")
                try:
                    rows = last_runs(engine, limit=50)
                except Exception:  # the schema may not be there yet
                    continue
                done = {r["job"] for r in rows if r["finished_at"] is not None}
                if {"salesforce", "gainsight"} <= done and sum(
                    r["job"] == "writeback" and r["finished_at"] is not None for r in rows
                ) >= 2:
                    break
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert engine is not None or db.exists(), "serve never created the store"
    engine = engine or make_engine(f"sqlite:///{db}")
    rows = last_runs(engine, limit=100)
    engine.dispose()
    text = log_path.read_text(encoding="utf-8")
    return {
        "round": n,
        "seconds": round(time.monotonic() - started, 1),
        "exit": code,
        "runs": ", ".join(f"{r['job']}:{r['status']}" for r in reversed(rows)),
        "failed": [r["job"] for r in rows if r["status"] == "failed"],
        "open": [r["job"] for r in rows if r["finished_at"] is None],
        "locked": text.count("database is locked"),
        "tracebacks": text.count("Traceback"),
    }


def main() -> int:
    """Run the rounds; exit 1 when any round had a failed job, a lock error or a bad exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    from sandbox import Sandbox

    bad = 0
    with Sandbox(accounts=args.accounts, seed=7) as sb, tempfile.TemporaryDirectory() as tmp:
        print(f"sandbox: {sb.seed_counts}", flush=True)
        for n in range(1, args.times + 1):
            result = _round(sb, Path(tmp), n, args.timeout)
            ok = (
                not result["failed"]
                and not result["open"]
                and not result["locked"]
                and result["exit"] == 0
            )
            bad += not ok
            print(("OK  " if ok else "BAD ") + str(result), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
