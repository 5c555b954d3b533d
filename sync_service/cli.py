"""The ``sync-service`` command line.

Exit codes: 0 ok, 1 run failed, 2 bad input or config. Errors are one line per problem on
stderr, never a traceback (``--debug`` shows one).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from canonical.errors import ConfigError, ServiceError
from sync_service import __version__
from sync_service.commands import COMMANDS
from sync_service.commands.console import error
from sync_service.context import AppContext

JSON_COMMANDS = {"status", "explain", "run-once", "check"}


def _load(module: str) -> ModuleType:
    return importlib.import_module(f"sync_service.commands.{module}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command and its help."""
    parser = argparse.ArgumentParser(
        prog="sync-service",
        description=(
            "Keep customer advocates from being over-asked: sync Salesforce and Gainsight, "
            "apply the advocacy rules, write the verdicts back to the CRM."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: $SYNC_CONFIG or config/settings.yaml)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = _load(module)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if name in JSON_COMMANDS:
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    ctx = AppContext(config_path=args.config, json_output=getattr(args, "json", False))
    try:
        if args.command not in ("serve", "demo", "validate"):
            # Every command logs the same redacted way; serve and demo set up their own, and
            # validate must report bad settings with every other problem, not stop at them.
            from sync_service.ops.logs import configure_logging

            configure_logging(ctx.settings)
        return int(_load(args._module).run(args, ctx))
    except ConfigError as exc:
        for line in exc.problems:
            error(line)
        if args.debug:
            raise
        return exc.exit_code
    except ServiceError as exc:
        error(str(exc))
        if args.debug:
            raise
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted; committed work is kept and the next run resumes")
        return 1
    finally:
        ctx.close()


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
