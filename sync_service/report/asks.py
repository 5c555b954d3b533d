"""Sections drawn from the asks ledger: utilisation, demand, and the most-asked contacts.

An ask counts when it is not deleted and its ``requested_date`` falls in the window (the last
``window_days`` days up to today). "Over-asked" means asked while the contact's status was
Fatigued, Suspended or Opted Out: the status is the one the evaluation history held when the
ask's day began (the newest change before that midnight, UTC), so the ask itself, which may
have made the contact Fatigued later that day, does not count against it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from canonical.model import Status
from sync_service.report.sql import (
    as_date,
    contact_verdicts,
    is_contact,
    status_as_of,
    utc_midnight,
)
from sync_service.report.tables import NOT_SET, Figure, Section, Table, cols, share
from sync_service.store.models import accounts, advocacy_asks, contacts, evaluations

#: Statuses under which an ask is a violation of the program's rules.
VIOLATING: tuple[str, ...] = (Status.FATIGUED, Status.SUSPENDED, Status.OPTED_OUT)
#: Asks per advocate from which the distribution chart groups the tail into one bar.
TAIL = 10


def window_start(now: datetime, days: int) -> date:
    """The first day of a ``days``-long window ending today (inclusive)."""
    return now.date() - timedelta(days=days - 1)


def _in_window(start: date, today: date) -> Any:
    a = advocacy_asks
    return sa.and_(
        a.c.deleted.is_(False),
        a.c.contact_id.is_not(None),
        a.c.requested_date >= start,
        a.c.requested_date <= today,
    )


def _window(start: date, today: date) -> Any:
    """The asks of the window as a materialised CTE, read once through the requested-date index.

    Without it SQLite's planner walks the whole ledger in contact order to spare the
    per-contact grouping a sort; materialising the window first keeps the read to its days.
    """
    a = advocacy_asks
    return (
        sa.select(a.c.contact_id, a.c.team, a.c.ask_type, a.c.status, a.c.requested_date)
        .where(_in_window(start, today))
        .cte("window_asks")
        .prefix_with("MATERIALIZED")
    )


def contact_link(crm_url: str | None, contact_id: str | None) -> str | None:
    """The Salesforce Lightning page of a contact, when the org's URL is known."""
    if not crm_url or not contact_id:
        return None
    return f"{crm_url.rstrip('/')}/lightning/r/Contact/{contact_id}/view"


def _name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p)


def asks_by_status_at_ask(
    conn: sa.Connection, start: date, today: date
) -> list[tuple[str, str, str | None, int]]:
    """Asks in the window per ``(team, ask type, the contact's status when asked)``.

    The status is the newest history row before the ask's day began; None when the contact
    had no verdict yet. One correlated lookup per ask, served by the history's index on
    (entity type, entity id).
    """
    w = _window(start, today)
    at_ask = status_as_of(w.c.contact_id, utc_midnight(conn.dialect.name, w.c.requested_date))
    asks = sa.select(w.c.team, w.c.ask_type, at_ask.label("status")).subquery()
    rows = conn.execute(
        sa.select(asks.c.team, asks.c.ask_type, asks.c.status, sa.func.count()).group_by(
            asks.c.team, asks.c.ask_type, asks.c.status
        )
    )
    return [(t or NOT_SET, k or NOT_SET, s, int(n)) for t, k, s, n in rows]


def _eligible_unasked(start: date, today: date) -> Any:
    a = advocacy_asks
    e = evaluations
    unasked = ~sa.exists().where(_in_window(start, today), a.c.contact_id == e.c.entity_id)
    return sa.and_(is_contact(), e.c.status == Status.ELIGIBLE, unasked)


def count_under_used(conn: sa.Connection, start: date, today: date) -> int:
    """Contacts Eligible now and not asked in the window."""
    where = _eligible_unasked(start, today)
    query = sa.select(sa.func.count()).select_from(evaluations).where(where)
    return int(conn.execute(query).scalar_one())


