"""Identity matching: link Gainsight rows in the store to their Salesforce records, in SQL.

Run after a Gainsight sync (and whenever Salesforce rows arrive later). Everything is
set-based: a handful of ``UPDATE ... SET col = (correlated subquery)`` statements over indexed
lookups, never a Python loop over a table, so it costs the same whatever the org's size in
memory, on SQLite and PostgreSQL alike.

Rules, per entity (Gainsight rows: ``source = 'gainsight'``, not deleted; candidates:
``source = 'salesforce'``, not deleted):

* **accounts** — a company links by the Salesforce account id it carries (``sf_account_id``,
  filled by the mapping from e.g. ``Company.SfdcAccountId``). A 15-character id is widened to
  the 18-character id of the Salesforce account it names. An id that names no Salesforce
  account, or no id at all, is *unmatched*.
* **contacts** — a person links by the contact id it carries (``sf_contact_id``); when it carries
  none, or one that names no Salesforce contact, by normalised e-mail (``lower(trim(email))``)
  when exactly one Salesforce contact has it. Several Salesforce contacts with that e-mail are
  *ambiguous*: nothing is guessed. A linked person without an account gets its contact's.
* **nps_responses** — an answer links to a contact by the contact id it carries, else through
  its person (``person_id`` → that person's ``sf_contact_id``), else by unique e-mail; its
  ``account_id`` comes from the linked contact when it carries no valid one.

Unmatched and ambiguous rows are kept as they are (a carried id that names nothing stays, so a
Salesforce record synced later still links) and counted; nothing is deleted. Links are sticky:
an e-mail link, once made, is an id link on later runs.

People erased on request (``sync-service forget``) reach this step already stripped by the
ingest (:mod:`sync_service.privacy.tombstones`): their rows carry ids but no e-mail, so they
link by carried id only, and this step writes ids, never a personal value.

The counts go into ``run.counts`` as ``matched.<entity>``, ``unmatched.<entity>`` and
``ambiguous.<entity>``, always over every Gainsight row: the rows left unlinked are kept in
``identity_unlinked`` (with whether they are ambiguous), so a linking classifies only the
rows it links and counts the rest from there.

Incremental: a cycle links only the rows its changes reach (:mod:`.identity_scope`), read
from the identity marks the ingest wrote with the rows; the statements are the same, each
restricted to that scope, so the links are those a full linking would make. A full linking
(``full=True``: the reconciliation; or asked by a mark: a first load, a full read) links all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import NamedFromClause

from canonical.model import System
from sync_service.ops.locks import lock_key
from sync_service.store.models import (
    accounts,
    contacts,
    email_key,
    identity_unlinked,
    nps_responses,
)
from sync_service.sync import identity_scope
from sync_service.sync.identity_scope import Scope, temp_table

log = logging.getLogger(__name__)

GAINSIGHT = System.GAINSIGHT
SALESFORCE = System.SALESFORCE


@dataclass
class LinkCounts:
    """Matched, unmatched and ambiguous rows of one entity."""

    matched: int = 0
    unmatched: int = 0
    ambiguous: int = 0


@dataclass
class IdentityResult:
    """Link counts per entity (``accounts``, ``contacts``, ``nps_responses``)."""

    entities: dict[str, LinkCounts] = field(default_factory=dict)
    #: Whether every Gainsight row was linked (else only those the changes reach).
    full: bool = True
    #: Rows linked per table in an incremental linking.
    scope: dict[str, int] = field(default_factory=dict)

    def as_counts(self) -> dict[str, int]:
        """Flat counts for ``run.counts``: ``matched.accounts``, ``unmatched.contacts``, ..."""
        out: dict[str, int] = {}
        for name, c in self.entities.items():
            out[f"matched.{name}"] = c.matched
            out[f"unmatched.{name}"] = c.unmatched
            out[f"ambiguous.{name}"] = c.ambiguous
        return out


def _live(table: sa.Table, source: str) -> ColumnElement[bool]:
    return sa.and_(table.c.source == source, sa.not_(table.c.deleted))


def _valid(sf: sa.Table, ref: sa.ColumnElement[str | None]) -> ColumnElement[bool]:
    """``ref`` names a live Salesforce row of ``sf`` (an indexed primary-key probe)."""
    s = sf.alias("sf_valid")
    return sa.exists().where(s.c.source == SALESFORCE, sa.not_(s.c.deleted), s.c.id == ref)


def _widen_15(conn: Connection, target: sa.Table, col: str, sf: sa.Table, scope: Scope) -> int:
    """Replace 15-character Salesforce ids in ``target.col`` by the 18-character ids."""
    column = target.c[col]
    short = sa.and_(
        _live(target, GAINSIGHT),
        scope.covers(target),
        sa.func.length(column) == 15,
        sa.not_(_valid(sf, column)),
    )
    if not conn.execute(sa.select(sa.func.count()).select_from(target).where(short)).scalar_one():
        return 0
    s = sf.alias("sf_long")
    match = sa.and_(
        s.c.source == SALESFORCE,
        sa.not_(s.c.deleted),
        sa.func.length(s.c.id) == 18,
        sa.func.substr(s.c.id, 1, 15) == column,
    )
    result = conn.execute(
        target.update()
        .where(short, sa.exists().where(match))
        .values({col: sa.select(sa.func.min(s.c.id)).where(match).scalar_subquery()})
    )
    return int(result.rowcount or 0)


def _email_table(conn: Connection, scope: Scope) -> sa.Table:
    """A temporary table of Salesforce contacts by normalised e-mail, with duplicate counts.

    Of every e-mail, or of the e-mails of the rows in scope (probing the e-mail key index).
    """
    tmp = temp_table(
        conn,
        "tmp_identity_sf_email",
        sa.Column("email", sa.String(255), primary_key=True),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    em = email_key(contacts.c.email)
    wanted = scope.emails()
    grouped = (
        sa.select(
            em.label("email"),
            sa.func.min(contacts.c.id).label("contact_id"),
            sa.func.count().label("n"),
        )
        .where(
            _live(contacts, SALESFORCE),
            contacts.c.email.is_not(None),
            em != "",
            em.in_(wanted) if wanted is not None else sa.true(),
        )
        .group_by(em)
    )
    conn.execute(tmp.insert().from_select(["email", "contact_id", "n"], grouped))
    _analyze(conn, tmp.name)
    return tmp


def _analyze(conn: Connection, *tables: str) -> None:
    # Right after a large sync PostgreSQL's statistics still describe near-empty tables, and
    # it then plans the correlated lookups as nested loops over sequential scans (quadratic:
    # a minute for 50,000 rows instead of a second). ANALYZE samples a bounded number of rows.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"ANALYZE {', '.join(tables)}"))


def _counts(
    conn: Connection,
    table: sa.Table,
    scope: Scope,
    linked: ColumnElement[bool],
    ambiguous: ColumnElement[bool],
) -> LinkCounts:
    """Record the rows in scope left unlinked; count matched, unmatched, ambiguous over all.

    ``identity_unlinked`` holds the live rows the last linkings left unlinked; only the
    scope's are classified again (a row out of scope keeps its class: nothing it reads
    changed), so the counts cost the rows in scope plus one count of the live rows.
    """
    u = identity_unlinked
    mine = u.c.entity == table.name
    conn.execute(u.delete().where(mine, scope.covers_id(table, u.c.id)))
    unlinked = sa.select(
        sa.literal(table.name, sa.String()),
        table.c.id,
        sa.case((ambiguous, sa.true()), else_=sa.false()),
    ).where(_live(table, GAINSIGHT), scope.covers(table), sa.not_(linked))
    conn.execute(u.insert().from_select(["entity", "id", "ambiguous"], unlinked))
    total = conn.execute(
        sa.select(sa.func.count()).select_from(table).where(_live(table, GAINSIGHT))
    ).scalar_one()
    # of live rows: one deleted (or removed) since it was recorded is not counted; an EXISTS
    # probe per recorded row, so that SQLite does not scan the table and probe the records
    live = sa.exists().where(
        table.c.source == GAINSIGHT, table.c.id == u.c.id, sa.not_(table.c.deleted)
    )
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((u.c.ambiguous, 1))), 0))
        .select_from(u)
        .where(mine, live)
    ).one()
    amb = int(row[1])
    return LinkCounts(matched=int(total) - int(row[0]), unmatched=int(row[0]) - amb, ambiguous=amb)


def link_accounts(conn: Connection, scope: Scope) -> LinkCounts:
    """Verify and widen the Salesforce account ids Gainsight companies carry."""
    _widen_15(conn, accounts, "sf_account_id", accounts, scope)
    linked = _valid(accounts, accounts.c.sf_account_id)
    return _counts(conn, accounts, scope, linked, sa.false())


def _email_probe(
    tmp: sa.Table, email: sa.ColumnElement[str | None]
) -> tuple[NamedFromClause, ColumnElement[bool]]:
    t = tmp.alias("sf_email")
    return t, t.c.email == email_key(email)


def _shared(tmp: sa.Table, email: sa.ColumnElement[str | None]) -> ColumnElement[bool]:
    """Several live Salesforce contacts have this e-mail (``tmp`` holds every one in scope)."""
    t, same_email = _email_probe(tmp, email)
    return sa.exists().where(same_email, t.c.n > 1)


def link_contacts(conn: Connection, tmp: sa.Table, scope: Scope) -> LinkCounts:
    """Link Gainsight people to Salesforce contacts by carried id, else by unique e-mail."""
    _widen_15(conn, contacts, "sf_contact_id", contacts, scope)
    t, same_email = _email_probe(tmp, contacts.c.email)
    unlinked = sa.and_(
        _live(contacts, GAINSIGHT),
        scope.covers(contacts),
        sa.not_(_valid(contacts, contacts.c.sf_contact_id)),
    )
    conn.execute(
        contacts.update()
        .where(unlinked, sa.exists().where(same_email, t.c.n == 1))
        .values(
            sf_contact_id=sa.select(t.c.contact_id).where(same_email, t.c.n == 1).scalar_subquery()
        )
    )
    # A linked person without an account takes its Salesforce contact's account.
    s = contacts.alias("sf_contact")
    own = sa.and_(s.c.source == SALESFORCE, s.c.id == contacts.c.sf_contact_id)
    conn.execute(
        contacts.update()
        .where(
            _live(contacts, GAINSIGHT),
            scope.covers(contacts),
            contacts.c.account_id.is_(None),
            sa.exists().where(own, s.c.account_id.is_not(None)),
        )
        .values(account_id=sa.select(s.c.account_id).where(own).scalar_subquery())
    )
    linked = _valid(contacts, contacts.c.sf_contact_id)
    return _counts(conn, contacts, scope, linked, _shared(tmp, contacts.c.email))


def link_nps(conn: Connection, tmp: sa.Table, scope: Scope) -> LinkCounts:
    """Link NPS answers to contacts (carried id, person, e-mail) and to accounts."""
    n = nps_responses
    _widen_15(conn, n, "contact_id", contacts, scope)
    _widen_15(conn, n, "account_id", accounts, scope)

    def unlinked() -> ColumnElement[bool]:
        return sa.and_(
            _live(n, GAINSIGHT), scope.covers(n), sa.not_(_valid(contacts, n.c.contact_id))
        )

    # Through the person: a Gainsight person already linked to a live Salesforce contact.
    p = contacts.alias("gs_person")
    via_person = sa.and_(
        p.c.source == GAINSIGHT,
        p.c.id == n.c.person_id,
        _valid(contacts, p.c.sf_contact_id),
    )
    conn.execute(
        n.update()
        .where(unlinked(), n.c.person_id.is_not(None), sa.exists().where(via_person))
        .values(contact_id=sa.select(p.c.sf_contact_id).where(via_person).scalar_subquery())
    )
    t, same_email = _email_probe(tmp, n.c.email)
    conn.execute(
        n.update()
        .where(unlinked(), sa.exists().where(same_email, t.c.n == 1))
        .values(
            contact_id=sa.select(t.c.contact_id).where(same_email, t.c.n == 1).scalar_subquery()
        )
    )
    # The account: the carried one if it is a live Salesforce account, else the contact's.
    s = contacts.alias("sf_contact")
    own = sa.and_(s.c.source == SALESFORCE, s.c.id == n.c.contact_id)
    conn.execute(
        n.update()
        .where(
            _live(n, GAINSIGHT),
            scope.covers(n),
            sa.not_(_valid(accounts, n.c.account_id)),
            sa.exists().where(own, s.c.account_id.is_not(None)),
        )
        .values(account_id=sa.select(s.c.account_id).where(own).scalar_subquery())
    )
    return _counts(conn, n, scope, _valid(contacts, n.c.contact_id), _shared(tmp, n.c.email))


def link_identities(engine: Engine, *, full: bool = False) -> IdentityResult:
    """Link the Gainsight rows to Salesforce in one transaction; return the counts.

    Only the rows the identity marks reach, unless ``full`` or a mark asks for all.
    """
    with engine.begin() as conn:
        result = link_identities_in(conn, full=full)
    how = "all rows" if result.full else f"changed rows only {result.scope}"
    for name, c in result.entities.items():
        log.info(
            "identity %s: %d matched, %d unmatched, %d ambiguous (%s)",
            name,
            c.matched,
            c.unmatched,
            c.ambiguous,
            how,
        )
    return result


def _one_at_a_time(conn: Connection) -> None:
    """Wait for any other linking to commit before this one reads anything.

    A reconciliation and a Gainsight sync (each under a stage lock of its own) may link at
    once, and each rewrites the unlinked rows it classifies. PostgreSQL: a transaction
    advisory lock. SQLite: the transaction opened as the writer now (pysqlite opens it at the
    first write, and a reader turning writer while another writes fails at once).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("identity.link"))))
    elif conn.dialect.name == "sqlite" and not getattr(
        conn.connection.dbapi_connection, "in_transaction", True
    ):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def link_identities_in(conn: Connection, *, full: bool = False) -> IdentityResult:
    """:func:`link_identities` inside the caller's transaction."""
    _one_at_a_time(conn)
    marks = identity_scope.take_marks(conn)
    full = full or identity_scope.wants_full(conn, marks)
    if full:
        scope = Scope()
        _analyze(conn, accounts.name, contacts.name, nps_responses.name)
    else:
        scope = identity_scope.build_scope(conn, marks)
    result = IdentityResult(full=full, scope=scope.size(conn))
    result.entities["accounts"] = link_accounts(conn, scope)
    tmp = _email_table(conn, scope)
    try:
        result.entities["contacts"] = link_contacts(conn, tmp, scope)
        result.entities["nps_responses"] = link_nps(conn, tmp, scope)
    finally:
        tmp.drop(conn)
        scope.drop(conn)
    identity_scope.consume(conn, marks)
    return result


def link_all(engine: Engine, *, full: bool = False) -> dict[str, int]:
    """:func:`link_identities` as flat ``run.counts`` entries (what the pipeline records)."""
    return link_identities(engine, full=full).as_counts()
