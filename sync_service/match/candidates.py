"""The candidates in the store, served to the ranking a group at a time.

A candidate is a Salesforce contact, not deleted, whose current verdict is Eligible and whose
``available_for`` (the evaluation's ``;``-separated ask types) holds the matching's ask type.

The ranking (:mod:`sync_service.match.rank`) reads a group's candidates best first, only as deep
as some deal's answer reaches, so the candidates never sit in memory together:

1. every Salesforce account gets the id of its tuple of term values (its *group*) in a temporary
   table on the reader's connection (``match_groups``), written a page of accounts at a time;
   the terms are computed in polars (:func:`account_terms`, one definition for the deals and
   the advocates). A contact whose account the store lacks is in group 0, all terms NULL;
2. one pass over the candidates gives each group's first page, best score (the ranking's bound)
   and size (a window function per group);
3. a further page is one query: the group's accounts, their contacts (the contacts' covering
   index on ``account_id``), their verdicts; best score first, then contact id, keyset paged.

Memory: the groups (a few hundred), one page of accounts while the table is written, and the
pages the ranking asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical.model import Status, System
from sync_service.match.config import SIZE_BAND, MatchingRules, term_fields
from sync_service.match.rank import FIRST_PAGE, KEY_PREFIX, Group, Row, Values, band_of
from sync_service.store.frames import read_frame
from sync_service.store.models import accounts, contacts, evaluations

SALESFORCE = System.SALESFORCE.value
#: The group of the accounts with every term NULL, and of contacts whose account is unknown.
NULL_GID = 0
#: Accounts per page while the groups table is written.
ACCOUNTS_PAGE = 50_000

_meta = sa.MetaData()
#: Account -> group, per connection, for one run; never persisted.
groups_table = sa.Table(
    "match_groups",
    _meta,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("gid", sa.Integer(), nullable=False, index=True),
    prefixes=["TEMPORARY"],
)


def _term_expr(rules: MatchingRules, term: str) -> pl.Expr:
    """The text key of one term, from the accounts frame's raw columns."""
    if term == SIZE_BAND and rules.model.size is not None:
        raw = pl.col(f"raw_{rules.model.size.field}").cast(pl.Float64, strict=False)
        return band_of(raw, rules.model.size.bounds)
    return pl.col(f"raw_{term}").cast(pl.String)


def account_terms(conn: Connection, rules: MatchingRules, after: str, limit: int) -> pl.DataFrame:
    """Up to ``limit`` Salesforce accounts after id ``after``, in id order, with their terms.

    Columns: ``account_id`` and one ``k_<term>`` (text, NULL when unknown) per term.
    """
    raw = term_fields(rules)
    cols: list[Any] = [accounts.c.id.label("account_id")]
    types: dict[str, pl.DataType] = {"account_id": pl.String()}
    extras = [n for n in raw if n in rules.extras]
    for name in raw:
        if name not in rules.extras:
            cols.append(sa.cast(accounts.c[name], sa.String).label(f"raw_{name}"))
            types[f"raw_{name}"] = pl.String()
    if extras:
        cols.append(sa.cast(accounts.c.extra, sa.Text).label("extra_json"))
        types["extra_json"] = pl.String()
    stmt = (
        sa.select(*cols)
        .where(
            accounts.c.source == SALESFORCE, accounts.c.deleted.is_(False), accounts.c.id > after
        )
        .order_by(accounts.c.id)
        .limit(limit)
    )
    frame = read_frame(conn, stmt, types)
    if extras:
        frame = frame.with_columns(
            pl.col("extra_json").str.json_path_match(f"$.{name}").alias(f"raw_{name}")
            for name in extras
        ).drop("extra_json")
    keys = [_term_expr(rules, t).alias(KEY_PREFIX + t) for t in rules.model.terms]
    return frame.with_columns(keys).select(
        "account_id", *(KEY_PREFIX + t for t in rules.model.terms)
    )


def _drop(conn: Connection) -> None:
    schema = "temp" if conn.dialect.name == "sqlite" else "pg_temp"
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {schema}.{groups_table.name}"))


def _fill(conn: Connection, rows: list[tuple[str, int]]) -> None:
    """Add (account, group) rows to ``match_groups``.

    PostgreSQL: by COPY, in the connection's transaction (a multi-row INSERT took 6.6 s for
    200,000 accounts, COPY well under one).
    """
    if conn.dialect.name == "postgresql":
        dbapi: Any = conn.connection.driver_connection
        copy_sql = f"COPY {groups_table.name} (account_id, gid) FROM STDIN"
        with dbapi.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.execute(sa.insert(groups_table), [{"account_id": a, "gid": g} for a, g in rows])


