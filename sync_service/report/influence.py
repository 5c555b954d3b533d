"""The influence section: the pipeline the advocates helped, and whether references win deals.

An opportunity is *influenced* when at least one live ask is linked to it
(``advocacy_asks.opportunity_id``, from ``Reference_Request__c.Opportunity__c`` or an ask
logged through the API with an ``opportunity_id``), whatever the ask's outcome: the program
counts the references it set up. Opportunities fall in the calendar quarter of their close
date (the expected one while open), from the quarter ``history_weeks`` ago up to four
quarters ahead (open deals closing later are left out, as are deals without a close date).
Per quarter: the open and the won amount of influenced deals, and the win rate (won / closed)
of closed deals with a linked ask against those without. Only Salesforce opportunities that
are not deleted count.

One grouped query, served by the asks' (opportunity id, deleted) index for the per-deal
probe: at most quarters x 8 rows come back, whatever the number of deals.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from sync_service.report.sql import quarter_label
from sync_service.report.tables import Figure, Section, Table, cols, share
from sync_service.store.models import advocacy_asks, opportunities

#: Quarters after the current one whose expected closes are shown (open pipeline).
QUARTERS_AHEAD = 4


def quarter_of(day: date) -> str:
    """``'2026-Q4'`` for any day of October to December 2026."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(day: date) -> date:
    """The first day of the quarter ``day`` falls in."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarters(first: date, last: date) -> list[tuple[str, date, date]]:
    """Every quarter from the one holding ``first`` to the one holding ``last``: label, bounds."""
    out = []
    start = quarter_start(first)
    while start <= last:
        following = quarter_start(start + timedelta(days=95))
        out.append((quarter_of(start), start, following - timedelta(days=1)))
        start = following
    return out


def influence_section(conn: sa.Connection, now: datetime, weeks: int) -> Section:
    """Influenced pipeline (open and won amount) and win rates with and without a reference."""
    o, a = opportunities, advocacy_asks
    this = quarter_start(now.date())
    months = this.year * 12 + this.month - 1 + 3 * QUARTERS_AHEAD
    shown = quarters((now - timedelta(weeks=weeks)).date(), date(months // 12, months % 12 + 1, 1))
    first, last = shown[0][1], shown[-1][2]
    linked = sa.exists().where(a.c.opportunity_id == o.c.id, a.c.deleted == sa.false())
    deals = (
        sa.select(
            quarter_label(conn.dialect.name, o.c.close_date).label("quarter"),
            sa.func.coalesce(o.c.is_closed, sa.false()).label("closed"),
            sa.func.coalesce(o.c.is_won, sa.false()).label("won"),
            sa.case((linked, 1), else_=0).label("linked"),
            o.c.amount,
        )
        .where(
            o.c.source == "salesforce",
            o.c.deleted == sa.false(),
            o.c.close_date >= first,
            o.c.close_date <= last,
        )
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            deals.c.quarter,
            deals.c.closed,
            deals.c.won,
            deals.c.linked,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(deals.c.amount), 0),
        ).group_by(deals.c.quarter, deals.c.closed, deals.c.won, deals.c.linked)
    ).all()
    # quarter -> [open amount, won amount, deals] of influenced deals, and
    # [closed, won] of deals with and without a reference
    amounts: dict[str, list[float]] = {q: [0.0, 0.0, 0.0] for q, _, _ in shown}
    closed: dict[str, dict[bool, list[int]]] = {
        q: {True: [0, 0], False: [0, 0]} for q, _, _ in shown
    }
    for quarter, is_closed, is_won, is_linked, n, amount in rows:
        with_ref = bool(is_linked)
        if with_ref:
            amounts[quarter][2] += int(n)
            if not is_closed:
                amounts[quarter][0] += float(amount)
            elif is_won:
                amounts[quarter][1] += float(amount)
        if is_closed:
            closed[quarter][with_ref][0] += int(n)
            closed[quarter][with_ref][1] += int(n) if is_won else 0
    table = Table(
        "influence",
        "Influenced pipeline and win rates per quarter of the close date",
        cols(
            ("quarter", "Quarter"),
            ("influenced_open", "Influenced open pipeline", "count"),
            ("influenced_won", "Influenced won", "count"),
            ("influenced_deals", "Deals with a reference", "count"),
            ("closed_with", "Closed with a reference", "count"),
            ("won_with", "Won with a reference", "count"),
            ("win_rate_with", "Win rate with a reference", "share"),
            ("closed_without", "Closed without", "count"),
            ("won_without", "Won without", "count"),
            ("win_rate_without", "Win rate without", "share"),
        ),
    )
    for q, _, _ in shown:
        (open_amt, won_amt, n), ref, plain = amounts[q], closed[q][True], closed[q][False]
        table.rows.append(
            (
                q,
                open_amt,
                won_amt,
                int(n),
                ref[0],
                ref[1],
                share(ref[1], ref[0]),
                plain[0],
                plain[1],
                share(plain[1], plain[0]),
            )
        )
    ref_closed = sum(r[4] for r in table.rows)
    ref_won = sum(r[5] for r in table.rows)
    plain_closed = sum(r[7] for r in table.rows)
    plain_won = sum(r[8] for r in table.rows)
    return Section(
        "influence",
        "Influence",
        "The deals the advocates helped: the open and won amount of opportunities with a "
        "linked ask, by quarter of the close date, and the win rate of closed deals with a "
        "reference against those without.",
        figures=[
            Figure("influenced_open", "influenced open pipeline", sum(r[1] for r in table.rows)),
            Figure("influenced_won", "influenced won", sum(r[2] for r in table.rows)),
            Figure(
                "win_rate_with", "win rate with a reference", share(ref_won, ref_closed), "share"
            ),
            Figure("win_rate_without", "win rate without", share(plain_won, plain_closed), "share"),
        ],
        tables=[table],
    )
