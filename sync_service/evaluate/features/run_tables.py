"""The per-run temporary tables: what chunking by account range cannot find by itself.

An ask or NPS answer normally carries its contact's account; one that does not (the contact
moved, the link was filled later) is copied into a temporary table with the contact's account,
so chunking by account range never loses it. Gainsight contacts carry the Salesforce contact
they match, not its account: their opt flags are filed under it in a third table. The tables
are filled once per run (:meth:`RunTables.prepare`, or in parts on connections of their own)
and dropped at its end.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from sync_service.evaluate.features.sql import (
    GAINSIGHT,
    SALESFORCE,
    Dialect,
    id_range,
    live,
    tri,
)
from sync_service.store.models import advocacy_asks, contacts, nps_responses

_ASK_COLS = ("id", "contact_id", "account_id", "ask_type", "team", "status", "requested_date")
_NPS_COLS = ("id", "contact_id", "account_id", "score", "responded_at")


class RunTables:
    """The temporary tables of one run (asks and answers filed elsewhere, Gainsight opt flags)."""

    def __init__(self, dialect: Dialect, *, want_opt: bool) -> None:
        self.d = dialect
        self.want_opt = want_opt
        # an incremental evaluation: only rows of contacts whose account is in eval_scope
        self.scoped = False
        meta = sa.MetaData()
        self.stray_asks = sa.Table(
            "feat_stray_asks",
            meta,
            *[sa.Column(c, advocacy_asks.c[c].type) for c in _ASK_COLS],
            sa.Column("c_account_id", sa.String(64)),
            prefixes=["TEMPORARY"],
        )
        self.stray_nps = sa.Table(
            "feat_stray_nps",
            meta,
            *[sa.Column(c, nps_responses.c[c].type) for c in _NPS_COLS],
            sa.Column("c_account_id", sa.String(64)),
            prefixes=["TEMPORARY"],
        )
        self.gs_contacts = sa.Table(
            "feat_gs_contacts",
            meta,
            sa.Column("contact_id", sa.String(64)),
            sa.Column("g_out", sa.Integer()),
            sa.Column("g_in", sa.Integer()),
            sa.Column("c_account_id", sa.String(64), index=True),
            prefixes=["TEMPORARY"],
        )

    def prepare(self, conn: Connection) -> None:
        """Collect, once per run, what chunking by account range cannot find by itself.

        An ask or answer normally carries its contact's account; one that does not (the
        contact moved, the link was filled later) is copied here with the contact's account,
        so chunking by account range never loses it. Gainsight contacts carry the Salesforce
        contact they match, not its account: their opt flags are filed here under it.
        """
        for fill in self.prepare_parts().values():
            fill(conn)

    def prepare_parts(self) -> dict[str, Callable[[Connection], None]]:
        """:meth:`prepare` in parts, one per temporary table (by name).

        Each part may run on a connection of its own; its table is then read through it.
        """
        parts: dict[str, Callable[[Connection], None]] = {
            stray.name: functools.partial(self._fill_strays, table, stray)
            for table, stray in ((advocacy_asks, self.stray_asks), (nps_responses, self.stray_nps))
        }
        if self.want_opt:
            parts[self.gs_contacts.name] = self._fill_gs_contacts
        return parts

    def _fill_strays(self, table: sa.Table, stray: sa.Table, conn: Connection) -> None:
        stray.drop(conn, checkfirst=True)
        stray.create(conn)
        cols = [table.c[x.name] for x in stray.c if x.name != "c_account_id"]
        with self._merge_anti_join(conn):
            conn.execute(
                stray.insert().from_select([x.name for x in stray.c], self._strays(table, cols))
            )

    @contextlib.contextmanager
    def _merge_anti_join(self, conn: Connection) -> Iterator[None]:
        """PostgreSQL, a whole run: the strays' anti-join merges the two covering indexes.

        Both are in (account_id, contact) order, so a merge reads each once, in order, with no
        memory; the planner prefers a hash of every contact, which at 200,000 contacts already
        spills to disk and takes ~1.8x the time (and far more at 1M, where the readers wait
        for it). Hash joins are turned off for that statement only (the transaction's setting
        is restored); an incremental run keeps the planner's choice (its scope drives).
        """
        if self.d.name == "sqlite" or self.scoped:
            yield
            return
        was = conn.exec_driver_sql("SELECT current_setting('enable_hashjoin')").scalar()
        conn.exec_driver_sql("SELECT set_config('enable_hashjoin', 'off', true)")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT set_config('enable_hashjoin', '{was}', true)")

    def _fill_gs_contacts(self, conn: Connection) -> None:
        c, gs, g = contacts, contacts.alias("gsc"), self.gs_contacts
        g.drop(conn, checkfirst=True)
        g.create(conn)
        conn.execute(
            g.insert().from_select(
                [x.name for x in g.c],
                sa.select(
                    gs.c.sf_contact_id,
                    tri(gs.c.opted_out),
                    tri(gs.c.opted_in),
                    c.c.account_id,
                )
                .select_from(gs.join(c, c.c.id == gs.c.sf_contact_id))
                .where(
                    self._source_is(gs, GAINSIGHT),
                    live(gs),
                    c.c.source == SALESFORCE,
                    live(c),
                    c.c.account_id.is_not(None),
                    # the scope's contacts drive, by the sf_contact_id index: with the scope
                    # tested on the Salesforce row instead, SQLite reads every Gainsight
                    # contact and probes it once per account in scope (minutes at 110k)
                    *self._of_scope(gs.c.sf_contact_id),
                )
                .group_by(gs.c.sf_contact_id, c.c.account_id),
            )
        )

    def _source_is(self, t: Any, source: str) -> ColumnElement[bool]:
        """``t.source = source``; scoped on SQLite, in a form its planner cannot use as a key.

        Otherwise SQLite reads every row of that source through the primary key (source, id)
        and tests each against the scope, rather than let the scope's few ids drive through
        their own index (5 s instead of a fraction of one at 1M contacts).
        """
        if self.scoped and self.d.name == "sqlite":
            wrapped: ColumnElement[bool] = sa.func.coalesce(t.c.source, "") == source
            return wrapped
        plain: ColumnElement[bool] = t.c.source == source
        return plain

    def _in_scope(self, account_id: Any) -> list[ColumnElement[bool]]:
        return id_range(account_id, None, None, scoped=self.scoped)

    def _of_scope(self, contact_id: Any) -> list[ColumnElement[bool]]:
        """``contact_id`` names a contact filed under an account in scope (no test unscoped).

        The scope's contacts drive, each probing the index on ``contact_id``: the rest of the
        table is never read.
        """
        if not self.scoped:
            return []
        reached = contacts.alias("reached")
        ids = sa.select(reached.c.id).where(*self._in_scope(reached.c.account_id))
        return [contact_id.in_(ids)]

    def _strays(self, table: sa.Table, cols: list[Any]) -> sa.Select[Any]:
        """Live rows of ``table`` not filed under their contact's account, with that account."""
        c = contacts
        known: tuple[ColumnElement[bool], ...] = (
            c.c.source == SALESFORCE,
            live(c),
            c.c.account_id.is_not(None),
        )
        if self.d.name != "sqlite" and self.scoped:  # one hash join, driven by the scope
            known = (*known, *self._in_scope(c.c.account_id))
            return (
                sa.select(*cols, c.c.account_id)
                .select_from(table.join(c, c.c.id == table.c.contact_id))
                .where(
                    live(table),
                    *known,
                    *self._of_scope(table.c.contact_id),
                    sa.or_(table.c.account_id.is_(None), table.c.account_id != c.c.account_id),
                )
            )
        # The usual row (filed under its contact's account) is ruled out first through the
        # covering (account_id, id) index, and only the rest looks its contact up: SQLite
        # joins by lookups, PostgreSQL merges the two covering indexes (_merge_anti_join).
        # The source test is wrapped so that SQLite does not pick the (source, id) key
        # instead, which reads the table once per row (4x slower).
        own = c.alias("own")
        source = sa.func.coalesce(own.c.source, "") if self.d.name == "sqlite" else own.c.source
        filed_with_contact = sa.exists().where(
            own.c.account_id == table.c.account_id,
            own.c.id == table.c.contact_id,
            source == SALESFORCE,
            live(own),
        )
        # materialised, so that the planner cannot turn the join around (contacts first, then
        # every answer of each contact from the table: 10 s instead of 1 s at 1M contacts)
        candidates = (
            sa.select(*cols)
            .where(
                live(table),
                table.c.contact_id.is_not(None),
                *self._of_scope(table.c.contact_id),
                ~filed_with_contact,
            )
            .cte("cand")
            .prefix_with("MATERIALIZED")
        )
        if self.scoped:
            # the scope's few candidates drive, each looking its contact up by key: joined,
            # SQLite reads every contact and probes the candidates (5 s at 1M for a 1% scope)
            account = (
                sa.select(c.c.account_id)
                .where(c.c.id == candidates.c.contact_id, *known)
                .scalar_subquery()
            )
            moved = sa.select(*candidates.c, account.label("c_account_id")).subquery()
            return sa.select(*moved.c).where(moved.c.c_account_id.is_not(None))
        return (
            sa.select(*candidates.c, c.c.account_id)
            .select_from(candidates.join(c, c.c.id == candidates.c.contact_id))
            .where(*known)
        )

    def cleanup(self, conn: Connection) -> None:
        """Drop the per-run temporary tables."""
        for table in (self.stray_asks, self.stray_nps, self.gs_contacts):
            table.drop(conn, checkfirst=True)
