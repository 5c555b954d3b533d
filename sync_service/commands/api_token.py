"""``sync-service api-token create|list|revoke``: the Ask API's per-team tokens."""

from __future__ import annotations

import argparse

from canonical.errors import ConfigError
from sync_service.api.tokens import ROLES, create_token, list_tokens, revoke_token
from sync_service.commands.console import emit_json
from sync_service.context import AppContext
from sync_service.ops.runs import utcnow

HELP = "create, list or revoke API tokens (per team; admin; read-only viewer)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--team", help="the team the token acts for (required for team tokens)")
    create.add_argument("--name", help="a unique name for the token (default: generated)")
    create.add_argument(
        "--role", choices=ROLES, default="team", help="team (default), admin or viewer (read only)"
    )
    listing = sub.add_parser("list", help="list tokens (never the tokens themselves)")
    for p in (create, listing):
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
    revoke = sub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name", metavar="NAME")


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run the action; 0 ok, 1 nothing to revoke, 2 bad input."""
    engine = ctx.engine
    if args.action == "create":
        record, token = create_token(
            engine, team=args.team, name=args.name, role=args.role, now=utcnow()
        )
        if ctx.json_output:
            emit_json(
                {"name": record.name, "team": record.team, "role": record.role, "token": token}
            )
        else:
            print(f"token '{record.name}' ({record.role}, team {record.team or '-'}):")
            print(token)
            print("Store it now: it is shown once; only its hash is kept.")
        return 0
    if args.action == "list":
        rows = list_tokens(engine)
        if ctx.json_output:
            emit_json(
                [
                    {
                        "name": t.name,
                        "team": t.team,
                        "role": t.role,
                        "created_at": t.created_at.isoformat(),
                        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                    }
                    for t in rows
                ]
            )
            return 0
        if not rows:
            print("no tokens; create one with: sync-service api-token create --team TEAM")
        for t in rows:
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            print(f"{t.name:<32} {t.role:<7} {t.team or '-':<20} {t.created_at:%Y-%m-%d}  {state}")
        return 0
    if not revoke_token(engine, args.name, utcnow()):
        msg = f"no active token named '{args.name}'; see sync-service api-token list"
        raise ConfigError(msg)
    print(f"token '{args.name}' revoked")
    return 0
