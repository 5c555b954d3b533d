"""Sections drawn from the evaluation history: the advocate pool over time, and retention.

``evaluation_history`` holds one row per status change (old status, new status, when, why).
Two facts make the history cheap to read in sets:

- the number of contacts in a status at a moment is the number of changes *into* it minus the
  number *out of* it up to that moment, so one grouped scan of the history (changes per week,
  old and new status) gives every week's pool after a running sum over a few hundred rows;
- a contact's status at a moment is the newest change before it, which a window function
  (``row_number() over (partition by contact order by time desc)``) finds for every contact in
  one pass.

Only contacts with a current verdict are counted: a contact deleted in the CRM leaves the
evaluations (not the history), and the pool speaks of the people who can still be asked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from canonical.model import STATUS_PRECEDENCE
from sync_service.report.sql import week_bucket
from sync_service.report.tables import Figure, Section, Table, cols, share
from sync_service.store.models import evaluation_history, evaluations
from sync_service.store.types import UTCDateTime

#: Statuses in the order charts stack them: the healthy pool at the bottom.
STATUS_ORDER: tuple[str, ...] = tuple(s.value for s in reversed(STATUS_PRECEDENCE))
#: What the retention table calls a contact that left the store (deleted or merged in the CRM).
GONE = "Gone from the CRM"


def _live_contact(entity_id: Any) -> Any:
    e = evaluations
    return sa.exists().where(e.c.entity_type == "contact", e.c.entity_id == entity_id)


def pool_section(conn: sa.Connection, now: datetime, weeks: int) -> Section:
    """Contacts per status at the end of each of the last ``weeks`` weeks."""
    h = evaluation_history
    origin = now.replace(microsecond=0) - timedelta(weeks=weeks)
    bucket = week_bucket(conn.dialect.name, h.c.changed_at, origin).label("week")
    rows = conn.execute(
        sa.select(bucket, h.c.old_status, h.c.new_status, sa.func.count())
        .where(
            h.c.entity_type == "contact",
            h.c.changed_at <= sa.literal(now, UTCDateTime()),
            _live_contact(h.c.entity_id),
        )
        .group_by(bucket, h.c.old_status, h.c.new_status)
    ).all()
    net: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for week, old, new, n in rows:
        # A timestamp exactly at ``now`` lands in bucket ``weeks``: it is part of the last week.
        w = min(int(week), weeks - 1)
        net[w][new] += int(n)
        if old is not None:
            net[w][old] -= int(n)
    statuses = [*STATUS_ORDER, *sorted({s for d in net.values() for s in d} - set(STATUS_ORDER))]
    running: dict[str, int] = dict.fromkeys(statuses, 0)
    for status, n in net.get(-1, {}).items():
        running[status] += n
    table = Table(
        "pool",
        "Contacts per status at the end of each week",
        cols(("week_ending", "Week ending", "date"), *((s, s, "count") for s in statuses)),
    )
    for w in range(weeks):
        for status, n in net.get(w, {}).items():
            running[status] += n
        end = (origin + timedelta(weeks=w + 1)).date()
        table.rows.append((end, *(running[s] for s in statuses)))
    last = dict(zip(statuses, table.rows[-1][1:], strict=True)) if table.rows else {}
    total = sum(last.values())
    return Section(
        "pool",
        "The advocate pool over time",
        "How many contacts were in each status at the end of each week, from the history of "
        "status changes. A healthy program keeps the Eligible band wide and the Fatigued band "
        "thin.",
        figures=[
            Figure("contacts", "contacts evaluated", total),
            Figure("eligible", "Eligible now", last.get("Eligible", 0)),
            Figure(
                "eligible_share",
                "of contacts Eligible",
                share(last.get("Eligible", 0), total),
                "share",
            ),
        ],
        tables=[table],
    )


def retention_section(conn: sa.Connection, now: datetime, days: int) -> Section:
    """Of the contacts Eligible ``days`` ago, how many still are, and where the others went."""
    h = evaluation_history
    e = evaluations
    then = now - timedelta(days=days)
    newest = sa.func.row_number().over(
        partition_by=h.c.entity_id, order_by=(h.c.changed_at.desc(), h.c.id.desc())
    )
    at_then = (
        sa.select(h.c.entity_id, h.c.new_status, newest.label("rn"))
        .where(h.c.entity_type == "contact", h.c.changed_at <= sa.literal(then, UTCDateTime()))
        .subquery()
    )
    cohort = (
        sa.select(at_then.c.entity_id)
        .where(at_then.c.rn == 1, at_then.c.new_status == "Eligible")
        .subquery()
    )
    joined = cohort.outerjoin(
        e, sa.and_(e.c.entity_type == "contact", e.c.entity_id == cohort.c.entity_id)
    )
    rows = conn.execute(
        sa.select(e.c.status, e.c.reason, sa.func.count())
        .select_from(joined)
        .group_by(e.c.status, e.c.reason)
    ).all()
    by_status: dict[str, int] = defaultdict(int)
    reasons: list[tuple[str, str, int]] = []
    for status, reason, n in rows:
        name = status or GONE
        by_status[name] += int(n)
        if name != "Eligible":
            reasons.append((name, reason or "-", int(n)))
    cohort_size = sum(by_status.values())
    order = [*STATUS_ORDER, GONE]
    table = Table(
        "retention",
        f"Where the contacts Eligible on {then.date().isoformat()} are now",
        cols(
            ("status_now", "Status now"),
            ("contacts", "Contacts", "count"),
            ("share", "Share", "share"),
        ),
        [
            (s, by_status[s], share(by_status[s], cohort_size))
            for s in sorted(by_status, key=lambda s: order.index(s) if s in order else 99)
        ],
    )
    reasons.sort(key=lambda r: (-r[2], r[0], r[1]))
    why = Table(
        "retention-reasons",
        "Why the others left (most common reasons)",
        cols(("status_now", "Status now"), ("reason", "Reason"), ("contacts", "Contacts", "count")),
        reasons[:15],
    )
    kept = by_status.get("Eligible", 0)
    return Section(
        "retention",
        "Retention",
        f"Of the advocates who were Eligible {days} days ago, how many still are, and why the "
        "others left: fatigued (asked too often), suspended (a risk on the account), opted out, "
        "or no longer eligible.",
        figures=[
            Figure("eligible_then", f"Eligible {days} days ago", cohort_size),
            Figure("still_eligible", "still Eligible", kept),
            Figure("retention", "retained", share(kept, cohort_size), "share"),
        ],
        tables=[table, why],
    )
