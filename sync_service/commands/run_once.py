"""``sync-service run-once``: one full cycle, sync then evaluate then write back.

It starts with the checks of ``validate`` and refuses to start (exit 2, the same lines) on any
problem. A mapping or rules edit made invalid while the cycle runs is rejected: the cycle goes on
with the last valid version, and ends with exit 1 and a one-line ``rejected edit`` summary.
"""

from __future__ import annotations

import argparse

from sync_service.commands.console import StageProgress, emit_json, print_run, rejected_edit_line
from sync_service.commands.validate import preflight
from sync_service.context import AppContext
from sync_service.pipeline import run_cycle

HELP = "one full cycle: sync every configured source, evaluate, write back"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--full", action="store_true", help="re-read every record first")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run the cycle; exit 0 only when every stage succeeded on the configuration on disk.

    Partial, held and failed runs are not green (1), and neither is a run that used the last
    valid mappings or rules because an edit was rejected (1).
    """
    preflight(ctx)
    with StageProgress() as progress:
        runs = run_cycle(ctx, full=args.full, progress=progress)
    rejected = rejected_edit_line(runs)
    if args.json:
        emit_json({"runs": [r.as_dict() for r in runs], "rejected_edit": rejected})
    else:
        for r in runs:
            print_run(r)
        if rejected:
            print(rejected)
    ok = all(r.status == "success" for r in runs) and rejected is None
    return 0 if ok else 1
