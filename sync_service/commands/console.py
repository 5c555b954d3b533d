"""What the commands print: plain lines, JSON, progress on a terminal, run and cycle summaries."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import IO, Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from sqlalchemy.engine import Engine

from canonical.model import STATUS_PRECEDENCE, System
from sync_service.ops.runs import Run
from sync_service.store.models import advocacy_asks, contacts, evaluations


def emit_json(data: Any, stream: IO[str] | None = None) -> None:
    """Print ``data`` as indented JSON (dates and other objects as strings)."""
    print(json.dumps(data, indent=2, default=str, sort_keys=False), file=stream or sys.stdout)


#: How an absent value is shown to people.
NO_VALUE = "—"


def shown(value: Any) -> str:
    """A value as people read it: ``yes``/``no``, ``—`` for none, times to the minute (UTC).

    Dates and times may come as objects or as ISO strings (from JSON and the store).
    """
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value.strftime("%Y-%m-%d %H:%M UTC"))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value) or NO_VALUE
    return str(value)


def error(message: str) -> None:
    """Print one error line to stderr."""
    print(f"error: {message}", file=sys.stderr)


class StageProgress:
    """Progress bars on stderr for the long stages, one per label; nothing off a terminal.

    Drawn with ``rich``: label, bar, done/total, rate and elapsed time; a stage that gives no
    total gets a count and a rate. Log lines printed meanwhile go above the bars, never into
    them: while the bars are live, stderr and the log handlers that write to it go through the
    bars' console. Logs, not bars, are what an unattended run leaves behind: off a terminal
    this draws nothing.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self._tasks: dict[str, TaskID] = {}
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._bars = RichProgress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            redirect_stderr=True,
            redirect_stdout=True,
        )

    def __enter__(self) -> StageProgress:
        if self.enabled:
            terminal = sys.stderr
            self._bars.start()  # from here on sys.stderr writes above the bars
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is terminal:
                    self._handlers.append((handler, handler.setStream(sys.stderr)))
        return self

    def __call__(self, label: str, n: int, total: int | None = None) -> None:
        """Count ``n`` more units of ``label`` (out of ``total`` when known)."""
        if not self.enabled:
            return
        task = self._tasks.get(label)
        if task is None:
            task = self._bars.add_task(label, total=total, rate="")
            self._tasks[label] = task
        elif total is not None:
            self._bars.update(task, total=total)
        self._bars.advance(task, n)
        speed = self._bars.tasks[self._tasks[label]].speed
        self._bars.update(task, rate=f"{speed:,.0f}/s" if speed else "")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled:
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers.clear()
            self._bars.stop()


def rejected_edit_line(runs: list[Run]) -> str | None:
    """One line when any run used the last valid mappings or rules because an edit was rejected."""
    problems = list(dict.fromkeys(p for r in runs for p in r.config_errors))
    if not problems:
        return None
    jobs = ", ".join(dict.fromkeys(r.job for r in runs if r.config_errors))
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"rejected edit: {len(problems)} problem(s), the last valid configuration ran ({jobs}): "
        f"{problems[0]}{more}; fix it and run `sync-service validate`"
    )


_MARK = {"success": "ok", "partial": "PARTIAL", "failed": "FAILED", "held": "HELD"}


def print_run(run: Run) -> None:
    """One block per run: job, result, counts and API calls."""
    elapsed = ""
    if run.finished_at is not None:
        elapsed = f" in {(run.finished_at - run.started_at).total_seconds():.1f}s"
    print(f"{run.job}: {_MARK.get(run.status, run.status)}{elapsed} (run #{run.id})")
    if run.error:
        print(f"  {run.error}")
    for problem in run.config_errors:
        print(f"  rejected config edit: {problem}")
    labels = [*run.counts, *(f"api calls ({system})" for system in run.api_calls)]
    width = max([40, *map(len, labels)])  # per-field writeback counts have long names
    for key, value in sorted(run.counts.items()):
        shown = f"{value:>10,}" if isinstance(value, int) else str(value)
        print(f"  {key:<{width}} {shown}")
    for system, usage in sorted(run.api_calls.items()):
        used = usage.get("used")
        limit = usage.get("limit")
        budget = f", org usage {used:,}/{limit:,}" if used is not None and limit else ""
        label = f"api calls ({system})"
        print(f"  {label:<{width}} {usage.get('calls', 0):>10,}{budget}")


@dataclass
class CycleSummary:
    """The figures of one cycle."""

    pulled: dict[str, int] = field(default_factory=dict)
    contacts_by_status: dict[str, int] = field(default_factory=dict)
    accounts_by_status: dict[str, int] = field(default_factory=dict)
    most_asked: list[dict[str, Any]] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "pulled": self.pulled,
            "contacts_by_status": self.contacts_by_status,
            "accounts_by_status": self.accounts_by_status,
            "most_asked": self.most_asked,
            "written": self.written,
            "api_calls": self.api_calls,
            "runs": self.statuses,
        }


