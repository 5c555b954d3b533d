"""``sync-service sandbox``.

Start the local Salesforce and Gainsight sandbox for a person to point a config at.
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "start the local Salesforce and Gainsight sandbox for a person to point a config at"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service sandbox: not available yet (tracked in issue #3).")
    return 1
