"""``sync-service sync``: pull Salesforce and Gainsight into the store.

Incremental by default (from each stream's watermark, minus the overlap window); ``--full``
re-reads everything without dropping data; ``--reconcile`` also marks records the CRM no
longer has (hard deletes) and refreshes formula fields.
"""

from __future__ import annotations

import argparse

from sync_service.commands.console import StageProgress, emit_json, print_run
from sync_service.context import AppContext
from sync_service.ops.runs import Run
from sync_service.pipeline import SYNC_JOBS, reconcile_job, sync_job

HELP = "pull Salesforce and Gainsight into the store (incremental; --full to resync)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--source",
        choices=SYNC_JOBS,
        action="append",
        help="sync only this source (repeatable; default: every configured source)",
    )
    parser.add_argument(
        "--full", action="store_true", help="re-read every record (upserts; nothing is dropped)"
    )
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="full pass that also marks hard-deleted records and refreshes formula fields",
    )
    parser.add_argument("--json", action="store_true", help="print the run records as JSON")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Sync and print one summary per source; exit 0 only when every run succeeded."""
    from sync_service.factory import source_enabled

    runs: list[Run] = []
    with StageProgress() as bars:
        if args.reconcile:
            runs.append(reconcile_job(ctx))
        else:
            for system in args.source or SYNC_JOBS:
                if args.source or source_enabled(ctx.settings, system):
                    runs.append(sync_job(ctx, system, full=args.full, progress=bars))
    if args.json:
        emit_json([r.as_dict() for r in runs])
    else:
        for r in runs:
            print_run(r)
    return 0 if all(r.status == "success" for r in runs) else 1
