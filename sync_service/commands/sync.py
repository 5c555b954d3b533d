"""``sync-service sync``.

Pull Salesforce and Gainsight into the store (incremental; --full to resync).
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "pull Salesforce and Gainsight into the store (incremental; --full to resync)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service sync: not available yet (tracked in issue #4).")
    return 1
