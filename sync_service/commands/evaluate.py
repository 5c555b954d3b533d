"""``sync-service evaluate``.

Compute eligibility, suspension, fatigue and score for every contact and account.
"""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "compute eligibility, suspension, fatigue and score for every contact and account"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service evaluate: not available yet (tracked in issue #7).")
    return 1
