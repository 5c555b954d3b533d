"""Reads of one contact's ledger: the contact and its verdict, and its asks. A speed path.

Each guard check is two index lookups: the contact (by id or email) joined to its stored
verdict, then the live asks of the contact or of its account inside the longest cap window.
The statements are written once as SQL text, compiled once per dialect, and run on the driver's
cursor: building a Core statement per call, and SQLAlchemy's result set around each answer,
cost more than the lookups themselves (about 1.5 ms of a 2.5 ms check). Their reference twins,
the same reads in SQLAlchemy Core, are below (``SYNC_SPEED_PATHS_OFF=guard_ledger`` switches to
them), and
``tests/store/test_ledger.py`` holds both to the same answers on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical.speed_paths import speed_path_on
from sync_service.store.models import advocacy_asks, contacts, evaluations, opportunities

_CONTACT_COLUMNS = (
    "SELECT c.id, c.account_id, e.status, e.reason, e.next_available, e.score, c.consent_types "
    "FROM contacts AS c LEFT JOIN evaluations AS e "
    "ON e.entity_type = 'contact' AND e.entity_id = c.id "
)
_BY_ID = sa.text(
    _CONTACT_COLUMNS + "WHERE c.source = 'salesforce' AND c.id = :key AND NOT c.deleted"
)
_BY_EMAIL = sa.text(
    _CONTACT_COLUMNS
    + "WHERE c.email = :key AND c.source = 'salesforce' AND NOT c.deleted "
    + "ORDER BY c.id LIMIT 1"
)
_ASK_COLUMNS = "SELECT source, id, contact_id, account_id, ask_type, team, status, requested_date "
_ASKS_OF_CONTACT = sa.text(
    _ASK_COLUMNS
    + "FROM advocacy_asks WHERE contact_id = :contact AND NOT deleted AND requested_date > :since"
)
# Two index ranges (the contact's asks, the account's asks) rather than one OR, which SQLite
# may answer with a scan of the date range.
_ASKS_OF_BOTH = sa.text(
    _ASK_COLUMNS
    + "FROM advocacy_asks WHERE contact_id = :contact AND NOT deleted "
    + "AND requested_date > :since "
    + "UNION "
    + _ASK_COLUMNS
    + "FROM advocacy_asks WHERE account_id = :account AND NOT deleted "
    + "AND requested_date > :since"
)


@dataclass(frozen=True)
class ContactRow:
    """A live Salesforce contact and its stored verdict (None fields: never evaluated).

    ``consent_types`` is the contact's consent multi-select as stored ('A;B'), read now rather
    than from the verdict: a consent withdrawn since the last evaluation refuses at once.
    """

    id: str
    account_id: str | None
    status: str | None
    reason: str | None
    next_available: date | None
    score: float | None
    consent_types: str | None


@dataclass(frozen=True)
class AskRow:
    """One live ask as the guard reads it."""

    source: str
    id: str
    contact_id: str | None
    account_id: str | None
    ask_type: str | None
    team: str | None
    status: str | None
    requested_date: date | None


_compiled: dict[tuple[str, int], tuple[str, tuple[str, ...] | None]] = {}


def _raw(conn: Connection, stmt: sa.ClauseElement, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``stmt`` on the driver's cursor (compiled once per dialect); plain tuples back."""
    key = (conn.dialect.name, id(stmt))
    if key not in _compiled:
        compiled: Any = stmt.compile(dialect=conn.dialect)
        order = tuple(compiled.positiontup) if compiled.positional else None
        _compiled[key] = (str(compiled), order)
    sql, order = _compiled[key]
    values: Any = tuple(params[name] for name in order) if order is not None else params
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _date(value: Any) -> date | None:
    # SQLite hands dates back as ISO text; PostgreSQL as dates.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def find_contact(conn: Connection, contact: str) -> ContactRow | None:
    """A live Salesforce contact named by its id or its email, with its verdict."""
    if not speed_path_on("guard_ledger"):
        return core_find_contact(conn, contact)
    key = contact.strip()
    stmt = _BY_EMAIL if "@" in key else _BY_ID
    rows = _raw(conn, stmt, {"key": key.lower() if "@" in key else key})
    if not rows:
        return None
    cid, account_id, status, reason, next_available, score, consent_types = rows[0][:7]
    return ContactRow(
        str(cid),
        account_id,
        status,
        reason,
        _date(next_available),
        float(score) if score is not None else None,
        consent_types,
    )