def summarise(engine: Engine, runs: list[Run], *, top: int = 5) -> CycleSummary:
    """Gather the cycle's figures from its runs and the store."""
    out = CycleSummary()
    for run in runs:
        out.statuses[run.job] = run.status
        for key, value in run.counts.items():
            if key.startswith("records.") and isinstance(value, int):
                name = f"{run.job}.{key.removeprefix('records.')}"
                out.pulled[name] = out.pulled.get(name, 0) + value
            if key.startswith("writeback.") and isinstance(value, int):
                out.written[key.removeprefix("writeback.")] = value
        for system, usage in run.api_calls.items():
            out.api_calls[system] = out.api_calls.get(system, 0) + int(usage.get("calls") or 0)
    order = {s.value: i for i, s in enumerate(STATUS_PRECEDENCE)}
    with engine.connect() as conn:
        for entity, target in (
            ("contact", out.contacts_by_status),
            ("account", out.accounts_by_status),
        ):
            rows = conn.execute(
                sa.select(evaluations.c.status, sa.func.count())
                .where(evaluations.c.entity_type == entity)
                .group_by(evaluations.c.status)
            ).all()
            for status, n in sorted(rows, key=lambda r: order.get(r[0], 99)):
                target[status] = int(n)
        asks = (
            sa.select(advocacy_asks.c.contact_id, sa.func.count().label("asks"))
            .where(advocacy_asks.c.deleted.is_(False), advocacy_asks.c.source == System.SALESFORCE)
            .group_by(advocacy_asks.c.contact_id)
            .order_by(sa.desc("asks"), advocacy_asks.c.contact_id)
            .limit(top)
            .subquery()
        )
        query = (
            sa.select(
                asks.c.contact_id,
                asks.c.asks,
                contacts.c.first_name,
                contacts.c.last_name,
                evaluations.c.status,
                evaluations.c.reason,
                evaluations.c.next_available,
            )
            .select_from(asks)
            .outerjoin(
                contacts,
                sa.and_(contacts.c.id == asks.c.contact_id, contacts.c.source == System.SALESFORCE),
            )
            .outerjoin(
                evaluations,
                sa.and_(
                    evaluations.c.entity_type == "contact",
                    evaluations.c.entity_id == asks.c.contact_id,
                ),
            )
            .order_by(sa.desc(asks.c.asks), asks.c.contact_id)
        )
        for row in conn.execute(query).mappings():
            out.most_asked.append(
                {
                    "contact_id": row["contact_id"],
                    "name": " ".join(p for p in (row["first_name"], row["last_name"]) if p),
                    "asks": int(row["asks"]),
                    "status": row["status"],
                    "reason": row["reason"],
                    "next_available": row["next_available"].isoformat()
                    if row["next_available"]
                    else None,
                }
            )
    return out


def render(summary: CycleSummary, elapsed: float | None = None, now: datetime | None = None) -> str:
    """The summary as a few readable blocks of text."""
    lines: list[str] = []
    head = "One cycle of the advocate sync"
    if elapsed is not None:
        head += f" ({elapsed:.1f}s)"
    lines += [head, "=" * len(head), ""]
    lines.append("Records pulled")
    for name, n in summary.pulled.items():
        lines.append(f"  {name:<32} {n:>9,}")
    for title, counts in (
        ("Contacts by status", summary.contacts_by_status),
        ("Accounts by status", summary.accounts_by_status),
    ):
        total = sum(counts.values()) or 1
        lines += ["", title]
        for status, n in counts.items():
            bar = "█" * max(1, round(30 * n / total)) if n else ""
            lines.append(f"  {status:<14} {n:>7,}  {bar}")
    if summary.most_asked:
        lines += ["", "Most-asked contacts (the people this service protects)"]
        for c in summary.most_asked:
            avail = f", available {c['next_available']}" if c["next_available"] else ""
            lines.append(
                f"  {c['name'] or c['contact_id']:<24} {c['asks']:>3} asks  {c['status']}{avail}"
            )
            if c["reason"]:
                lines.append(f"  {'':<24}      {c['reason']}")
    lines += ["", "Written back"]
    headline = {
        "success": "records confirmed by the CRM",
        "fields_written": "fields written",
        "calls": "write calls",
        "failed": "records refused",
        "pending": "records left for the next run",
        "conflicts": "drift conflicts (a person edited)",
        "overridden": "records under a person's override",
    }
    shown = [(label, summary.written.get(key, 0)) for key, label in headline.items()]
    shown = [(label, n) for label, n in shown if n or label.startswith("records confirmed")]
    for label, n in shown:
        lines.append(f"  {label:<36} {n:>9,}")
    per_field = {
        k.removeprefix("field."): n for k, n in summary.written.items() if k.startswith("field.")
    }
    for key, n in per_field.items():
        _, obj_name, field_name = key.split(".", 2)
        lines.append(f"    {obj_name}.{field_name:<42} {n:>7,}")
    lines += ["", "API calls"]
    for system, n in summary.api_calls.items():
        lines.append(f"  {system:<32} {n:>9,}")
    lines += [
        "",
        "Runs: " + ", ".join(f"{job} {status}" for job, status in summary.statuses.items()),
    ]
    return "\n".join(lines)
