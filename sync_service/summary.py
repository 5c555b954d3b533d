"""What a cycle did, in numbers a person enjoys reading (the demo's and run-once's epilogue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.model import STATUS_PRECEDENCE
from sync_service.runs import Run
from sync_service.store.models import advocacy_asks, contacts, evaluations


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
            .where(advocacy_asks.c.deleted.is_(False), advocacy_asks.c.source == "salesforce")
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
                sa.and_(contacts.c.id == asks.c.contact_id, contacts.c.source == "salesforce"),
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
