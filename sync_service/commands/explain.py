"""``sync-service explain``: show why a contact or account has its status."""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "show why a contact or account has its status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service explain: not available yet (tracked in issue #7).")
    return 1
