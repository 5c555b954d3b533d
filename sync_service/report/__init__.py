"""The program report: figures from the store -> tables -> charts, for the CLI and the API.

Answers the advocacy program manager's questions from the data the service already holds:
how the pool of advocates changes, who is over-asked and who is never asked, where the program
lacks Eligible advocates, who asks for what, how many advocates stay available, who is asked
most, and which deals the advocates helped (and whether references win them). Every figure is
a grouped SQL query (:mod:`~sync_service.report.history`, :mod:`~sync_service.report.asks`,
:mod:`~sync_service.report.coverage`, :mod:`~sync_service.report.influence`), so a report over a
million contacts keeps memory flat; :mod:`~sync_service.report.charts` draws them as SVG and
:mod:`~sync_service.report.page` lays them out in one self-contained HTML page.
"""

from __future__ import annotations

from sync_service.report.build import (
    SECTION_KEYS,
    ReportOptions,
    build_report,
    options_from_settings,
)
from sync_service.report.tables import Report, Section, Table

__all__ = [
    "SECTION_KEYS",
    "Report",
    "ReportOptions",
    "Section",
    "Table",
    "build_report",
    "options_from_settings",
]