def utilisation_section(
    conn: sa.Connection, now: datetime, days: int, *, top: int, crm_url: str | None
) -> Section:
    """Asks per advocate, asks made while the contact was unavailable, and the under-used."""
    e = evaluations
    start, today = window_start(now, days), now.date()
    w = _window(start, today)
    live = sa.exists().where(is_contact(), e.c.entity_id == w.c.contact_id)
    per_contact = (
        sa.select(w.c.contact_id, sa.func.count().label("n"))
        .where(live)
        .group_by(w.c.contact_id)
        .subquery()
    )
    spread: dict[int, int] = {
        int(n): int(k)
        for n, k in conn.execute(
            sa.select(per_contact.c.n, sa.func.count()).group_by(per_contact.c.n)
        )
    }
    evaluated = int(
        conn.execute(sa.select(sa.func.count()).select_from(e).where(is_contact())).scalar_one()
    )
    asked = sum(int(v) for v in spread.values())
    distribution = Table(
        "utilisation",
        f"Advocates by number of asks in the last {days} days",
        cols(("asks", "Asks in the window", "count"), ("advocates", "Advocates", "count")),
        [(0, evaluated - asked), *sorted(spread.items())],
    )

    by_status = asks_by_status_at_ask(conn, start, today)
    total_asks = sum(r[3] for r in by_status)
    violations = Table(
        "violations",
        "Asks made while the contact was Fatigued, Suspended or Opted Out",
        cols(
            ("team", "Team"),
            ("ask_type", "Ask type"),
            ("status_at_ask", "Status at the ask"),
            ("asks", "Asks", "count"),
        ),
        sorted(
            (r for r in by_status if r[2] in VIOLATING),
            key=lambda r: (-r[3], r[0], r[1], r[2]),
        ),
    )
    n_violations = sum(r[3] for r in violations.rows)

    c = contacts
    acc = accounts
    # The list and its length in one pass: count(*) over () is taken before the limit.
    found = conn.execute(
        sa.select(
            e.c.entity_id,
            c.c.first_name,
            c.c.last_name,
            acc.c.name,
            acc.c.region,
            acc.c.segment,
            e.c.score,
            sa.func.count().over().label("total"),
        )
        .select_from(contact_verdicts())
        .where(_eligible_unasked(start, today))
        .order_by(e.c.score.desc().nulls_last(), e.c.entity_id)
        .limit(top)
    ).all()
    n_underused = int(found[0][-1]) if found else 0
    best = [row[:-1] for row in found]
    underused = Table(
        "under-used",
        f"Eligible and not asked in the last {days} days (highest score first)",
        cols(
            ("contact_id", "Contact id"),
            ("name", "Name"),
            ("account", "Account"),
            ("region", "Region"),
            ("segment", "Segment"),
            ("score", "Score", "number"),
            ("link", "CRM", "link"),
        ),
        [
            (cid, _name(first, last), acct, region, segment, score, contact_link(crm_url, cid))
            for cid, first, last, acct, region, segment, score in best
        ],
    )
    return Section(
        "utilisation",
        "Utilisation",
        f"How often each advocate was asked in the last {days} days; the asks made while the "
        "contact was Fatigued, Suspended or Opted Out (the violations the rules exist to "
        "prevent), by team and ask type; and the Eligible advocates nobody asked.",
        figures=[
            Figure("asks", f"asks in the last {days} days", total_asks),
            Figure("asked", "advocates asked", asked),
            Figure("violations", "asks while unavailable", n_violations),
            Figure(
                "violation_share",
                "of asks were violations",
                share(n_violations, total_asks),
                "share",
            ),
            Figure("under_used", "Eligible, never asked", n_underused),
        ],
        tables=[distribution, violations, underused],
    )


