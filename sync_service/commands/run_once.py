"""``sync-service run-once``: one full cycle: sync, evaluate, write back."""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "one full cycle: sync, evaluate, write back"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service run-once: not available yet (tracked in issue #9).")
    return 1
