"""``sync-service check CONTACT_OR_EMAIL --type TYPE``: the Ask API's check on the command line.

Exit 0 when the ask is allowed, 1 when it is not, 2 for bad input (unknown contact included).
The check is audited like the API's (token name ``cli``).
"""

from __future__ import annotations

import argparse

from canonical.errors import ConfigError
from sync_service.commands.console import emit_json
from sync_service.context import AppContext
from sync_service.evaluate.ask_audit import AuditSink
from sync_service.evaluate.evaluation import SNAPSHOT_NAME, load_policy_or_last_valid
from sync_service.evaluate.guard import AskTarget, Caller, Guard
from sync_service.ops.runs import utcnow

HELP = "may this contact be asked now? (exit 0 allowed, 1 not allowed, 2 bad input)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument("contact", metavar="CONTACT_OR_EMAIL", help="Salesforce id or email")
    parser.add_argument("--type", required=True, dest="ask_type", help="the ask's type")
    parser.add_argument("--team", help="the team asking (caps by team apply)")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Check and print the verdict."""
    if not args.contact.strip() or not args.ask_type.strip():
        msg = "give a contact id or email and a non-empty --type"
        raise ConfigError(msg)
    policy, _ = load_policy_or_last_valid(ctx.settings.rules_file, ctx.var_dir / SNAPSHOT_NAME)
    audit = AuditSink(ctx.engine, interval=0)
    guard = Guard(ctx.engine, lambda: policy, None, audit, utcnow)
    outcome = guard.check(
        Caller("cli", args.team), AskTarget(args.contact, args.ask_type, args.team)
    )
    if outcome is None:
        # Never echo an email back: it would land in shell logs and CI output.
        what = "with that email" if "@" in args.contact else args.contact
        msg = f"no contact {what} in the store (synced contacts only)"
        raise ConfigError(msg)
    d = outcome.decision
    if ctx.json_output:
        emit_json(
            {
                "allowed": d.allowed,
                "status": d.status,
                "reasons": d.reasons,
                "next_available": d.next_available.isoformat() if d.next_available else None,
                "contact_id": outcome.contact_id,
                "account_id": outcome.account_id,
                "caps": [c.as_dict() for c in d.caps],
            }
        )
    else:
        word = "ALLOWED" if d.allowed else "NOT ALLOWED"
        print(f"{word}: {args.ask_type} for contact {outcome.contact_id} ({d.status})")
        for reason in d.reasons:
            print(f"  - {reason}")
        if not d.allowed:
            print(f"  next available: {d.next_available or '-'}")
        for c in d.caps:
            mark = "BLOCKS" if c.blocks else ("binds" if c.binding else "ok")
            window = f"{c.count}/{c.cap.max_asks} in {c.cap.window_days} days"
            print(f"  [cap] {c.cap.id}: {window} ({mark})")
    return 0 if d.allowed else 1
