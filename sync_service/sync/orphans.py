"""Referential checks: rows whose references point nowhere are kept, counted, and not evaluated.

Streams arrive in any order and incrementally: in one cycle a contact may be read before its
account (a different stream, or the next page of a Bulk job), and an incremental read brings a
child whose parent changed long ago. Refusing a row at ingest for a parent not yet seen would
drop good data. So the rule is checked *after* the cycle's syncs, against the whole store:

* An **orphan** is a live Salesforce row whose reference is set but names no live row of the
  parent table: a contact's or case's or opportunity's ``account_id`` with no such account, an
  ask's ``contact_id`` with no such contact. An empty reference is not an orphan (a private
  contact has no account).
* Orphans are **kept** (the parent may arrive with the next sync, and then nothing is lost) and
  **counted**: each evaluation run records ``orphans.<kind>`` and ``status`` shows them.
* An orphan **contact is not evaluated**: its account's features would all read as unknown and
  produce a wrong "Not Eligible". It keeps its last verdict and nothing is written for it until
  its account exists. Orphan cases, opportunities and asks belong to no evaluated record, so
  they change no verdict; they are counted so that a broken mapping or a missing object
  permission is seen rather than silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    opportunities,
    tickets,
)
from sync_service.sync.changes import in_scope


@dataclass(frozen=True)
class Reference:
    """One reference checked: ``child.column`` must name a live ``parent.id``."""

    kind: str
    child: sa.Table
    column: str
    parent: sa.Table


REFERENCES = (
    Reference("contacts.account", contacts, "account_id", accounts),
    Reference("tickets.account", tickets, "account_id", accounts),
    Reference("opportunities.account", opportunities, "account_id", accounts),
    Reference("advocacy_asks.contact", advocacy_asks, "contact_id", contacts),
)


def _orphan_condition(ref: Reference) -> sa.ColumnElement[bool]:
    child, parent = ref.child, ref.parent
    column = child.c[ref.column]
    has_parent = sa.exists().where(
        parent.c.source == "salesforce",
        parent.c.id == column,
        parent.c.deleted == sa.false(),
    )
    return sa.and_(
        child.c.source == "salesforce",
        child.c.deleted == sa.false(),
        column.is_not(None),
        column != "",
        ~has_parent,
    )


def count_orphans(conn: Connection) -> dict[str, int]:
    """Orphans per reference (``contacts.account``: 3, ...), zeros included."""
    out: dict[str, int] = {}
    for ref in REFERENCES:
        out[ref.kind] = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(ref.child).where(_orphan_condition(ref))
            ).scalar_one()
        )
    return out


def orphan_contacts(conn: Connection, *, scoped: bool = False) -> set[str]:
    """The ids of every orphan contact (its account is set but does not exist).

    ``scoped``: only those an incremental evaluation reaches (their account is in its scope).
    """
    where = [_orphan_condition(REFERENCES[0])]
    if scoped:
        where.append(in_scope(contacts))
    rows = conn.execute(sa.select(contacts.c.id).where(*where))
    return {str(r) for r in rows.scalars()}
