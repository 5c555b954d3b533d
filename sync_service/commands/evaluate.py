"""``sync-service evaluate``: eligibility, suspension, fatigue and score for everyone."""

from __future__ import annotations

import argparse

from sync_service.commands.console import StageProgress, error
from sync_service.context import AppContext
from sync_service.evaluate.evaluation import (
    SNAPSHOT_NAME,
    EvaluationSummary,
    evaluate_all,
    load_policy_or_last_valid,
)
from sync_service.ops.locks import job_lock
from sync_service.ops.runs import run_record, utcnow
from sync_service.pipeline import current_streams, held_for_gaps, inputs_digest
from sync_service.sync import completeness
from sync_service.sync.changes import incremental_enabled

HELP = "compute eligibility, suspension, fatigue and score for every contact and account"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="report how many statuses would change, from what to what, and write nothing",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="evaluate every contact and account, not only those whose inputs changed "
        "(same verdicts; the weekly evaluate_full job does this too)",
    )


def _print(summary: EvaluationSummary) -> None:
    head = "would change" if summary.dry_run else "changed"
    print(
        f"policy {summary.policy_version} ({summary.policy_hash[:12]}): evaluated "
        f"{summary.contacts:,} contacts and {summary.accounts:,} accounts; "
        f"{summary.changed:,} statuses {head}"
    )
    if summary.removed:
        gone = "would be dropped" if summary.dry_run else "dropped"
        print(f"  {summary.removed:,} verdicts of records deleted in the CRM {gone}")
    for (entity, old, new), n in summary.transitions.most_common():
        examples = ", ".join(summary.examples.get((entity, old, new), []))
        print(f"  {entity:<8} {old or '(none)':>13} -> {new:<13} {n:>9,}   e.g. {examples}")
    if summary.dry_run:
        print("dry run: nothing was written")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Evaluate the store with the policy (the last valid one if the file is broken).

    Exit 0 on success; 2 when the rules file is invalid (the run still used the last valid
    policy, and says so); 1 when the run failed.
    """
    return _run(args, ctx)


def _run(args: argparse.Namespace, ctx: AppContext) -> int:
    settings = ctx.settings
    snapshot = ctx.var_dir / SNAPSHOT_NAME
    policy, problems = load_policy_or_last_valid(settings.rules_file, snapshot)
    for line in problems:
        error(line)
    if problems:
        error(
            f"{settings.rules_file} is invalid: evaluating with the last valid policy "
            f"{policy.version} ({policy.hash[:12]}); fix the file and run validate"
        )
    now = utcnow()
    if args.dry_run:
        finished, running = completeness.classify(ctx.engine, current_streams(ctx))
        found = completeness.blocking(policy, finished)
        if found:
            error(
                f"inputs incomplete ({', '.join(g.describe() for g in found)}); a real run "
                "would hold every verdict"
            )
        if pending := completeness.blocking(policy, running):
            error(
                f"a sync is running ({', '.join(g.describe() for g in pending)}); a real run "
                "would wait for it to commit"
            )
    with StageProgress() as bars:
        if args.dry_run:
            summary = evaluate_all(ctx.engine, policy, now, None, dry_run=True, progress=bars)
        else:
            with (
                job_lock(ctx.engine, "stage.evaluate"),
                run_record(ctx.engine, "evaluate") as run_,
            ):
                run_.config_errors = problems
                if held_for_gaps(ctx, policy, run_):
                    error(run_.error or "inputs incomplete")
                    return 2 if problems else 1
                summary = evaluate_all(
                    ctx.engine,
                    policy,
                    now,
                    run_,
                    progress=bars,
                    incremental=not args.full and incremental_enabled(),
                    inputs_digest=inputs_digest(ctx, policy, run_),
                )
    _print(summary)
    return 2 if problems else 0
