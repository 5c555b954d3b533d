"""``sync-service serve``: run the scheduled jobs with health and metrics over HTTP."""

from __future__ import annotations

import argparse

from sync_service.context import AppContext

HELP = "run the scheduled jobs with health and metrics over HTTP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Not built yet: say so plainly."""
    print("sync-service serve: not available yet (tracked in issue #9).")
    return 1
