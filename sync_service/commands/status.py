"""``sync-service status``: show the last runs, watermarks, quarantine and API budget."""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "show the last runs, watermarks, quarantine and API budget"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service status: not available yet (tracked in issue #9).")
    return 1
