"""``sync-service status``: show the last runs, watermarks, quarantine and API budget.

Everything comes from the store, so it shows the state of every replica, including ones that
are not running now. Per job: the newest run (result, counts, API calls and budget), the last
success and when the job is next due by its schedule. Then the watermarks, the quarantine,
config edits that were rejected (the last valid config keeps running), held writebacks, the
writeback outbox, the evaluations by status, and privacy (erasures, tombstones, retention).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sync_service.commands.console import emit_json, error
from sync_service.commands.validate import check_configuration
from sync_service.context import AppContext, require_existing_store
from sync_service.ops.runs import utcnow
from sync_service.ops.scheduler import last_successes, next_due
from sync_service.privacy.status import privacy_status, status_lines
from sync_service.settings import JobSettings
from sync_service.store.models import evaluations, quarantine, runs, sync_state, writeback_outbox
from sync_service.sync import completeness
from sync_service.sync.orphans import count_orphans

HELP = "show the last runs, watermarks, quarantine and API budget"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options (``--json`` is added by the CLI)."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _schedule(job: JobSettings | None) -> str:
    if job is None:
        return "not scheduled"
    if not job.enabled:
        return "disabled"
    if job.interval_minutes is not None:
        return f"every {job.interval_minutes:g} min"
    return f"cron {job.cron} (UTC)"


def _run_dict(row: Any) -> dict[str, Any]:
    finished = row["finished_at"]
    return {
        "id": row["id"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(finished),
        "duration_seconds": (
            round((finished - row["started_at"]).total_seconds(), 3) if finished else None
        ),
        "host": row["host"],
        "error": row["error"],
        "counts": row["counts"] or {},
        "api_calls": row["api_calls"] or {},
    }


def collect(ctx: AppContext) -> dict[str, Any]:
    """The status report as plain data (what ``--json`` prints)."""
    settings = ctx.settings
    now = utcnow()
    last_ok = last_successes(ctx.engine)
    with ctx.engine.connect() as conn:
        newest_ids = sa.select(sa.func.max(runs.c.id)).group_by(runs.c.job).scalar_subquery()
        newest = {
            r["job"]: r
            for r in conn.execute(sa.select(runs).where(runs.c.id.in_(newest_ids))).mappings()
        }
        rejected_ids = (
            sa.select(sa.func.max(runs.c.id))
            .where(runs.c.config_errors.is_not(None))
            .group_by(runs.c.job)
            .scalar_subquery()
        )
        rejected_rows = conn.execute(
            sa.select(runs.c.id, runs.c.job, runs.c.started_at, runs.c.config_errors).where(
                runs.c.id.in_(rejected_ids)
            )
        ).mappings()
        rejected = [
            {
                "job": r["job"],
                "run_id": r["id"],
                "at": _iso(r["started_at"]),
                "errors": r["config_errors"],
            }
            for r in rejected_rows
            # a later run of that job without errors means the edit was fixed since
            if r["config_errors"] and r["job"] in newest and newest[r["job"]]["id"] == r["id"]
        ]
        watermarks = [
            {
                "connector": r["connector"],
                "stream": r["stream"],
                "cursor_updated_at": _iso(r["cursor_updated_at"]),
                "cursor_id": r["cursor_id"],
                "last_full_sync_at": _iso(r["last_full_sync_at"]),
                "last_reconciled_at": _iso(r["last_reconciled_at"]),
            }
            for r in conn.execute(
                sa.select(sync_state).order_by(sync_state.c.connector, sync_state.c.stream)
            ).mappings()
        ]
        quarantined = [
            {"connector": c, "stream": s, "count": n}
            for c, s, n in conn.execute(
                sa.select(quarantine.c.connector, quarantine.c.stream, sa.func.count())
                .where(quarantine.c.resolved.is_(False))
                .group_by(quarantine.c.connector, quarantine.c.stream)
                .order_by(quarantine.c.connector, quarantine.c.stream)
            )
        ]
        orphans = count_orphans(conn)
        outbox = {
            state: n
            for state, n in conn.execute(
                sa.select(writeback_outbox.c.state, sa.func.count()).group_by(
                    writeback_outbox.c.state
                )
            )
        }
        privacy = privacy_status(conn, settings.privacy)
        by_status = {
            f"{kind}:{status}": n
            for kind, status, n in conn.execute(
                sa.select(evaluations.c.entity_type, evaluations.c.status, sa.func.count())
                .group_by(evaluations.c.entity_type, evaluations.c.status)
                .order_by(evaluations.c.entity_type, evaluations.c.status)
            )
        }

    jobs: dict[str, Any] = {}
    for name in [*settings.jobs, *sorted(set(newest) - set(settings.jobs))]:
        job = settings.jobs.get(name)
        row = newest.get(name)
        success = last_ok.get(name)
        due = None
        if job is not None and job.enabled:
            when = next_due(name, job, success, now, ever_ran=name in last_ok)
            due = "now" if when <= now else when.isoformat()
        jobs[name] = {
            "schedule": _schedule(job),
            "last_run": _run_dict(row) if row is not None else None,
            "last_success_at": _iso(success),
            "next_run": due,
        }
    budget: dict[str, Any] = {}
    for row in sorted(newest.values(), key=lambda r: r["id"], reverse=True):
        for system, figures in (row["api_calls"] or {}).items():
            if isinstance(figures, dict) and system not in budget and figures.get("limit"):
                budget[system] = {
                    "used": figures.get("used"),
                    "limit": figures.get("limit"),
                    "as_of_run": row["id"],
                }
    held = [
        {"job": r["job"], "run_id": r["id"], "at": _iso(r["started_at"]), "reason": r["error"]}
        for r in newest.values()
        if r["status"] == "held"
    ]
    evaluate_run = newest.get("evaluate")
    gaps = completeness.gaps(ctx.engine)
    incomplete = {
        # verdicts are held while the newest evaluation says so (a running sync marks its
        # streams too, which holds nothing until an evaluation meets it)
        "verdicts_held": bool(
            evaluate_run is not None and (evaluate_run["counts"] or {}).get(completeness.HELD_KEY)
        ),
        "streams": [
            {
                "connector": g.connector,
                "stream": g.stream,
                "entity": g.entity,
                "since": _iso(g.since),
                "reason": g.reason,
            }
            for g in gaps
        ],
    }
    return {
        "generated_at": now.isoformat(),
        "jobs": jobs,
        "incomplete_inputs": incomplete,
        # kept, counted, and (contacts) not evaluated until the parent exists: sync.orphans
        "orphans": {"total": sum(orphans.values()), **orphans},
        "api_budget": budget,
        "watermarks": watermarks,
        "quarantine": {"total": sum(q["count"] for q in quarantined), "streams": quarantined},
        "rejected_config_edits": rejected,
        "held_writebacks": held,
        "writeback_outbox": {
            "pending": outbox.get("pending", 0),
            "failed": outbox.get("failed", 0),
            "done": outbox.get("done", 0),
        },
        "evaluations": by_status,
        "privacy": privacy,
    }


def _short(ts: str | None) -> str:
    return ts[:19].replace("T", " ") + "Z" if ts else "-"


#: Counts shown on a terminal; the rest (per-field breakdowns) is in ``--json``.
_MAX_COUNTS = 10


def _headline_counts(counts: dict[str, Any]) -> str:
    """Non-zero top-level counts (``a.b`` but not ``a.b.c.d``), at most ten, for a terminal."""
    shown = [
        f"{k} {v}"
        for k, v in sorted(counts.items())
        if v not in (0, None, "") and k.count(".") <= 2
    ]
    more = len(shown) - _MAX_COUNTS
    text = ", ".join(shown[:_MAX_COUNTS])
    return text + (f" (+{more} more in --json)" if more > 0 else "")


def _print_text(report: dict[str, Any]) -> None:
    print("Jobs")
    for name, job in report["jobs"].items():
        run = job["last_run"]
        head = f"  {name:<11} {job['schedule']:<22}"
        nxt = job["next_run"]
        nxt = "now" if nxt == "now" else _short(nxt)
        if run is None:
            print(f"{head} never ran                      next: {nxt}")
            continue
        took = f" ({run['duration_seconds']:.1f} s)" if run["duration_seconds"] is not None else ""
        print(f"{head} last: {run['status']:<8} {_short(run['started_at'])}{took}  next: {nxt}")
        counts = _headline_counts(run["counts"])
        if counts:
            print(f"  {'':<11} counts: {counts}")
        for system, figures in run["api_calls"].items():
            if isinstance(figures, dict):
                print(
                    f"  {'':<11} API {system}: {figures.get('calls', '?')} calls, "
                    f"{figures.get('used', '?')}/{figures.get('limit', '?')} of the budget used"
                )
        if run["error"]:
            print(f"  {'':<11} error: {run['error']}")
        if job["last_success_at"] and run["status"] != "success":
            print(f"  {'':<11} last success: {_short(job['last_success_at'])}")
    gaps = report["incomplete_inputs"]
    if gaps["streams"]:
        held = "every verdict is held" if gaps["verdicts_held"] else "verdicts not held yet"
        print(f"Incomplete inputs ({held}; a complete sync clears them):")
        for g in gaps["streams"]:
            print(f"  {g['connector']}/{g['stream']} since {_short(g['since'])}: {g['reason']}")
    else:
        print("Incomplete inputs: none")
    print("Watermarks")
    if not report["watermarks"]:
        print("  (none yet)")
    for w in report["watermarks"]:
        print(
            f"  {w['connector']}/{w['stream']:<24} {_short(w['cursor_updated_at'])}"
            f"  full sync {_short(w['last_full_sync_at'])}"
            f"  reconciled {_short(w['last_reconciled_at'])}"
        )
    q = report["quarantine"]
    streams = ", ".join(f"{s['connector']}/{s['stream']} {s['count']}" for s in q["streams"])
    print(f"Quarantine: {q['total']} unresolved" + (f" ({streams})" if streams else ""))
    orphans = {k: v for k, v in report["orphans"].items() if k != "total" and v}
    listed = ", ".join(f"{k} {v}" for k, v in orphans.items())
    print(
        f"Orphans (kept; such contacts are not evaluated): {report['orphans']['total']}"
        + (f" ({listed})" if listed else "")
    )
    if report["rejected_config_edits"]:
        print("Rejected config edits (the last valid config keeps running):")
        for r in report["rejected_config_edits"]:
            for line in r["errors"] if isinstance(r["errors"], list) else [r["errors"]]:
                print(f"  {r['job']} run {r['run_id']}: {line}")
    else:
        print("Rejected config edits: none")
    if report["held_writebacks"]:
        for h in report["held_writebacks"]:
            print(f"Held writeback: run {h['run_id']} ({h['job']}): {h['reason']}")
    else:
        print("Held writebacks: none")
    o = report["writeback_outbox"]
    print(f"Writeback outbox: {o['pending']} pending, {o['failed']} failed")
    ev = ", ".join(f"{k} {v}" for k, v in report["evaluations"].items()) or "none yet"
    print(f"Evaluations: {ev}")
    for line in status_lines(report["privacy"]):
        print(line)


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Print the status report (text, or JSON with ``--json``).

    Exit 0, or 2 when the configuration on disk has problems (the same ``validate`` reports):
    the report is printed first, since the last valid configuration may still be running,
    then the problems, one line each on stderr.
    """
    checked = check_configuration(ctx)
    if checked.settings is None:
        checked.raise_if_invalid()
    require_existing_store(ctx)
    report = collect(ctx)
    if getattr(args, "json", False):
        emit_json({**report, "config_problems": checked.problems})
    else:
        _print_text(report)
    for line in checked.problems:
        error(line)
    return 2 if checked.problems else 0