def demand_section(conn: sa.Connection, now: datetime, days: int, weeks: int) -> Section:
    """Asks per month by team, type and outcome; declines and completions per team and type."""
    a = advocacy_asks
    outcome = sa.func.lower(a.c.status).label("outcome")
    grouped = sa.select(a.c.team, a.c.ask_type, outcome, sa.func.count()).group_by(
        a.c.team, a.c.ask_type, outcome
    )
    rows: list[tuple[str, str | None, str | None, str | None, int]] = []
    # Month by month, each a range of the requested-date index: no sort of the whole ledger.
    month = (now - timedelta(weeks=weeks)).date().replace(day=1)
    while month <= now.date():
        following = (month + timedelta(days=32)).replace(day=1)
        last = min(following - timedelta(days=1), now.date())
        found = conn.execute(grouped.where(_in_window(month, last))).all()
        rows += sorted(
            ((month.strftime("%Y-%m"), t, k, o, int(n)) for t, k, o, n in found),
            key=lambda r: tuple(str(v) for v in r),
        )
        month = following
    monthly = Table(
        "demand",
        "Asks per month by team, type and outcome",
        cols(
            ("month", "Month"),
            ("team", "Team"),
            ("ask_type", "Ask type"),
            ("outcome", "Outcome"),
            ("asks", "Asks", "count"),
        ),
        [(m, t or NOT_SET, k or NOT_SET, o or NOT_SET, int(n)) for m, t, k, o, n in rows],
        in_page=False,  # up to months x teams x types x outcomes rows: the files carry it
    )
    per_month: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for m, _, _, out, n in monthly.rows:
        per_month[m][0] += n
        per_month[m][1] += n if out == "declined" else 0
        per_month[m][2] += n if out == "completed" else 0
    months = Table(
        "demand-months",
        "Asks, declines and completions per month",
        cols(
            ("month", "Month"),
            ("asks", "Asks", "count"),
            ("declined", "Declined", "count"),
            ("completed", "Completed", "count"),
            ("decline_rate", "Decline rate", "share"),
        ),
        [(m, n, d, c, share(d, n)) for m, (n, d, c) in sorted(per_month.items())],
    )
    in_window = conn.execute(grouped.where(_in_window(window_start(now, days), now.date())))
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for team, kind, out, n in in_window:
        for key in (("Team", team or NOT_SET), ("Ask type", kind or NOT_SET)):
            totals[key][0] += int(n)
            totals[key][1] += int(n) if out == "declined" else 0
            totals[key][2] += int(n) if out == "completed" else 0
    summary = Table(
        "demand-summary",
        f"Asks, declines and completions in the last {days} days",
        cols(
            ("by", "By"),
            ("value", "Team or type"),
            ("asks", "Asks", "count"),
            ("declined", "Declined", "count"),
            ("completed", "Completed", "count"),
            ("decline_rate", "Decline rate", "share"),
        ),
        [
            (by, value, n, d, c, share(d, n))
            for (by, value), (n, d, c) in sorted(
                totals.items(), key=lambda kv: (kv[0][0] != "Team", -kv[1][0], kv[0][1])
            )
        ],
    )
    asks = sum(r[2] for r in summary.rows if r[0] == "Team")
    declined = sum(r[3] for r in summary.rows if r[0] == "Team")
    completed = sum(r[4] for r in summary.rows if r[0] == "Team")
    return Section(
        "demand",
        "Demand",
        "Who asks for what, month by month, and how the asks end. Declines are the first sign "
        "of fatigue.",
        figures=[
            Figure("asks", f"asks in the last {days} days", asks),
            Figure("declined", "declined", declined),
            Figure("decline_rate", "decline rate", share(declined, asks), "share"),
            Figure("completed", "completed", completed),
        ],
        tables=[monthly, summary, months],
    )


def most_asked_section(
    conn: sa.Connection, now: datetime, days: int, *, top: int, crm_url: str | None
) -> Section:
    """The contacts asked most in the window, with their status, reason and next date."""
    e = evaluations
    c = contacts
    acc = accounts
    w = _window(window_start(now, days), now.date())
    per_contact = (
        sa.select(w.c.contact_id, sa.func.count().label("asks"))
        .group_by(w.c.contact_id)
        .order_by(sa.desc("asks"), w.c.contact_id)
        .limit(top)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            per_contact.c.contact_id,
            per_contact.c.asks,
            c.c.first_name,
            c.c.last_name,
            acc.c.name,
            e.c.status,
            e.c.reason,
            e.c.next_available,
        )
        .select_from(
            per_contact.outerjoin(
                c, sa.and_(c.c.source == "salesforce", c.c.id == per_contact.c.contact_id)
            )
            .outerjoin(acc, sa.and_(acc.c.source == "salesforce", acc.c.id == c.c.account_id))
            .outerjoin(e, sa.and_(is_contact(), e.c.entity_id == per_contact.c.contact_id))
        )
        .order_by(per_contact.c.asks.desc(), per_contact.c.contact_id)
    ).all()
    table = Table(
        "most-asked",
        f"The {top} contacts asked most in the last {days} days",
        cols(
            ("contact_id", "Contact id"),
            ("name", "Name"),
            ("account", "Account"),
            ("asks", "Asks", "count"),
            ("status", "Status"),
            ("reason", "Reason"),
            ("next_available", "Next available", "date"),
            ("link", "CRM", "link"),
        ),
        [
            (
                cid,
                _name(first, last),
                acct,
                int(n),
                status,
                reason,
                as_date(nxt),
                contact_link(crm_url, cid),
            )
            for cid, n, first, last, acct, status, reason, nxt in rows
        ],
    )
    return Section(
        "most-asked",
        "Most-asked contacts",
        "The people this service protects: who is asked most, whether they may be asked now, "
        "why not, and when they are next available.",
        figures=[
            Figure("top", "asks of the most-asked contact", table.rows[0][3] if table.rows else 0)
        ],
        tables=[table],
    )
