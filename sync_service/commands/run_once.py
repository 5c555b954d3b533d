"""``sync-service run-once``: one full cycle, sync then evaluate then write back."""

from __future__ import annotations

import argparse

from sync_service.commands.console import StreamProgress, emit_json, print_run
from sync_service.context import AppContext
from sync_service.pipeline import run_cycle

HELP = "one full cycle: sync every configured source, evaluate, write back"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("--full", action="store_true", help="re-read every record first")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run the cycle; exit 0 only when every stage succeeded (partial and held are not green)."""
    bars = StreamProgress()
    try:
        runs = run_cycle(ctx, full=args.full, progress=bars)
    finally:
        bars.close()
    if args.json:
        emit_json({"runs": [r.as_dict() for r in runs]})
    else:
        for r in runs:
            print_run(r)
    return 0 if all(r.status == "success" for r in runs) else 1
