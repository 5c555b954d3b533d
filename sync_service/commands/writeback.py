"""``sync-service writeback``: write changed results to the CRM fields (--dry-run, --confirm)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sync_service.commands.console import StageProgress
from sync_service.context import AppContext
from sync_service.ops.locks import job_lock
from sync_service.ops.runs import run_record
from sync_service.writeback.job import writeback_job
from sync_service.writeback.report import WritebackReport

HELP = "write changed results back to the CRM fields (--dry-run, --confirm)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would change (counts per field, sample records old -> new); write nothing",
    )
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="release a writeback held because too many statuses would change",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="send records the CRM refused before once more (after fixing the cause)",
    )


def _value(v: Any) -> str:
    return "∅" if v is None else json.dumps(v, ensure_ascii=False)


def print_report(report: WritebackReport) -> None:
    """Counts per field, samples old -> new, conflicts and failures, as plain lines."""
    c = report.counts
    head = "would change" if report.dry_run else "changed"
    print(
        f"{c['records']:,} records checked: {c['changed']:,} {head}, {c['unchanged']:,} unchanged, "
        f"{c['overridden']:,} left alone (override), {c['conflicts']:,} conflicts, "
        f"{c['missing']:,} not in the CRM copy"
    )
    for key, n in sorted(report.field_counts.items()):
        print(f"  {key}: {n:,}")
    if report.samples:
        print("samples:")
        for s in report.samples:
            changes = ", ".join(
                f"{f}: {_value(o)} -> {_value(n)}" for f, (o, n) in s.changes.items()
            )
            print(f"  {s.object_name} {s.record_id}: {changes}")
    for k in report.conflicts:
        action = "overwritten (owned field)" if k.overwritten else "left as is"
        print(
            f"conflict: {k.object_name} {k.record_id} {k.field}: we wrote {_value(k.written)}, "
            f"now {_value(k.current)}, rules say {_value(k.desired)}: {action}"
        )
    if report.held:
        print(report.held if not report.dry_run else f"(a real run would be held) {report.held}")
    if not report.dry_run and not report.held:
        print(
            f"confirmed {c['success']:,} records ({c['fields_written']:,} values) in "
            f"{c['calls']:,} API calls; {c['failed']:,} refused, {c['pending']:,} pending"
        )
        for f in report.failures:
            print(f"refused: {f.object_name} {f.record_id}: {f.code}: {f.message}")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run the writeback (or its dry run); exit 1 when held, partial or failed."""
    return _run(args, ctx)


def _run(args: argparse.Namespace, ctx: AppContext) -> int:
    settings = ctx.settings
    if args.dry_run:
        report = writeback_job(
            ctx.engine, settings, mappings=ctx.mappings(), dry_run=True, confirm=args.confirm
        )
        print_report(report)
        return 0
    if not settings.writeback.enabled:
        print("writeback is disabled (writeback.enabled: false); nothing written")
        return 0
    # The pipeline's writeback stage takes the same lock: never two writebacks at once.
    with (
        StageProgress() as bars,
        job_lock(ctx.engine, "stage.writeback"),
        run_record(ctx.engine, "writeback") as run_,
    ):
        report = writeback_job(
            ctx.engine,
            settings,
            run=run_,
            mappings=ctx.mappings(run_),
            confirm=args.confirm,
            retry_failed=args.retry_failed,
            progress=bars,
        )
    print_report(report)
    return 0 if run_.status == "success" else 1
