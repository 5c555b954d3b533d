"""The ``sync-service`` command line.

Exit codes: 0 ok, 1 run failed, 2 bad input or config. Errors are one line per problem on
stderr, never a traceback (``--debug`` shows one): an error nobody planned for becomes one line
naming the file its details (the traceback) were written to, and an error log entry. A reader
that stops early (``sync-service status | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from canonical.errors import ConfigError, ServiceError
from sync_service import __version__
from sync_service.commands import COMMANDS
from sync_service.commands.console import error
from sync_service.context import AppContext

JSON_COMMANDS = {"status", "explain", "run-once", "check", "match"}

#: The log of unexpected errors: one entry per error with its traceback, appended to a file in
#: the temporary folder (the settings may be what failed, so the store's folder is not known).
CRASH_LOG = "advocate-sync-errors.log"


def _load(module: str) -> ModuleType:
    return importlib.import_module(f"sync_service.commands.{module}")


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the line, if it is a known one, read before any parsing.

    Only that command's module is then imported: the others pull in FastAPI, matplotlib or the
    sandbox, seconds of imports that a scheduled ``run-once`` has no use for.
    """
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
        elif arg in ("-h", "--help", "--version"):
            return None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: with the chosen command alone when ``argv`` names one, else all.

    Without a known command (``--help``, a typo, nothing) every command is loaded, so the help
    lists them all and a misspelt command gets argparse's list of choices.
    """
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
    chosen = _chosen(argv) if argv is not None else None
    for name, module in COMMANDS.items():
        if chosen is not None and name != chosen:
            continue
        mod = _load(module)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if name in JSON_COMMANDS:
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser(sys.argv[1:] if argv is None else argv)
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
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        where = _write_details(args.command, exc)
        error(
            f"unexpected error in '{args.command}': {_one_line(exc)}; details in {where} "
            "(please report it with that file)"
        )
        return 1
    finally:
        ctx.close()
        _flush_stdout()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _write_details(command: str, exc: BaseException) -> str:
    """Append the traceback to the crash log; return its path (or why it could not)."""
    path = Path(tempfile.gettempdir()) / CRASH_LOG
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now(UTC).isoformat()} sync-service {command} ---\n")
            fh.write("".join(traceback.format_exception(exc)))
    except OSError as write_error:
        return f"nowhere ({write_error.strerror}; run with --debug to see them)"
    return str(path)


def _silence_stdout() -> None:
    """The reader went away (``| head``): send whatever is still buffered nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to silence
        pass


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError):
        pass


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
