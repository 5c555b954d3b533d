"""``sync-service writeback``.

Write changed results back to the CRM fields (--dry-run, --confirm).
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "write changed results back to the CRM fields (--dry-run, --confirm)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service writeback: not available yet (tracked in issue #8).")
    return 1
