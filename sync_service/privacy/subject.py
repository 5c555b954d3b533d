"""Find one person everywhere the store holds them, by direct queries.

A person is asked for by a CRM contact id (Salesforce or Gainsight, 15 or 18 characters) or by
an e-mail address. Their contact rows are found by id, by the Salesforce contact id a Gainsight
person carries, and by normalised e-mail, until a round finds nothing new (a Gainsight person
found by e-mail brings its Salesforce contact id, whose row may hold another address). Every
other table is then queried by those ids and addresses; ``forget`` and ``export-subject`` use
the same queries, so what is exported is what is erased.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from canonical.errors import InputError
from canonical.model import System
from canonical.redaction import email_token
from sync_service.privacy.keys import normalise_email, normalise_id
from sync_service.store.models import (
    advocacy_asks,
    contacts,
    email_key,
    evaluation_history,
    evaluations,
    nps_responses,
    quarantine,
    runs,
    tickets,
    writeback_log,
    writeback_outbox,
    writeback_state,
)

#: Rounds of id -> e-mail -> id expansion, at most (it stops when a round finds nothing new;
#: a person's rows link within two or three hops).
_ROUNDS = 5


@dataclass
class Subject:
    """One person: what they were asked by, and every id and address found for them.

    Attributes:
        kind: ``id`` or ``email`` (what the request named).
        key: the normalised id or e-mail the request named.
        contact_rows: ``(source, id)`` of every contact row (Salesforce and Gainsight) found.
        ids: every CRM id naming the person (row ids and carried Salesforce contact ids), in
            the forms the store may hold (18 characters and the 15-character head).
        sf_contact_ids: the Salesforce contact ids among them (18 characters).
        emails: every normalised e-mail found.
        names: full names found (``First Last``), for scanning free text.
    """

    kind: str
    key: str
    contact_rows: set[tuple[str, str]] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    sf_contact_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add_id(self, value: str | None) -> None:
        """Record an id as found and normalised (a Salesforce id also as its 15-char head)."""
        raw = str(value).strip() if value is not None else ""
        norm = normalise_id(raw)
        if not norm:
            return
        self.ids.update({raw, norm})
        if len(norm) == 18 and len(raw) in (15, 18):  # a Salesforce id: both forms
            self.ids.add(norm[:15])

    def text_terms(self) -> list[str]:
        """Strings whose presence in a free-text column (errors, payloads) names the person."""
        terms = {*self.ids, *self.emails, *(email_token(e) for e in self.emails), *self.names}
        return sorted(t for t in terms if len(t) >= 5)


def parse_request(contact: str | None, email: str | None) -> tuple[str, str]:
    """``(kind, normalised key)`` of a request naming exactly one of a contact id or an e-mail.

    Raises:
        InputError: neither or both given, or a value that is no id or address.
    """
    if (contact is None) == (email is None):
        msg = "name the person by exactly one of --contact ID or --email ADDRESS"
        raise InputError(msg)
    if contact is not None:
        norm = normalise_id(contact)
        if not norm or not norm.replace("-", "").replace("_", "").isalnum():
            msg = "--contact must be a CRM record id (letters and digits)"
            raise InputError(msg)
        return "id", norm
    norm_email = normalise_email(email)
    if norm_email is None:
        msg = "--email must be an e-mail address"
        raise InputError(msg)
    return "email", norm_email


def _email_match(col: Any, emails: Iterable[str]) -> ColumnElement[bool]:
    wanted = sorted(emails)
    if not wanted:
        return sa.false()
    # The indexed column as stored, or (for a mapping without the lower/strip transforms)
    # its normalised form.
    return sa.or_(col.in_(wanted), email_key(col).in_(wanted))


def resolve(conn: Connection, kind: str, key: str) -> Subject:
    """Every contact row, id and address of the person named by ``(kind, key)``."""
    subject = Subject(kind, key)
    if kind == "id":
        subject.add_id(key)
    else:
        subject.emails.add(key)
    for _ in range(_ROUNDS):
        ids = sorted(subject.ids)
        found = conn.execute(
            sa.select(
                contacts.c.source,
                contacts.c.id,
                contacts.c.sf_contact_id,
                contacts.c.email,
                contacts.c.first_name,
                contacts.c.last_name,
            ).where(
                sa.or_(
                    contacts.c.id.in_(ids),
                    contacts.c.sf_contact_id.in_(ids),
                    _email_match(contacts.c.email, subject.emails),
                )
            )
        ).all()
        before = (len(subject.ids), len(subject.emails))
        for row in found:
            subject.contact_rows.add((row.source, row.id))
            subject.add_id(row.id)
            subject.add_id(row.sf_contact_id)
            if row.source == System.SALESFORCE:
                subject.sf_contact_ids.add(str(normalise_id(row.id)))
            if row.sf_contact_id:
                subject.sf_contact_ids.add(str(normalise_id(row.sf_contact_id)))
            email = normalise_email(row.email)
            if email:
                subject.emails.add(email)
            full = " ".join(p for p in (row.first_name, row.last_name) if p)
            if full:
                subject.names.add(full)
        if (len(subject.ids), len(subject.emails)) == before:
            break
    return subject


def _text_match(col: Any, terms: list[str]) -> ColumnElement[bool]:
    if not terms:
        return sa.false()
    text = sa.cast(col, sa.Text())
    return sa.or_(*(text.contains(t, autoescape=True) for t in terms))


def table_filters(subject: Subject) -> dict[str, tuple[sa.Table, ColumnElement[bool]]]:
    """Per table, the WHERE clause that finds the person's rows (direct queries, no joins)."""
    ids = sorted(subject.ids)
    terms = subject.text_terms()
    n = nps_responses
    return {
        "contacts": (
            contacts,
            sa.or_(
                sa.tuple_(contacts.c.source, contacts.c.id).in_(sorted(subject.contact_rows))
                if subject.contact_rows
                else sa.false(),
            ),
        ),
        "nps_responses": (
            n,
            sa.or_(
                n.c.contact_id.in_(ids),
                n.c.person_id.in_(ids),
                _email_match(n.c.email, subject.emails),
            ),
        ),
        "advocacy_asks": (advocacy_asks, advocacy_asks.c.contact_id.in_(ids)),
        "tickets": (tickets, tickets.c.contact_id.in_(ids)),
        "evaluations": (evaluations, evaluations.c.entity_id.in_(ids)),
        "evaluation_history": (evaluation_history, evaluation_history.c.entity_id.in_(ids)),
        "writeback_outbox": (
            writeback_outbox,
            sa.or_(
                writeback_outbox.c.record_id.in_(ids),
                _text_match(writeback_outbox.c.last_error, terms),
            ),
        ),
        "writeback_state": (writeback_state, writeback_state.c.record_id.in_(ids)),
        "writeback_log": (writeback_log, writeback_log.c.record_id.in_(ids)),
        "quarantine": (
            quarantine,
            sa.or_(
                quarantine.c.record_id.in_(ids),
                _text_match(quarantine.c.payload, terms),
                _text_match(quarantine.c.reason, terms),
            ),
        ),
        "runs": (
            runs,
            sa.or_(_text_match(runs.c.error, terms), _text_match(runs.c.config_errors, terms)),
        ),
    }


def related_ids(conn: Connection, subject: Subject) -> set[str]:
    """Ids of the person's NPS answers, asks and tickets (their quarantine entries use them)."""
    out: set[str] = set()
    filters = table_filters(subject)
    for name in ("nps_responses", "advocacy_asks", "tickets"):
        table, where = filters[name]
        out.update(str(i) for i in conn.execute(sa.select(table.c.id).where(where)).scalars())
    return out
