"""Find the contact or account a person means: a 15- or 18-character id, an e-mail or a name.

Salesforce ids come in two forms: 15 characters, case-sensitive (what the UI's address bar and
reports show) and 18 characters, case-insensitive (what the API returns, and what the store
keeps). The last three characters of the long form are a checksum of the capitals in the short
one: for each block of five characters, a 5-bit number whose bit ``i`` is set when character
``i`` is an upper-case letter, used as an index into ``A..Z0..5``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.store.models import accounts, contacts, email_key

SALESFORCE = "salesforce"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")
#: Matches listed when a name or e-mail fits several records.
MAX_MATCHES = 20


def to_18(sf_id: str) -> str:
    """The 18-character form of a Salesforce id (an 18-character id is returned as is).

    Raises:
        ValueError: ``sf_id`` is not 15 or 18 letters and digits.
    """
    if not _ID.match(sf_id):
        msg = f"'{sf_id}' is not a Salesforce id (15 or 18 letters and digits)"
        raise ValueError(msg)
    if len(sf_id) == 18:
        return sf_id
    suffix = ""
    for block in range(3):
        chunk = sf_id[block * 5 : block * 5 + 5]
        index = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SUFFIX_ALPHABET[index]
    return sf_id + suffix


@dataclass(frozen=True)
class Match:
    """One contact or account a query found."""

    entity_type: str  # "contact" or "account"
    id: str
    name: str
    account_name: str | None = None

    def label(self) -> str:
        """``Jane Doe (Acme Corp)`` or ``Acme Corp``: who this is, for people."""
        name = self.name or "(no name)"
        return f"{name} ({self.account_name})" if self.account_name else name


def _contact_name() -> sa.ColumnElement[str]:
    return sa.func.trim(
        sa.func.coalesce(contacts.c.first_name, "")
        + " "
        + sa.func.coalesce(contacts.c.last_name, "")
    )


def _contacts(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> list[Match]:
    rows = conn.execute(
        sa.select(contacts.c.id, _contact_name().label("name"), accounts.c.name.label("account"))
        .select_from(contacts)
        .outerjoin(
            accounts,
            sa.and_(accounts.c.id == contacts.c.account_id, accounts.c.source == SALESFORCE),
        )
        .where(contacts.c.source == SALESFORCE, contacts.c.deleted.is_(False), condition)
        .order_by(contacts.c.last_name, contacts.c.first_name, contacts.c.id)
        .limit(MAX_MATCHES + 1)
    ).all()
    return [Match("contact", r.id, r.name or "", r.account) for r in rows]


def _accounts(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> list[Match]:
    rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.name)
        .where(accounts.c.source == SALESFORCE, accounts.c.deleted.is_(False), condition)
        .order_by(accounts.c.name, accounts.c.id)
        .limit(MAX_MATCHES + 1)
    ).all()
    return [Match("account", r.id, r.name or "") for r in rows]


def find(engine: Engine, query: str) -> list[Match]:
    """Every contact or account ``query`` names (an id finds at most one).

    An id (15 or 18 characters) is matched exactly; an e-mail (anything with ``@``) against
    contacts' e-mails ignoring case and spaces; anything else against contact and account
    names, whole names first, then names that contain it. At most ``MAX_MATCHES + 1`` come
    back (the caller says "more").
    """
    text = query.strip()
    with engine.connect() as conn:
        found = _contacts(conn, contacts.c.id == text) or _accounts(conn, accounts.c.id == text)
        if found:  # the id as stored (other sources' ids have other shapes)
            return found
        if _ID.match(text):
            long_id = to_18(text)
            found = _contacts(conn, contacts.c.id == long_id) or _accounts(
                conn, accounts.c.id == long_id
            )
            if found or len(text) == 18:
                return found
        if "@" in text:
            return _contacts(conn, email_key(contacts.c.email) == text.lower())
        if not text:
            return []
        name = text.lower()
        exact = _contacts(conn, sa.func.lower(_contact_name()) == name) + _accounts(
            conn, sa.func.lower(accounts.c.name) == name
        )
        if exact:
            return exact
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return _contacts(
            conn, sa.func.lower(_contact_name()).like(pattern, escape="\\")
        ) + _accounts(conn, sa.func.lower(accounts.c.name).like(pattern, escape="\\"))
