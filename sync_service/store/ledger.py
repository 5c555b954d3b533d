"""Reads of one contact's ledger: the contact by id or email, its verdict, its asks.

Index lookups only (contacts by id or email, evaluations by key, asks by contact or account
and date), shared by the guard's checks and the stamping of CRM requests.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.store.models import advocacy_asks, contacts, evaluations

SALESFORCE = "salesforce"


def find_contact(conn: Connection, contact: str) -> tuple[str, str | None] | None:
    """(contact id, account id) of a live Salesforce contact named by its id or its email."""
    c = contacts
    name = contact.strip()
    cond = c.c.email == name.lower() if "@" in name else c.c.id == name
    row = conn.execute(
        sa.select(c.c.id, c.c.account_id)
        .where(cond, c.c.source == SALESFORCE, c.c.deleted == sa.false())
        .limit(1)
    ).first()
    return (str(row.id), row.account_id) if row is not None else None


def verdict_row(conn: Connection, entity_type: str, entity_id: str) -> Any | None:
    """The stored verdict (status, reason, next_available, ...) of a contact or account."""
    e = evaluations
    return conn.execute(
        sa.select(e.c.status, e.c.reason, e.c.next_available, e.c.score, e.c.evaluated_at).where(
            e.c.entity_type == entity_type, e.c.entity_id == entity_id
        )
    ).first()


def ask_rows(
    conn: Connection, column: str, key: str, since: date, until: date | None = None
) -> list[Any]:
    """Live asks whose ``column`` (contact_id, account_id) is ``key``, in ``(since, until]``."""
    a = advocacy_asks
    cond = [a.c[column] == key, a.c.deleted == sa.false(), a.c.requested_date > since]
    if until is not None:
        cond.append(a.c.requested_date <= until)
    return list(
        conn.execute(
            sa.select(
                a.c.source,
                a.c.id,
                a.c.contact_id,
                a.c.ask_type,
                a.c.team,
                a.c.status,
                a.c.requested_date,
            ).where(*cond)
        )
    )
