"""``sync-service match OPPORTUNITY_ID``: the advocates proposed on one deal, and why.

Shows what the last match run stored (the same list the Opportunity's Suggested_References__c
and ``GET /v1/opportunities/{id}/references`` give). ``--json`` prints a list of
``{"contact_id", "account_id", "score", "terms"}``, best first.
"""

from __future__ import annotations

import argparse

from sync_service.commands.console import emit_json, error, shown
from sync_service.context import AppContext, require_existing_store
from sync_service.match.stage import known_opportunity, suggestions_for

HELP = "show the reference advocates proposed on an open deal (by opportunity id)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("opportunity_id", metavar="OPPORTUNITY_ID", help="the deal's Salesforce id")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Print the deal's suggestions; exit 2 when the store has no such deal."""
    require_existing_store(ctx)
    with ctx.engine.connect() as conn:
        if not known_opportunity(conn, args.opportunity_id):
            error(
                f"no opportunity '{args.opportunity_id}' in the store; run sync first or check it"
            )
            return 2
        found = suggestions_for(conn, args.opportunity_id)
    if ctx.json_output:
        emit_json(found)
        return 0
    if not found:
        why = (
            "matching is off (matching_file not set)"
            if ctx.settings.matching_file is None
            else "closed, below the threshold, or no eligible advocate matches"
        )
        print(f"opportunity {args.opportunity_id}: no suggestions ({why})")
        return 0
    print(f"opportunity {args.opportunity_id}: {len(found)} suggested references")
    for rank, s in enumerate(found, start=1):
        terms = ", ".join(f"{k} {v}" for k, v in s["terms"].items()) or "no shared terms"
        score = shown(s["score"])
        print(f"  {rank}. {s['contact_id']}  account {s['account_id']}  score {score}  ({terms})")
    return 0
