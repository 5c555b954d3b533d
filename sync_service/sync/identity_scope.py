"""Which Gainsight rows an incremental identity linking relinks: those its marks reach.

The ingest marks (:mod:`sync_service.sync.changes`, entities ``id:<table>``) every Gainsight
row new or changed in what linking reads, and every Salesforce account or contact new or
changed in what it reads, a contact with its e-mail before the change (``prior``). The
linking of a row reads only the row itself, the Salesforce rows it names or shares an
e-mail with, and (an NPS answer) its person's link; so the rows to relink are:

* the marked Gainsight rows;
* the Gainsight rows that name a marked Salesforce row, by its id or its 15-character form
  (a deleted contact unlinks them, a late one links them);
* the people and answers whose normalised e-mail is a marked contact's old or new one (a
  changed e-mail makes theirs unique, ambiguous or unmatched);
* the answers of every person in scope (they link through the person).

Every other row links as it did: nothing it reads changed. The scope is a temporary table of
ids per table; the linking's statements are the full ones restricted to it.

The lookups by a carried id do not ask for the Gainsight source: SQLite, without
statistics, would then probe the primary key by source alone (every Gainsight row, for each
mark) instead of the index of the id looked up. (Only Gainsight rows carry those ids; any
other row in a scope is skipped by the linking's statements, all of Gainsight rows.) The
e-mail key indexes hold the source after the e-mail for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import System
from sync_service.store.models import accounts, contacts, email_key, eval_marks, nps_responses
from sync_service.sync.changes import ID, ID_FULL

GAINSIGHT = System.GAINSIGHT
SALESFORCE = System.SALESFORCE

#: The Gainsight tables identity linking writes.
LINKED = (accounts, contacts, nps_responses)


def temp_table(conn: Connection, name: str, *columns: sa.Column[object]) -> sa.Table:
    """Create the temporary table ``name`` afresh (one a failed run left behind is dropped)."""
    table = sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
    table.drop(conn, checkfirst=True)
    table.create(conn)
    return table


def take_marks(conn: Connection) -> sa.Table:
    """Copy the identity marks into a temporary table: what this linking reads and consumes.

    Marks committed meanwhile stay for the next linking, whatever their number.
    """
    m = eval_marks
    cols = ["seq", "source", "entity", "id", "prior"]
    # the columns as eval_marks declares them, so that the copy cannot drift from its source
    marks = temp_table(
        conn,
        "tmp_identity_marks",
        *(
            sa.Column(
                c,
                m.c[c].type,
                primary_key=c == "seq",
                autoincrement=False,
                nullable=m.c[c].nullable,
            )
            for c in cols
        ),
    )
    conn.execute(
        marks.insert().from_select(
            cols, sa.select(*[m.c[c] for c in cols]).where(m.c.entity.startswith(ID))
        )
    )
    return marks


def wants_full(conn: Connection, marks: sa.Table) -> bool:
    """Whether a mark read asks for a full linking (a first load, a full read)."""
    return (
        conn.execute(sa.select(marks.c.seq).where(marks.c.entity == ID_FULL).limit(1)).first()
        is not None
    )


def consume(conn: Connection, marks: sa.Table) -> int:
    """Delete the marks read (in the linking's transaction); return how many."""
    done = conn.execute(eval_marks.delete().where(eval_marks.c.seq.in_(sa.select(marks.c.seq))))
    marks.drop(conn)
    return int(done.rowcount or 0)


@dataclass(frozen=True)
class Scope:
    """The ids of the Gainsight rows to link, per table; ``None``: every row (a full linking)."""

    ids: dict[str, sa.Table] | None = None

    def covers(self, table: sa.Table) -> ColumnElement[bool]:
        """The condition restricting a statement on ``table``'s Gainsight rows to the scope."""
        return self.covers_id(table, table.c.id)

    def covers_id(self, table: sa.Table, rid: ColumnElement[str]) -> ColumnElement[bool]:
        """Whether ``rid``, an id of ``table``'s Gainsight rows, is in scope."""
        if self.ids is None:
            return sa.true()
        return rid.in_(sa.select(self.ids[table.name].c.id))

    def emails(self) -> sa.Select[tuple[str]] | None:
        """The normalised e-mails of the people and answers in scope (None: all of them)."""
        if self.ids is None:
            return None
        parts = [
            sa.select(email_key(t.c.email)).where(
                t.c.source == GAINSIGHT, self.covers(t), t.c.email.is_not(None)
            )
            for t in (contacts, nps_responses)
        ]
        return sa.select(sa.union(*parts).subquery().c[0])

    def drop(self, conn: Connection) -> None:
        """Drop the scope's temporary tables."""
        for table in (self.ids or {}).values():
            table.drop(conn)

    def size(self, conn: Connection) -> dict[str, int]:
        """Gainsight rows in scope per table (for the log and the run's counts)."""
        sizes: dict[str, int] = {}
        for table in LINKED:
            if self.ids is not None:
                ids = self.ids[table.name]
                gs = sa.exists().where(table.c.source == GAINSIGHT, table.c.id == ids.c.id)
                count = sa.select(sa.func.count()).select_from(ids).where(gs)
                sizes[table.name] = int(conn.execute(count).scalar_one())
        return sizes


def _marked(marks: sa.Table, source: str, table: sa.Table) -> ColumnElement[bool]:
    return sa.and_(marks.c.source == source, marks.c.entity == ID + table.name)


def _naming(
    marks: sa.Table, target: sa.Table, col: str, sf: sa.Table
) -> list[sa.Select[tuple[str]]]:
    """Ids of ``target``'s Gainsight rows whose ``col`` names a marked row of ``sf``.

    By the 18-character id and by its 15-character form (the linking widens that one).
    """
    column = target.c[col]
    return [
        sa.select(target.c.id)
        .select_from(marks.join(target, column == key))
        .where(_marked(marks, SALESFORCE, sf))
        for key in (marks.c.id, sa.func.substr(marks.c.id, 1, 15))
    ]


def _email_keys(conn: Connection, marks: sa.Table) -> sa.Table:
    """The old and new normalised e-mails of the marked Salesforce contacts."""
    keys = temp_table(
        conn, "tmp_identity_email_keys", sa.Column("email", sa.String(255), primary_key=True)
    )
    s = contacts.alias("marked_contact")
    current = (
        sa.select(email_key(s.c.email).label("email"))
        .select_from(marks.join(s, sa.and_(s.c.source == SALESFORCE, s.c.id == marks.c.id)))
        .where(_marked(marks, SALESFORCE, contacts))
    )
    prior = sa.select(email_key(marks.c.prior).label("email")).where(
        _marked(marks, SALESFORCE, contacts)
    )
    both = sa.union(current, prior).subquery()
    conn.execute(
        keys.insert().from_select(
            ["email"], sa.select(both.c.email).where(both.c.email.is_not(None), both.c.email != "")
        )
    )
    return keys


def _by_email(keys: sa.Table, target: sa.Table) -> sa.Select[tuple[str]]:
    """Ids of ``target``'s Gainsight rows with one of ``keys``' e-mails (the e-mail key index).

    The keys are compared as an expression (normalising them again changes nothing): against
    a typed column SQLite compares under the column's affinity, and then not by the index.
    """
    wanted = sa.select(email_key(keys.c.email))
    return sa.select(target.c.id).where(
        email_key(target.c.email).in_(wanted), target.c.source == GAINSIGHT
    )


def _fill(conn: Connection, name: str, parts: list[sa.Select[tuple[str]]]) -> sa.Table:
    scope = temp_table(conn, name, sa.Column("id", sa.String(64), primary_key=True))
    union = sa.union(*parts).subquery()
    conn.execute(scope.insert().from_select(["id"], sa.select(union.c[0])))
    return scope


def build_scope(conn: Connection, marks: sa.Table) -> Scope:
    """The Gainsight rows the marks reach, per table (see the module's docstring)."""
    keys = _email_keys(conn, marks)
    ids: dict[str, sa.Table] = {}
    ids[accounts.name] = _fill(
        conn,
        "tmp_identity_scope_accounts",
        [
            sa.select(marks.c.id).where(_marked(marks, GAINSIGHT, accounts)),
            *_naming(marks, accounts, "sf_account_id", accounts),
        ],
    )
    people = _fill(
        conn,
        "tmp_identity_scope_contacts",
        [
            sa.select(marks.c.id).where(_marked(marks, GAINSIGHT, contacts)),
            *_naming(marks, contacts, "sf_contact_id", contacts),
            _by_email(keys, contacts),
        ],
    )
    ids[contacts.name] = people
    n = nps_responses
    ids[n.name] = _fill(
        conn,
        "tmp_identity_scope_nps",
        [
            sa.select(marks.c.id).where(_marked(marks, GAINSIGHT, n)),
            *_naming(marks, n, "contact_id", contacts),
            *_naming(marks, n, "account_id", accounts),
            _by_email(keys, n),
            sa.select(n.c.id).where(n.c.person_id.in_(sa.select(people.c.id))),
        ],
    )
    keys.drop(conn)
    if conn.dialect.name == "postgresql":
        # fresh temporary tables have no statistics: the planner would guess their size
        conn.execute(sa.text(f"ANALYZE {', '.join(t.name for t in ids.values())}"))
    return Scope(ids)