def asks_around(
    conn: Connection, contact_id: str, account_id: str | None, since: date
) -> list[AskRow]:
    """Live asks of the contact, and of its account when given, requested after ``since``."""
    if not speed_path_on("guard_ledger"):
        return core_asks_around(conn, contact_id, account_id, since)
    iso = since.isoformat() if conn.dialect.name == "sqlite" else since
    if account_id is None:
        rows = _raw(conn, _ASKS_OF_CONTACT, {"contact": contact_id, "since": iso})
    else:
        params = {"contact": contact_id, "account": account_id, "since": iso}
        rows = _raw(conn, _ASKS_OF_BOTH, params)
    return [AskRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _date(r[7])) for r in rows]


def core_find_contact(conn: Connection, contact: str) -> ContactRow | None:
    """The reference twin of :func:`find_contact` in SQLAlchemy Core."""
    c, e = contacts, evaluations
    key = contact.strip()
    cond = c.c.email == key.lower() if "@" in key else c.c.id == key
    on = sa.and_(e.c.entity_type == "contact", e.c.entity_id == c.c.id)
    row = conn.execute(
        sa.select(
            c.c.id,
            c.c.account_id,
            e.c.status,
            e.c.reason,
            e.c.next_available,
            e.c.score,
            c.c.consent_types,
        )
        .select_from(c.outerjoin(e, on))
        .where(cond, c.c.source == "salesforce", c.c.deleted == sa.false())
        .order_by(c.c.id)
        .limit(1)
    ).first()
    return ContactRow(*row) if row is not None else None


def core_asks_around(
    conn: Connection, contact_id: str, account_id: str | None, since: date
) -> list[AskRow]:
    """The reference twin of :func:`asks_around` in SQLAlchemy Core."""
    a = advocacy_asks
    link = a.c.contact_id == contact_id
    if account_id is not None:
        link = sa.or_(link, a.c.account_id == account_id)
    rows = conn.execute(
        sa.select(*_ledger_columns()).where(
            link, a.c.deleted == sa.false(), a.c.requested_date > since
        )
    )
    return [AskRow(*r) for r in rows]


def _ledger_columns() -> list[sa.Column[Any]]:
    """An ask's columns as the guard's ledger reads them (``_ASK_COLUMNS``, in Core)."""
    a = advocacy_asks
    names = ("source", "id", "contact_id", "account_id", "ask_type", "team", "status")
    return [a.c[n] for n in (*names, "requested_date")]


def verdict_row(conn: Connection, entity_type: str, entity_id: str) -> Any | None:
    """The stored verdict (status, reason, next_available, score) of a contact or account."""
    e = evaluations
    return conn.execute(
        sa.select(e.c.status, e.c.reason, e.c.next_available, e.c.score, e.c.evaluated_at).where(
            e.c.entity_type == entity_type, e.c.entity_id == entity_id
        )
    ).first()


def opportunity_exists(conn: Connection, opportunity_id: str) -> bool:
    """Whether the store holds a live Salesforce opportunity with this (18-character) id."""
    o = opportunities
    found = conn.execute(
        sa.select(sa.literal(1)).where(
            o.c.source == "salesforce", o.c.id == opportunity_id, o.c.deleted == sa.false()
        )
    ).first()
    return found is not None


def consent_types_of(conn: Connection, contact_id: str) -> str | None:
    """The stored consent multi-select ('A;B') of a Salesforce contact; None if it has none."""
    c = contacts
    return conn.execute(
        sa.select(c.c.consent_types).where(c.c.source == "salesforce", c.c.id == contact_id)
    ).scalar()


def ask_rows(
    conn: Connection, column: str, key: str, since: date, until: date | None = None
) -> list[Any]:
    """Live asks whose ``column`` (contact_id, account_id) is ``key``, in ``(since, until]``."""
    a = advocacy_asks
    cond = [a.c[column] == key, a.c.deleted == sa.false(), a.c.requested_date > since]
    if until is not None:
        cond.append(a.c.requested_date <= until)
    return list(conn.execute(sa.select(*_ledger_columns(), a.c.opportunity_id).where(*cond)))
