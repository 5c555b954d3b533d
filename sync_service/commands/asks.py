"""``sync-service asks``: run the asks job once (stamp CRM requests, create logged asks)."""

from __future__ import annotations

import argparse

from sync_service.commands.console import print_run
from sync_service.context import AppContext
from sync_service.pipeline import asks_job

HELP = "stamp new CRM requests Clear/Conflict/Override and send logged asks to the CRM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Run once; 0 when the run succeeded, 1 otherwise."""
    result = asks_job(ctx)
    print_run(result)
    return 0 if result.status in ("success",) else 1
