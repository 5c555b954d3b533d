"""``sync-service demo``.

Start the sandbox in-process and run one full cycle on a fresh SQLite store.
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "start the sandbox in-process and run one full cycle on a fresh SQLite store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service demo: not available yet (tracked in issue #3).")
    return 1