class StoreCandidates:
    """The ranking's :class:`~sync_service.match.rank.CandidateSource` over the store.

    Builds ``match_groups`` on ``conn`` (keep reading deals through the same connection: they
    find their account's group there); :meth:`close` drops it.

    Args:
        conn: the reader's connection, held for the run.
        rules: the matching rules (terms and ask type).
        first_page: rows of each group read up front (the ranking's first read of a group).
    """

    def __init__(
        self, conn: Connection, rules: MatchingRules, *, first_page: int = FIRST_PAGE
    ) -> None:
        self.conn = conn
        self.rules = rules
        terms = rules.model.terms
        # group 0 first: the contacts whose account the store lacks have every term NULL
        self.values: dict[Values, int] = {(None,) * len(terms): NULL_GID}
        _drop(conn)
        groups_table.create(conn)
        last = ""
        while True:
            page = account_terms(conn, rules, last, ACCOUNTS_PAGE)
            if page.is_empty():
                break
            last = str(page["account_id"][-1])
            rows = [
                (account, self.values.setdefault(tuple(v), len(self.values)))
                for account, *v in page.iter_rows()
            ]
            _fill(conn, rows)
        self.by_gid = {gid: v for v, gid in self.values.items()}
        self._groups: list[Group] = []
        #: Candidates in the store (eligible, consented).
        self.count = 0
        self._first: dict[int, list[Row]] = {}
        self._sizes: dict[int, int] = {}
        self._prefetch(first_page)

    def _prefetch(self, first_page: int) -> None:
        """Every group's first page, its size and best score, in one pass over the candidates.

        One scan instead of a query per group: each query reads its whole group to sort it
        (on PostgreSQL ~56 ms for a group of 4,800 contacts).
        """
        e = evaluations
        gid = sa.func.coalesce(groups_table.c.gid, NULL_GID)
        score = self._score
        inner = self._candidates(
            gid.label("gid"),
            e.c.entity_id.label("contact_id"),
            contacts.c.account_id.label("account_id"),
            score.label("score"),
            sa.func.row_number()
            .over(partition_by=gid, order_by=(score.desc(), e.c.entity_id))
            .label("rn"),
            sa.func.count().over(partition_by=gid).label("n"),
        ).subquery()
        stmt = (
            sa.select(inner.c.gid, inner.c.contact_id, inner.c.account_id, inner.c.score, inner.c.n)
            .where(inner.c.rn <= first_page)
            .order_by(inner.c.gid, inner.c.rn)
        )
        for g, contact, account, best, n in self.conn.execute(stmt):
            rows = self._first.get(int(g))
            if rows is None:
                rows = self._first[int(g)] = []
                self._groups.append(Group(int(g), self.by_gid[int(g)], float(best)))
                self._sizes[int(g)] = int(n)
                self.count += int(n)
            rows.append((str(contact), account, float(best)))

    @property
    def _score(self) -> Any:
        return sa.func.coalesce(evaluations.c.score, 0.0)

    def _candidates(self, *cols: Any) -> sa.Select[Any]:
        e, c, g = evaluations, contacts, groups_table
        # available_for is the evaluation's ';'-joined ask types: match a whole one
        joined = sa.literal(";") + e.c.available_for + sa.literal(";")
        return (
            sa.select(*cols)
            .select_from(e)
            .join(c, sa.and_(c.c.source == SALESFORCE, c.c.id == e.c.entity_id))
            .outerjoin(g, g.c.account_id == c.c.account_id)
            .where(
                e.c.entity_type == "contact",
                e.c.status == Status.ELIGIBLE.value,
                e.c.eligible.is_(True),
                c.c.deleted.is_(False),
                joined.contains(f";{self.rules.model.ask_type};", autoescape=True),
            )
        )

    def groups(self) -> Sequence[Group]:
        """Every group holding candidates, with its best score."""
        return self._groups

    def page(self, gid: int, after: Row | None, limit: int) -> list[Row]:
        """Up to ``limit`` candidates of ``gid``: best score first, then contact id."""
        first = self._first.pop(gid, None)
        # served from the first pass when it holds the page (the first read of a group)
        if (
            after is None
            and first is not None
            and (len(first) >= limit or len(first) == self._sizes[gid])
        ):
            return first[:limit]
        e, c, g = evaluations, contacts, groups_table
        score = self._score
        stmt = self._candidates(e.c.entity_id, c.c.account_id, score)
        if gid == NULL_GID:
            stmt = stmt.where(sa.or_(g.c.gid == NULL_GID, g.c.gid.is_(None)))
        else:
            stmt = stmt.where(g.c.gid == gid)
        if after is not None:
            contact, _, best = after
            stmt = stmt.where(sa.or_(score < best, sa.and_(score == best, e.c.entity_id > contact)))
        stmt = stmt.order_by(score.desc(), e.c.entity_id).limit(limit)
        return [(str(cid), aid, float(s)) for cid, aid, s in self.conn.execute(stmt)]

    def close(self) -> None:
        """Drop ``match_groups`` (a pooled connection outlives the run).

        After a failed statement PostgreSQL refuses the drop until the transaction ends; the
        rollback then drops the table created in it (and the next run drops any left over).
        """
        try:
            _drop(self.conn)
            self.conn.commit()
        except sa.exc.DBAPIError:
            self.conn.rollback()
