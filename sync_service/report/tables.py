"""The report as data: sections of tables, and their JSON and CSV forms.

A :class:`Table` is what a chart is drawn from and what ``/report/{key}.csv`` serves; its
columns say how a value is shown to people (counts with thousands separators, shares as
percentages, links). The HTML page, the JSON file and the CSV files all come from the same
:class:`Report`, so they cannot disagree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

ColumnKind = Literal["text", "count", "number", "share", "date", "link"]

#: How a value is shown when the CRM has none (a team, an ask type, a segment).
NOT_SET = "(not set)"


@dataclass(frozen=True)
class Column:
    """One column: its key (JSON and CSV header), its heading and how values are shown."""

    key: str
    heading: str
    kind: ColumnKind = "text"


@dataclass
class Table:
    """Rows behind one chart (or one list), keyed for ``/report/{key}.csv``."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: False for long tables only the files carry (the page shows their chart and a summary).
    in_page: bool = True

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column key."""
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]

    def column(self, key: str) -> list[Any]:
        """Every value of one column."""
        i = next(n for n, c in enumerate(self.columns) if c.key == key)
        return [row[i] for row in self.rows]

    def to_csv(self) -> str:
        """The table as CSV text (header of column keys; dates ISO; empty for none)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow([_plain(v) for v in row])
        return out.getvalue()


@dataclass(frozen=True)
class Figure:
    """A headline number shown above a section's charts."""

    key: str
    label: str
    value: int | float | None
    kind: ColumnKind = "count"


@dataclass
class Section:
    """One part of the report: headline figures and the tables its charts are drawn from."""

    key: str
    title: str
    intro: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def table(self, key: str) -> Table:
        """The section's table called ``key``."""
        return next(t for t in self.tables if t.key == key)


@dataclass
class Report:
    """Every section, with the moment and window the figures describe."""

    generated_at: datetime
    window_days: int
    history_weeks: int
    sections: list[Section]
    crm_url: str | None = None

    def section(self, key: str) -> Section:
        """The section called ``key``."""
        return next(s for s in self.sections if s.key == key)

    def tables(self) -> Iterator[Table]:
        """Every table, section by section."""
        for s in self.sections:
            yield from s.tables

    def table(self, key: str) -> Table | None:
        """The table called ``key`` (a section's key names its main table), or None."""
        return next((t for t in self.tables() if t.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--format json``: sections, figures and table rows."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "window_days": self.window_days,
            "history_weeks": self.history_weeks,
            "sections": {
                s.key: {
                    "title": s.title,
                    "figures": {f.key: f.value for f in s.figures},
                    "tables": {
                        t.key: [{k: _plain(v) for k, v in r.items()} for r in t.records()]
                        for t in s.tables
                    },
                }
                for s in self.sections
            },
        }


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def format_value(value: Any, kind: ColumnKind) -> str:
    """A value as people read it: ``12,345``, ``37.5%``, ``2026-12-07``, ``-`` for none."""
    if value is None or value == "":
        return "-"
    if kind == "count" and isinstance(value, int | float):
        return f"{value:,.0f}"
    if kind == "number" and isinstance(value, int | float):
        return f"{value:,.1f}"
    if kind == "share" and isinstance(value, int | float):
        return f"{100 * value:.1f}%"
    if isinstance(value, date | datetime):
        return value.isoformat()[:10]
    return str(value)


def share(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is no whole."""
    return part / whole if whole else None


def cols(*spec: tuple[str, str] | tuple[str, str, ColumnKind]) -> tuple[Column, ...]:
    """Columns from ``(key, heading[, kind])`` tuples."""
    return tuple(Column(*s) for s in spec)


def sorted_rows(rows: Sequence[tuple[Any, ...]], *keys: int) -> list[tuple[Any, ...]]:
    """Rows sorted by the given positions, ``None`` first (stable)."""
    return sorted(rows, key=lambda r: tuple((r[k] is not None, r[k]) for k in keys))
