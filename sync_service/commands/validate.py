"""``sync-service validate``.

Check mappings/, config/rules.yaml and settings offline (--online also asks the CRM).
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "check mappings/, config/rules.yaml and settings offline (--online also asks the CRM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service validate: not available yet (tracked in issue #6).")
    return 1
