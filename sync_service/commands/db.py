"""``sync-service db upgrade``: apply the store's migrations."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import Engine

from sync_service.context import AppContext
from sync_service.store.engine import current_revision, head_revision, upgrade

HELP = "manage the store schema (db upgrade, db current)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the sub-actions."""
    parser.add_argument(
        "action",
        choices=["upgrade", "current"],
        help="upgrade: apply all migrations (safe to repeat); current: print the revision",
    )


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Apply or report migrations."""
    engine = ctx.raw_engine()
    try:
        return _run(args, engine)
    finally:
        engine.dispose()  # its own engine, not ctx.engine: AppContext.close() does not see it


def _run(args: argparse.Namespace, engine: Engine) -> int:
    url = engine.url.render_as_string(hide_password=True)
    if args.action == "upgrade":
        upgrade(engine)
        print(f"store at {url} is at schema revision {current_revision(engine)}")
        return 0
    rev = current_revision(engine)
    head = head_revision()
    state = (
        "up to date" if rev == head else f"behind (newest is {head}); run: sync-service db upgrade"
    )
    print(f"store at {url}: revision {rev or 'none'}, {state}")
    return 0
