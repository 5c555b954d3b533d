"""The few SQL expressions that differ between SQLite and PostgreSQL, and the shared joins.

Every report query is set-based: it groups in the database and returns at most a few thousand
rows, so memory does not grow with the store. What SQLite and PostgreSQL spell differently
(time arithmetic, month labels, JSON fields, a date as a UTC instant) is written here once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from sync_service.store.models import accounts, contacts, evaluation_history, evaluations
from sync_service.store.types import UTCDateTime

#: Seconds in a week, for weekly buckets.
WEEK_SECONDS = 7 * 86_400


def epoch_seconds(dialect: str, column: Any) -> Any:
    """A timestamp column as whole seconds since 1970 (UTC), an exact integer."""
    if dialect == "sqlite":
        # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text; %s reads it.
        return sa.cast(sa.func.strftime("%s", column), sa.Integer())
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger())


def week_bucket(dialect: str, column: Any, origin: datetime) -> Any:
    """The 0-based week since ``origin`` a timestamp falls in; ``-1`` for anything before it.

    Integer arithmetic on whole seconds, so a change exactly at a week's end falls in the
    next week on both databases (``origin`` is taken to the whole second).
    """
    start = int(origin.timestamp())
    offset = epoch_seconds(dialect, column) - start
    return sa.case(
        (offset < 0, -1),
        # integer division; offset is never negative here, so it floors
        else_=offset // WEEK_SECONDS,
    )


def utc_midnight(dialect: str, column: Any) -> Any:
    """A date column as the UTC instant its day begins, comparable with UTC timestamps."""
    if dialect == "sqlite":
        # 'YYYY-MM-DD' sorts before every 'YYYY-MM-DD HH:MM:SS' of that day and after every
        # earlier day's: the text comparison already means "before that day began".
        return column
    # PostgreSQL would read a bare date in the session's time zone; pin it to UTC.
    return sa.func.timezone("UTC", sa.cast(column, sa.DateTime()))


def quarter_label(dialect: str, column: Any) -> Any:
    """A date column as its calendar quarter, ``'2026-Q4'`` (the same text on both databases)."""
    if dialect == "sqlite":
        quarter = (sa.cast(sa.func.strftime("%m", column), sa.Integer()) + 2) // 3
        year = sa.func.strftime("%Y", column, type_=sa.String())
        return year + "-Q" + sa.cast(quarter, sa.String())  # String + String: SQL's ||
    return sa.func.to_char(column, 'YYYY-"Q"Q')


def text_of(column: Any) -> Any:
    """A column as text for grouping (numbers and booleans from ``extra`` included)."""
    return sa.cast(column, sa.String())


def extra_field(table: sa.Table, name: str) -> Any:
    """The value of an admin-mapped extra field of ``table``, as text."""
    return table.c.extra[name].as_string()


def contact_verdicts() -> Any:
    """Current contact verdicts joined to their contact and (Salesforce) account rows."""
    e = evaluations
    return e.outerjoin(
        contacts, sa.and_(contacts.c.source == "salesforce", contacts.c.id == e.c.entity_id)
    ).outerjoin(
        accounts,
        sa.and_(accounts.c.source == "salesforce", accounts.c.id == contacts.c.account_id),
    )


def is_contact() -> Any:
    """The filter for contact verdicts."""
    return evaluations.c.entity_type == "contact"


def status_as_of(entity_id: Any, before: Any) -> Any:
    """A scalar subquery: a contact's status from the newest history row before ``before``.

    ``None`` when the contact had not been evaluated yet. The history holds one row per change,
    so the newest row before a moment is the status at that moment.
    """
    h = evaluation_history
    return (
        sa.select(h.c.new_status)
        .where(h.c.entity_type == "contact", h.c.entity_id == entity_id, h.c.changed_at < before)
        .order_by(h.c.changed_at.desc(), h.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def statuses_as_of(dialect: str, moment: datetime) -> Any:
    """A subquery ``(entity_id, status)``: each contact's status at ``moment`` (changes <= it).

    Served by the history's (entity type, entity id, changed_at, new status) index: on
    PostgreSQL ``row_number()`` over each contact's changes, newest first, which the index
    delivers in order; on SQLite ``max()`` with bare columns, which returns the other columns
    of the row holding the maximum (documented SQLite behaviour) in one pass without a sort.
    One contact has one change per evaluation run, so two changes at one instant do not occur.
    """
    h = evaluation_history
    before = sa.and_(
        h.c.entity_type == "contact", h.c.changed_at <= sa.literal(moment, UTCDateTime())
    )
    if dialect == "postgresql":
        newest = sa.func.row_number().over(
            partition_by=h.c.entity_id, order_by=h.c.changed_at.desc()
        )
        ranked = sa.select(h.c.entity_id, h.c.new_status.label("status"), newest.label("rn")).where(
            before
        )
        inner = ranked.subquery()
        return sa.select(inner.c.entity_id, inner.c.status).where(inner.c.rn == 1).subquery()
    return (
        sa.select(h.c.entity_id, h.c.new_status.label("status"), sa.func.max(h.c.changed_at))
        .where(before)
        .group_by(h.c.entity_id)
        .subquery()
    )


def as_date(value: Any) -> date | None:
    """A date value from a row (SQLite may hand back text for computed columns)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
