"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no script.

The page fetches nothing (a Content-Security-Policy of ``default-src 'none'`` makes sure of
it), so it reads the same offline, attached to an email, or printed. Jinja2 escapes every
value from the store; only the SVG markup matplotlib produced is inserted as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from sync_service.report.charts import Chart, draw
from sync_service.report.tables import Report, Table, format_value

TITLE = "Advocate program report"
#: Tables up to this many rows are shown open; longer ones start folded (charts show them).
OPEN_ROWS = 25
#: Rows of one table shown on the page at most (a --by field may have thousands of values);
#: the CSV and JSON forms carry them all. Keeps the page well under 2 MB.
MAX_PAGE_ROWS = 500

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("sync_service.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class _Cell:
    text: str
    kind: str
    href: str | None = None


def _cells(table: Table) -> list[dict[str, Any]]:
    rows = []
    keys = [c.key for c in table.columns]
    for row in table.rows[:MAX_PAGE_ROWS]:
        cells = []
        for col, value in zip(table.columns, row, strict=True):
            if col.kind == "link":
                cells.append(_Cell("-" if not value else "", col.kind, value or None))
            else:
                cells.append(_Cell(format_value(value, col.kind), col.kind))
        gap = "gap" in keys and bool(row[keys.index("gap")])
        rows.append({"cells": cells, "gap": gap})
    return rows


def render_html(
    report: Report, *, csv_base: str | None = None, charts: dict[str, list[Chart]] | None = None
) -> str:
    """The whole page.

    Args:
        report: the figures.
        csv_base: where each table's CSV is served (``/report/``), or None for a file.
        charts: charts already drawn (default: drawn here).
    """
    charts = charts if charts is not None else draw(report)
    sections = []
    for s in report.sections:
        sections.append(
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro,
                "figures": [
                    {"label": f.label, "shown": format_value(f.value, f.kind)} for f in s.figures
                ],
                "tables": [
                    {
                        "key": t.key,
                        "title": t.title,
                        "columns": t.columns,
                        "rows": t.rows,
                        "cells": _cells(t) if t.in_page else [],
                        "in_page": t.in_page,
                    }
                    for t in s.tables
                ],
            }
        )
    return _ENV.get_template("report.html.j2").render(
        title=TITLE,
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M"),
        window_days=report.window_days,
        history_weeks=report.history_weeks,
        sections=sections,
        charts=charts,
        csv_base=csv_base,
        open_rows=OPEN_ROWS,
    )
