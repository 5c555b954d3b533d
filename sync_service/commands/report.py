"""``sync-service report``: the program figures as one HTML page, JSON, or CSV files.

The HTML page is self-contained (inline charts and styles, no script): open it offline,
attach it to an email, print it. ``--format json`` writes the same figures as one document;
``--format csv`` one file per table into a directory.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from canonical.errors import ConfigError
from sync_service.commands.console import emit_json
from sync_service.context import AppContext
from sync_service.ops.runs import utcnow
from sync_service.report import build_report, options_from_settings
from sync_service.report.page import render_html
from sync_service.report.tables import Report

HELP = "write the program report (pool, utilisation, coverage, demand, retention) as HTML"

DEFAULT_HTML = Path("var/report/advocate-report.html")
DEFAULT_CSV_DIR = Path("var/report/csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's options."""
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help=(
            f"where to write: the HTML file (default {DEFAULT_HTML}), the JSON file (default: "
            f"standard output), or the folder of CSV files (default {DEFAULT_CSV_DIR})"
        ),
    )
    parser.add_argument(
        "--format", choices=("html", "json", "csv"), default="html", help="default: html"
    )
    parser.add_argument(
        "--window-days",
        type=int,
        metavar="DAYS",
        help="asks counted over this many days up to today (default: report.window_days, 90)",
    )
    parser.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="FIELD",
        help="also count Eligible advocates by this mapped field (accounts.X or contacts.X); "
        "repeatable",
    )


def write_report(report: Report, fmt: str, out: Path | None) -> Path | None:
    """Write ``report`` in ``fmt``; the path written (None: JSON to standard output)."""
    if fmt == "json" and out is None:
        emit_json(report.as_dict())
        return None
    if fmt == "csv":
        folder = out or DEFAULT_CSV_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for table in report.tables():
            (folder / f"{table.key}.csv").write_text(table.to_csv(), encoding="utf-8")
        return folder
    path = out or DEFAULT_HTML
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        import json

        path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(render_html(report), encoding="utf-8")
    return path


def build(
    ctx: AppContext, *, window_days: int | None = None, by: list[str] | None = None
) -> Report:
    """The report of the store ``ctx`` points at, with the settings' options."""
    if window_days is not None and window_days < 1:
        msg = f"--window-days {window_days}: give a number of days of 1 or more"
        raise ConfigError(msg)
    mappings = ctx.mappings()
    options = options_from_settings(ctx.settings, mappings, window_days=window_days, by=by or [])
    return build_report(ctx.engine, options, utcnow())


def write_for_store(database_url: str, config_path: str | None, out: Path) -> Path:
    """Write the HTML report of the store at ``database_url`` (the demo's last step)."""
    ctx = AppContext(config_path=config_path, env={**os.environ, "DATABASE_URL": database_url})
    try:
        return write_report(build(ctx), "html", out) or out
    finally:
        ctx.close()


def run(args: argparse.Namespace, ctx: AppContext) -> int:
    """Build the report and write it; print where."""
    report = build(ctx, window_days=args.window_days, by=args.by)
    written = write_report(report, args.format, args.out)
    if written is not None:
        print(f"report written to {written}")
    return 0
