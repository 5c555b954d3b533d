"""Sections drawn from the evaluation history: the advocate pool over time, and retention.

``evaluation_history`` holds one row per status change (old status, new status, when, why).
Two facts make the history cheap to read in sets:

- the number of contacts in a status at a moment is the number of changes *into* it minus the
  number *out of* it up to that moment, so one grouped scan of the history (changes per week,
  old and new status) gives every week's pool after a running sum over a few hundred rows;
- a contact's status at a moment is its newest change up to then, which one pass over an
  index ordered by (contact, time) finds for every contact (see ``sql.statuses_as_of``).

Only contacts with a current verdict are counted: a contact deleted in the CRM leaves the
evaluations (not the history), and the pool speaks of the people who can still be asked.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from canonical.model import STATUS_PRECEDENCE
from sync_service.report.sql import statuses_as_of, week_bucket
from sync_service.report.tables import Figure, Section, Table, cols, share
from sync_service.store.models import evaluation_history, evaluations
from sync_service.store.types import UTCDateTime

#: Statuses in the order charts stack them: the healthy pool at the bottom.
STATUS_ORDER: tuple[str, ...] = tuple(s.value for s in reversed(STATUS_PRECEDENCE))
#: What the retention table calls a contact that left the store (deleted or merged in the CRM).
GONE = "Gone from the CRM"


def _gone_contacts() -> Any:
    """Contacts with a history but no current verdict (deleted or merged away in the CRM)."""
    h = evaluation_history
    e = evaluations
    seen = sa.select(h.c.entity_id).where(h.c.entity_type == "contact").distinct().subquery()
    live = sa.exists().where(e.c.entity_type == "contact", e.c.entity_id == seen.c.entity_id)
    return sa.select(seen.c.entity_id).where(~live).subquery()


def _net_changes(conn: sa.Connection, now: datetime, weeks: int) -> dict[int, dict[str, int]]:
    """Per week (``-1``: before the first), changes into minus changes out of each status.

    One small grouped query per week, each a range of the history's timeline index, so no
    query sorts the whole history; the few contacts no longer in the store are taken out
    after (their changes, grouped the same way, subtracted).
    """
    h = evaluation_history
    origin = now.replace(microsecond=0) - timedelta(weeks=weeks)
    net: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(week: int, old: str | None, new: str, n: int) -> None:
        net[week][new] += n
        if old is not None:
            net[week][old] -= n

    def stamp(moment: datetime) -> Any:
        return sa.literal(moment, UTCDateTime())

    counted = sa.select(h.c.old_status, h.c.new_status, sa.func.count()).group_by(
        h.c.old_status, h.c.new_status
    )
    contact = h.c.entity_type == "contact"
    for week in range(-1, weeks):
        lower = origin + timedelta(weeks=week)
        upper = origin + timedelta(weeks=week + 1)
        where = [contact]
        if week >= 0:
            where.append(h.c.changed_at >= stamp(lower))
        # a change exactly at a week's end counts in the next week; the last week ends now
        where.append(
            h.c.changed_at <= stamp(now) if week == weeks - 1 else h.c.changed_at < stamp(upper)
        )
        for old, new, n in conn.execute(counted.where(*where)):
            add(week, old, new, int(n))
    gone = _gone_contacts()
    bucket = week_bucket(conn.dialect.name, h.c.changed_at, origin).label("week")
    for week, old, new, n in conn.execute(
        sa.select(bucket, h.c.old_status, h.c.new_status, sa.func.count())
        .join(gone, gone.c.entity_id == h.c.entity_id)
        .where(contact, h.c.changed_at <= stamp(now))
        .group_by(bucket, h.c.old_status, h.c.new_status)
    ):
        add(min(int(week), weeks - 1), old, new, -int(n))
    return net


def pool_section(conn: sa.Connection, now: datetime, weeks: int) -> Section:
    """Contacts per status at the end of each of the last ``weeks`` weeks."""
    origin = now.replace(microsecond=0) - timedelta(weeks=weeks)
    net = _net_changes(conn, now, weeks)
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
    e = evaluations
    then = now - timedelta(days=days)
    at_then = statuses_as_of(conn.dialect.name, then)
    cohort = sa.select(at_then.c.entity_id).where(at_then.c.status == "Eligible").subquery()
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
