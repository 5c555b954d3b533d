"""``sync-service forget``: erase one person's personal data on request, and audit it.

See :mod:`sync_service.privacy.forget` for what is erased and what is kept. Prints the
erasure's audit id and the rows changed per table; never the person's data.
"""

from __future__ import annotations

import argparse
import getpass

from sync_service.commands.console import emit_json
from sync_service.context import AppContext
from sync_service.ops.runs import utcnow
from sync_service.privacy.forget import forget

HELP = "erase a person's personal data from the store (GDPR/CCPA request), leaving a tombstone"


def add_subject_arguments(parser: argparse.ArgumentParser) -> None:
    """``--contact ID | --email ADDRESS``: how a person is named (forget, export-subject)."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact", metavar="ID", help="a Salesforce contact or Gainsight person id")
    who.add_argument("--email", metavar="ADDRESS", help="the person's e-mail address")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    add_subject_arguments(parser)
    parser.add_argument(
        "--reason", required=True, help="why (e.g. the request's ticket); kept in the audit"
    )
    parser.add_argument(
        "--by", metavar="WHO", help="who asked for it (default: the operating-system user)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Erase and print the audit figures; exit 1 while a sync runs, 2 on bad input."""
    result = forget(
        ctx.engine,
        ctx.privacy_key(),
        contact=args.contact,
        email=args.email,
        reason=args.reason,
        requested_by=args.by or getpass.getuser(),
        now=utcnow(),
        via="cli",
    )
    if args.json:
        emit_json(result.as_dict())
        return 0
    touched = ", ".join(f"{t} {n}" for t, n in sorted(result.tables.items())) or "no rows"
    held = "" if result.found else " (not in the store yet: kept out of every later sync)"
    print(
        f"erasure {result.erasure_id} recorded{held}: {touched}; {result.tombstones} tombstone(s)"
    )
    return 0
