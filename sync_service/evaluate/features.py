"""Features for the rules, read from the store chunk by chunk and aggregated in polars.

What is computed is shaped by the policy: only the features it declares (and the ask counts
its caps need) are read. SQL selects the narrow live rows of one chunk (and does the plain
``GROUP BY`` sums of tickets and Gainsight rows); polars ranks and aggregates them (latest NPS
answers, each cap's nth ask, the next renewal): one sort per chunk instead of the database's
window functions, several times faster on both backends. Python never loops over rows.

* contacts are taken in ranges of their ``account_id`` (keyset: each range ends at the
  account id found ``chunk_size`` contacts further), so a contact and its account always land in
  the same chunk and account-level features are computed once per account; contacts without an
  account come last, in keyset pages of their id. Memory is bounded by ``chunk_size``.
* every table the features read has a covering index led by ``account_id`` (migration 0004),
  so a chunk's rows come from one index range, without a table lookup per row.
* a query's result travels as one text built by the database and parsed by polars
  (:func:`read_frame`). No row is dropped or capped: every contact is yielded.
* :func:`stream_feature_chunks` reads the ranges in two threads, each on its own connection,
  ahead of the caller; the run's temporary tables (:meth:`FeatureQuery.prepare`) are filled
  once, on a third.

Conventions (see ``rules.catalogue`` for what each feature means):

* Canonical rows: Salesforce rows (``source = 'salesforce'``) are the contacts and accounts;
  Gainsight rows add to them through ``sf_account_id`` / ``sf_contact_id``; NPS answers and asks
  link through ``contact_id`` / ``account_id`` (Salesforce ids) whatever their source. Rows with
  ``deleted = true`` are ignored everywhere.
* Time: one ``now`` per run. ``today`` is ``now`` in the policy's time zone; asks count in a
  window of N days while ``requested_date > today - N``; timestamps (stored in UTC) become UTC
  dates before a day count; ``tickets_last_<N>d`` counts tickets opened at or after ``now - N``.
* Open ticket: ``is_closed`` is not true. Escalation: open and ``is_escalated``. Priority
  ``<p>`` matches ``lower(replace(priority, ' ', '_'))``. Open renewal: an opportunity not
  closed whose type contains 'renewal' (any case); the one closing first is "the" renewal.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import FieldType, System
from rules import Policy, account_features_schema, cap_columns, today_for
from rules.catalogue import pattern_params
from rules.expressions import POLARS_TYPES
from rules.policy import CapModel
from sync_service.store.engine import SQLITE_CACHE_KIB
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    nps_responses,
    opportunities,
    tickets,
)
from sync_service.sync.readahead import read_ahead

log = logging.getLogger(__name__)

SALESFORCE = System.SALESFORCE
GAINSIGHT = System.GAINSIGHT
DEFAULT_CHUNK = 100_000
# readers of the features: one per core of the small host the service is sized for
DEFAULT_WORKERS = 2
_READER_CACHE_KIB = 8 * 1024
_ASK_COLS = ("id", "contact_id", "account_id", "ask_type", "team", "requested_date")
_NPS_COLS = ("id", "contact_id", "account_id", "score", "responded_at")


@dataclass
class FeatureChunk:
    """One chunk: contact features (``policy.input_schema()``) and account features."""

    contacts: pl.DataFrame
    accounts: pl.DataFrame


def _live(t: Any) -> ColumnElement[bool]:
    live: ColumnElement[bool] = t.c.deleted == sa.false()
    return live


class _Dialect:
    """The few things that differ between SQLite and PostgreSQL: dates and bound values."""

    def __init__(self, name: str) -> None:
        self.name = name

    def to_date(self, expr: Any) -> Any:
        """A UTC timestamp column as its UTC date."""
        if self.name == "sqlite":
            return sa.func.date(expr)
        return sa.cast(sa.func.timezone("UTC", expr), sa.Date)

    def ts(self, value: datetime) -> Any:
        """A timestamp literal comparable with a stored UTC timestamp."""
        if self.name == "sqlite":
            # the store's text format for UTC timestamps on SQLite (naive, microseconds)
            text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return sa.literal(text, sa.String())
        return sa.literal(value, sa.DateTime(timezone=True))

    def day(self, value: date) -> Any:
        """A date literal comparable with a stored date."""
        if self.name == "sqlite":
            return sa.literal(value.isoformat(), sa.String())
        return sa.literal(value, sa.Date())


def _norm_priority(col: Any) -> Any:
    return sa.func.lower(sa.func.replace(col, " ", "_"))


def _id_range(col: Any, lo: str | None, hi: str | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if lo is not None:
        out.append(col > lo)
    if hi is not None:
        out.append(col <= hi)
    return out


def _tri(col: Any) -> Any:
    # true if any row says true, false if some say false and none true, NULL if none knows
    return sa.func.max(sa.case((col == sa.true(), 1), (col == sa.false(), 0), else_=None))


_NPS_NAMES = {
    "nps_latest",
    "nps_latest_date",
    "nps_age_days",
    "nps_previous",
    "nps_trend",
    "nps_responses",
}


def _windows(names: set[str], prefix: str) -> list[int]:
    return sorted({int(pattern_params(x)["days"]) for x in names if x.startswith(prefix)})


def _left(frame: pl.DataFrame, other: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.join(other, on=key, how="left", maintain_order="left")


def _newest_first(answers: pl.DataFrame, by: str) -> pl.DataFrame:
    """NPS answers with a ``by``, newest first within each (ties: highest id).

    One sort of the chunk; a ``group_by(by)`` then keeps that order, so ``first()`` is the
    latest answer and ``get(1)`` the one before.
    """
    return answers.filter(pl.col(by).is_not_null()).sort(
        [by, "key", "id"], descending=[False, True, True]
    )


@dataclass
class _Rows:
    """A chunk's NPS answers or asks: those filed under its accounts, and its strays."""

    own: pl.DataFrame = field(default_factory=pl.DataFrame)
    # read when first needed: the strays come from prepare()'s tables, which a parallel
    # reader may have to wait for; the chunk's other reads go first
    moved: Callable[[], pl.DataFrame] | None = None

    def for_contacts(self) -> pl.DataFrame:
        """The rows that count for the chunk's contacts."""
        return self.own if self.moved is None else pl.concat([self.own, self.moved()])


class FeatureQuery:
    """Reads one chunk's narrow rows for one policy and ``now``; aggregates them in polars.

    SQL only filters and, where it is a plain ``GROUP BY`` (tickets, Gainsight rows), sums;
    every ranking (latest NPS, the nth ask of a cap, the next renewal) is done in polars on
    the chunk's rows, which is several times faster than the window functions it replaces.
    """

    def __init__(self, policy: Policy, now: datetime, dialect: str) -> None:
        self.policy = policy
        self.now = now
        self.today = today_for(policy, now)
        self.d = _Dialect(dialect)
        self.need = policy.required_features()
        self.names = n = set(self.need)
        self.contact_caps = [c for c in policy.caps if c.scope == "contact"]
        self.account_caps = [c for c in policy.caps if c.scope == "account"]
        self.bit = {cap.id: i for i, cap in enumerate(policy.caps)}
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
        # set by the parallel reader: per temporary table, the connection holding it
        self.prepared: dict[str, _Prepared] = {}
        self.want_opt = bool(n & {"opted_in", "opted_out", "opt_in_date"})
        self.want_nps = bool(n & _NPS_NAMES)
        self.want_last = bool(n & {"last_ask_date", "days_since_last_ask"})
        self.ask_windows = _windows(n, "asks_last_")
        self.acc_windows = _windows(n, "account_asks_last_")
        self.want_asks = bool(self.want_last or self.ask_windows or self.contact_caps)
        self.want_acc_asks = bool(self.acc_windows or self.account_caps)
        self.want_acc_nps = "account_nps_latest" in n
        self.prios = sorted(
            {
                pattern_params(x)["priority"]
                for x in n
                if x.startswith(("open_tickets_", "oldest_open_"))
                and pattern_params(x).get("priority")
            }
        )
        self.ticket_windows = _windows(n, "tickets_last_")
        self.want_tickets = bool(
            n & {"open_tickets", "open_escalations", "oldest_open_escalation_date"}
            or self.prios
            or self.ticket_windows
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
        conn.execute(
            stray.insert().from_select([x.name for x in stray.c], self._strays(table, cols))
        )

    def _fill_gs_contacts(self, conn: Connection) -> None:
        c, gs, g = contacts, contacts.alias("gsc"), self.gs_contacts
        g.drop(conn, checkfirst=True)
        g.create(conn)
        conn.execute(
            g.insert().from_select(
                [x.name for x in g.c],
                sa.select(
                    gs.c.sf_contact_id,
                    _tri(gs.c.opted_out),
                    _tri(gs.c.opted_in),
                    c.c.account_id,
                )
                .select_from(gs.join(c, c.c.id == gs.c.sf_contact_id))
                .where(
                    gs.c.source == GAINSIGHT,
                    _live(gs),
                    c.c.source == SALESFORCE,
                    _live(c),
                    c.c.account_id.is_not(None),
                )
                .group_by(gs.c.sf_contact_id, c.c.account_id),
            )
        )

    def _strays(self, table: sa.Table, cols: list[Any]) -> sa.Select[Any]:
        """Live rows of ``table`` not filed under their contact's account, with that account."""
        c = contacts
        known = (c.c.source == SALESFORCE, _live(c), c.c.account_id.is_not(None))
        if self.d.name != "sqlite":  # one hash join
            return (
                sa.select(*cols, c.c.account_id)
                .select_from(table.join(c, c.c.id == table.c.contact_id))
                .where(
                    _live(table),
                    *known,
                    sa.or_(table.c.account_id.is_(None), table.c.account_id != c.c.account_id),
                )
            )
        # SQLite joins by lookups: the usual row (filed under its contact's account) is ruled
        # out first through the covering (account_id, id) index, and only the rest looks its
        # contact up. The source test is wrapped so that SQLite does not pick the (source, id)
        # key instead, which reads the table once per row (4x slower).
        own = c.alias("own")
        filed_with_contact = sa.exists().where(
            own.c.account_id == table.c.account_id,
            own.c.id == table.c.contact_id,
            sa.func.coalesce(own.c.source, "") == SALESFORCE,
            _live(own),
        )
        # materialised, so that the planner cannot turn the join around (contacts first, then
        # every answer of each contact from the table: 10 s instead of 1 s at 1M contacts)
        candidates = (
            sa.select(*cols)
            .where(_live(table), table.c.contact_id.is_not(None), ~filed_with_contact)
            .cte("cand")
            .prefix_with("MATERIALIZED")
        )
        return (
            sa.select(*candidates.c, c.c.account_id)
            .select_from(candidates.join(c, c.c.id == candidates.c.contact_id))
            .where(*known)
        )

    def cleanup(self, conn: Connection) -> None:
        """Drop the per-run temporary tables."""
        for table in (self.stray_asks, self.stray_nps, self.gs_contacts):
            table.drop(conn, checkfirst=True)

    # ---- raw rows -----------------------------------------------------------------------
    @staticmethod
    def _key_day() -> pl.Expr:
        """The UTC date of a timestamp read as text (what ``date()`` gives in SQL)."""
        return pl.col("key").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)

    def _cap_bits(self, t: Any) -> Any:
        """Every cap's "this ask counts" test as one bit of one small integer per ask."""
        bits: Any = sa.literal(0)
        for cap in self.policy.caps:
            cond: list[ColumnElement[bool]] = [
                t.c.requested_date > self.d.day(self.today - timedelta(days=cap.window_days))
            ]
            if cap.ask_types:
                cond.append(sa.func.lower(t.c.ask_type).in_([x.lower() for x in cap.ask_types]))
            if cap.teams:
                cond.append(sa.func.lower(t.c.team).in_([x.lower() for x in cap.teams]))
            bits = bits + sa.case((sa.and_(*cond), 1 << self.bit[cap.id]), else_=0)
        return bits

    def _ask_cols(self, t: Any) -> tuple[list[Any], dict[str, FieldType]]:
        cols = [
            t.c.contact_id.label("contact_id"),
            t.c.account_id.label("account_id"),
            t.c.requested_date.label("day"),
        ]
        types: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}
        types["day"] = "date"
        if self.policy.caps:
            cols.append(self._cap_bits(t).label("bits"))
            types["bits"] = "integer"
        return cols, types

    def _nps_cols(self, t: Any) -> tuple[list[Any], dict[str, FieldType]]:
        # the answer time as text, which sorts as time: SQLite's is fixed-width, PostgreSQL's
        # is ISO in UTC (read_frame's session zone) with a fraction that drops trailing zeros
        cols = [
            t.c.contact_id.label("contact_id"),
            t.c.account_id.label("account_id"),
            t.c.score.label("score"),
            t.c.responded_at.label("key"),
            t.c.id.label("id"),
        ]
        types: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}
        types |= {"score": "integer", "key": "string", "id": "string"}
        return cols, types

    def _rows(
        self,
        conn: Connection,
        table: sa.Table,
        stray: sa.Table,
        shape: Callable[[Any], tuple[list[Any], dict[str, FieldType]]],
        where: Callable[[Any], list[ColumnElement[bool]]],
        rng: tuple[str | None, str | None],
    ) -> tuple[pl.DataFrame, Callable[[], pl.DataFrame]]:
        """Live rows of ``table`` filed under an account in ``rng``, and the chunk's strays.

        The strays are the rows filed under another account than their contact's whose
        contact is in ``rng``: they count for the contact (in this chunk) and for the account
        they are filed under (in that account's chunk), never twice.
        """
        lo, hi = rng
        cols, types = shape(table)
        own = sa.select(*cols).where(
            _live(table),
            table.c.account_id.is_not(None),
            *_id_range(table.c.account_id, lo, hi),
            *where(table),
        )
        scols, _ = shape(stray)
        in_own = sa.and_(stray.c.account_id.is_not(None), *_id_range(stray.c.account_id, lo, hi))
        moved = sa.select(*scols).where(
            *_id_range(stray.c.c_account_id, lo, hi), sa.not_(in_own), *where(stray)
        )
        return read_frame(conn, own, types), lambda: self._read_prepared(conn, stray, moved, types)

    def _read_prepared(
        self, conn: Connection, table: sa.Table, stmt: sa.Select[Any], types: dict[str, FieldType]
    ) -> pl.DataFrame:
        """:func:`read_frame` of a statement on ``table``, a temporary table of prepare()."""
        held = self.prepared.get(table.name)
        return held.read(stmt, types) if held is not None else read_frame(conn, stmt, types)

    def _rows_of(
        self,
        conn: Connection,
        table: sa.Table,
        shape: Callable[[Any], tuple[list[Any], dict[str, FieldType]]],
        where: Callable[[Any], list[ColumnElement[bool]]],
        link: ColumnElement[bool],
    ) -> pl.DataFrame:
        """Live rows of ``table`` matching ``link`` (a contact list or one account)."""
        cols, types = shape(table)
        return read_frame(conn, sa.select(*cols).where(_live(table), link, *where(table)), types)

    @staticmethod
    def _scored(t: Any) -> list[ColumnElement[bool]]:
        return [t.c.score.is_not(None), t.c.responded_at.is_not(None)]

    @staticmethod
    def _any(t: Any) -> list[ColumnElement[bool]]:
        return []

    def chunk_rows(self, conn: Connection, lo: str | None, hi: str | None) -> tuple[_Rows, _Rows]:
        """The NPS answers and asks of an account range: for its accounts and its contacts."""
        nps = asks = _Rows()
        if self.want_nps or self.want_acc_nps:
            own, moved = self._rows(
                conn, nps_responses, self.stray_nps, self._nps_cols, self._scored, (lo, hi)
            )
            nps = _Rows(own, moved)
        if self.want_asks or self.want_acc_asks:
            own, moved = self._rows(
                conn, advocacy_asks, self.stray_asks, self._ask_cols, self._any, (lo, hi)
            )
            asks = _Rows(own, moved)
        return nps, asks

    # ---- contact-level ------------------------------------------------------------------
    def contact_frame(
        self,
        conn: Connection,
        scope: Callable[[Any], ColumnElement[bool]],
        *,
        page: int | None = None,
        rng: tuple[str | None, str | None] | None = None,
        rows: tuple[_Rows, _Rows] | None = None,
    ) -> pl.DataFrame:
        """Contacts matching ``scope(table)`` with their contact-level features.

        With ``page``, only the first ``page`` of them by id (keyset paging). When the scope is
        the account range ``rng`` (after :meth:`prepare`), ``rows`` are its NPS answers and asks
        (:meth:`chunk_rows`); otherwise everything is found through the list of contact ids.
        """
        c = contacts
        cols: list[Any] = [c.c.id.label("contact_id"), c.c.account_id.label("account_id")]
        types: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}
        if self.want_opt:
            cols += [c.c.opted_out.label("opted_out"), c.c.opted_in.label("opted_in")]
            cols.append(c.c.opt_in_date.label("opt_in_date"))
            types |= {"opted_out": "boolean", "opted_in": "boolean", "opt_in_date": "date"}
        for spec in self.need.values():
            if spec.extra is not None and spec.level == "contact":
                cols.append(c.c.extra[spec.extra].as_string().label(spec.name))
                types[spec.name] = spec.type
        stmt = sa.select(*cols).where(c.c.source == SALESFORCE, _live(c), scope(c))
        if page is not None:
            stmt = stmt.order_by(c.c.id).limit(page)
        ids = stmt.with_only_columns(c.c.id)  # this chunk's contacts, for the lookups below
        frame = read_frame(conn, stmt, types)
        if self.want_opt:
            frame = self._with_gainsight_opt(conn, frame, ids, rng)
        if rows is None:
            rows = self._contact_rows(conn, ids)
        nps, asks = rows
        if self.want_nps:
            frame = _left(frame, self._nps_features(nps.for_contacts()), "contact_id")
            frame = frame.with_columns(pl.col("nps_responses").fill_null(0))
        if self.want_asks:
            caps = [(self.bit[cap.id], cap) for cap in self.contact_caps]
            feats = self._ask_features(
                asks.for_contacts(), "contact_id", caps, self.ask_windows, "asks_last"
            )
            frame = _left(frame, feats, "contact_id")
            frame = frame.with_columns(
                [pl.col(f"asks_last_{w}d").fill_null(0) for w in self.ask_windows]
                + [pl.col(cap_columns(cap)[0]).fill_null(0) for cap in self.contact_caps]
            )
            if not self.want_last:
                frame = frame.drop("last_ask_date")
        return frame

    def _contact_rows(self, conn: Connection, ids: Any) -> tuple[_Rows, _Rows]:
        nps = asks = _Rows()
        if self.want_nps:
            link = nps_responses.c.contact_id.in_(ids)
            nps = _Rows(self._rows_of(conn, nps_responses, self._nps_cols, self._scored, link))
        if self.want_asks:
            link = advocacy_asks.c.contact_id.in_(ids)
            asks = _Rows(self._rows_of(conn, advocacy_asks, self._ask_cols, self._any, link))
        return nps, asks

    def _with_gainsight_opt(
        self,
        conn: Connection,
        frame: pl.DataFrame,
        ids: Any,
        rng: tuple[str | None, str | None] | None,
    ) -> pl.DataFrame:
        stmt: Any
        if rng is not None:
            gt = self.gs_contacts
            stmt = sa.select(gt.c.contact_id, gt.c.g_out, gt.c.g_in).where(
                *_id_range(gt.c.c_account_id, *rng)
            )
        else:
            gs = contacts.alias("gsc")
            stmt = (
                sa.select(
                    gs.c.sf_contact_id.label("contact_id"),
                    _tri(gs.c.opted_out).label("g_out"),
                    _tri(gs.c.opted_in).label("g_in"),
                )
                .where(gs.c.source == GAINSIGHT, _live(gs), gs.c.sf_contact_id.in_(ids))
                .group_by(gs.c.sf_contact_id)
            )
        types: dict[str, FieldType] = {"contact_id": "string", "g_out": "integer"}
        types["g_in"] = "integer"
        if rng is not None:
            g = self._read_prepared(conn, self.gs_contacts, stmt, types)
        else:
            g = read_frame(conn, stmt, types)
        frame = _left(frame, g, "contact_id")
        # an explicit no anywhere wins; opted in needs a yes from Salesforce or Gainsight
        return frame.with_columns(
            [
                pl.max_horizontal(pl.col(x).cast(pl.Int64), pl.col(g)).cast(pl.Boolean).alias(x)
                for x, g in (("opted_out", "g_out"), ("opted_in", "g_in"))
            ]
        ).drop("g_out", "g_in")

    def _nps_features(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Per contact: latest score and date, the score before, the number of answers."""
        return (
            _newest_first(rows, "contact_id")
            .group_by("contact_id")
            .agg(
                pl.col("score").first().alias("nps_latest"),
                pl.col("key").first(),
                pl.col("score").get(1, null_on_oob=True).alias("nps_previous"),
                pl.len().cast(pl.Int64).alias("nps_responses"),
            )
            .with_columns(self._key_day().alias("nps_latest_date"))
            .drop("key")
        )

    def _ask_features(
        self,
        rows: pl.DataFrame,
        key: str,
        caps: list[tuple[int, CapModel]],
        windows: list[int],
        prefix: str,
    ) -> pl.DataFrame:
        """Per ``key``: last ask date, asks in each window, each cap's count and nth date.

        A cap's nth date is the ``max_asks``-th most recent of the asks it counts.
        """
        aggs: list[pl.Expr] = [pl.col("day").max().alias("last_ask_date")]
        for w in windows:
            since = self.today - timedelta(days=w)
            aggs.append((pl.col("day") > since).sum().cast(pl.Int64).alias(f"{prefix}_{w}d"))
        for bit, cap in caps:
            count_col, nth_col = cap_columns(cap)
            hit = (pl.col("bits") & (1 << bit)) != 0
            aggs.append(hit.sum().cast(pl.Int64).alias(count_col))
            nth = pl.col("day").filter(hit).get(cap.max_asks - 1, null_on_oob=True)
            aggs.append(nth.alias(nth_col))
        # one sort of the chunk, newest first; a group keeps that order
        return (
            rows.filter(pl.col(key).is_not_null())
            .sort([key, "day"], descending=[False, True], nulls_last=True)
            .group_by(key)
            .agg(aggs)
        )

    # ---- account-level ------------------------------------------------------------------
    def account_frame(
        self,
        conn: Connection,
        lo: str | None,
        hi: str | None,
        *,
        only: str | None = None,
        rows: tuple[_Rows, _Rows] | None = None,
    ) -> pl.DataFrame:
        """Salesforce accounts with id in ``(lo, hi]`` (or just ``only``) and their features.

        ``rows``: the range's NPS answers and asks when already read (:meth:`chunk_rows`).
        """

        def _range(col: Any) -> list[ColumnElement[bool]]:
            return [col == only] if only is not None else _id_range(col, lo, hi)

        ac = accounts
        n = self.names
        cols: list[Any] = [ac.c.id.label("account_id")]
        types: dict[str, FieldType] = {"account_id": "string"}
        for plain in ("industry", "region", "segment", "account_type", "customer_since"):
            if plain in n or (plain == "customer_since" and "tenure_days" in n):
                cols.append(ac.c[plain].label(plain))
                types[plain] = "date" if plain == "customer_since" else "string"
        want_gs = bool(n & {"health_score", "payment_overdue", "churn_risk"})
        if want_gs:
            for name in ("payment_overdue", "churn_risk"):
                cols.append(ac.c[name].label(name))
                types[name] = "boolean"
            cols.append(ac.c.health_score.label("health_score"))
            types["health_score"] = "number"
        for spec in self.need.values():
            if spec.extra is not None and spec.level == "account":
                cols.append(ac.c.extra[spec.extra].as_string().label(spec.name))
                types[spec.name] = spec.type
        stmt = sa.select(*cols).where(ac.c.source == SALESFORCE, _live(ac), *_range(ac.c.id))
        frame = read_frame(conn, stmt, types)

        if want_gs:
            frame = self._with_gainsight_account(conn, frame, _range)
        if self.want_tickets:
            frame = self._with_tickets(conn, frame, _range)
        if n & {"has_open_renewal", "renewal_risk", "renewal_close_date"}:
            frame = self._with_renewal(conn, frame, _range)
        if self.want_acc_nps or self.want_acc_asks:
            if rows is None:
                rows = self._account_rows(conn, _range)
            nps, asks = rows
            if self.want_acc_nps:
                latest = (
                    _newest_first(nps.own, "account_id")
                    .group_by("account_id")
                    .agg(pl.col("score").first().alias("account_nps_latest"))
                )
                frame = _left(frame, latest, "account_id")
            if self.want_acc_asks:
                caps = [(self.bit[cap.id], cap) for cap in self.account_caps]
                feats = self._ask_features(
                    asks.own, "account_id", caps, self.acc_windows, "account_asks_last"
                ).drop("last_ask_date")
                frame = _left(frame, feats, "account_id").with_columns(
                    [pl.col(f"account_asks_last_{w}d").fill_null(0) for w in self.acc_windows]
                    + [pl.col(cap_columns(cap)[0]).fill_null(0) for cap in self.account_caps]
                )
        return frame

    def _account_rows(
        self, conn: Connection, rng: Callable[[Any], list[Any]]
    ) -> tuple[_Rows, _Rows]:
        nps = asks = _Rows()
        if self.want_acc_nps:
            t = nps_responses
            link = sa.and_(t.c.account_id.is_not(None), *rng(t.c.account_id))
            nps = _Rows(self._rows_of(conn, t, self._nps_cols, self._scored, link))
        if self.want_acc_asks:
            t = advocacy_asks
            link = sa.and_(t.c.account_id.is_not(None), *rng(t.c.account_id))
            asks = _Rows(self._rows_of(conn, t, self._ask_cols, self._any, link))
        return nps, asks

    def _with_gainsight_account(
        self, conn: Connection, frame: pl.DataFrame, rng: Callable[[Any], list[Any]]
    ) -> pl.DataFrame:
        gs = accounts.alias("gsa")
        stmt = (
            sa.select(
                gs.c.sf_account_id.label("account_id"),
                sa.func.max(gs.c.health_score).label("g_health"),
                _tri(gs.c.payment_overdue).label("g_payment_overdue"),
                _tri(gs.c.churn_risk).label("g_churn_risk"),
            )
            .where(gs.c.source == GAINSIGHT, _live(gs), *rng(gs.c.sf_account_id))
            .group_by(gs.c.sf_account_id)
        )
        types: dict[str, FieldType] = {"account_id": "string", "g_health": "number"}
        types |= {"g_payment_overdue": "integer", "g_churn_risk": "integer"}
        g = read_frame(conn, stmt, types)
        frame = _left(frame, g, "account_id")
        return frame.with_columns(
            [
                pl.max_horizontal(pl.col(x).cast(pl.Int64), pl.col(f"g_{x}"))
                .cast(pl.Boolean)
                .alias(x)
                for x in ("payment_overdue", "churn_risk")
            ]
            + [pl.coalesce("g_health", "health_score").alias("health_score")]
        ).drop("g_health", "g_payment_overdue", "g_churn_risk")

    def _with_tickets(
        self, conn: Connection, frame: pl.DataFrame, rng: Callable[[Any], list[Any]]
    ) -> pl.DataFrame:
        # a plain GROUP BY in the index's order: cheap in SQL, and far fewer rows to read
        t = tickets
        open_ = sa.func.coalesce(t.c.is_closed, sa.false()) == sa.false()
        esc = sa.and_(open_, t.c.is_escalated == sa.true())
        day = self.d.to_date(t.c.opened_at)
        parts: list[Any] = [
            t.c.account_id.label("account_id"),
            sa.func.sum(sa.case((open_, 1), else_=0)).label("open_tickets"),
            sa.func.sum(sa.case((esc, 1), else_=0)).label("open_escalations"),
            sa.func.min(sa.case((esc, day))).label("oldest_open_escalation_date"),
        ]
        types: dict[str, FieldType] = {"account_id": "string", "open_tickets": "integer"}
        types |= {"open_escalations": "integer", "oldest_open_escalation_date": "date"}
        counts = ["open_tickets", "open_escalations"]
        for p in self.prios:
            hit = sa.and_(open_, _norm_priority(t.c.priority) == p)
            parts.append(sa.func.sum(sa.case((hit, 1), else_=0)).label(f"open_tickets_{p}"))
            parts.append(sa.func.min(sa.case((hit, day))).label(f"_oldest_{p}"))
            types |= {f"open_tickets_{p}": "integer", f"_oldest_{p}": "date"}
            counts.append(f"open_tickets_{p}")
        for w in self.ticket_windows:
            since = self.d.ts(self.now - timedelta(days=w))
            parts.append(
                sa.func.sum(sa.case((t.c.opened_at >= since, 1), else_=0)).label(
                    f"tickets_last_{w}d"
                )
            )
            types[f"tickets_last_{w}d"] = "integer"
            counts.append(f"tickets_last_{w}d")
        stmt = sa.select(*parts).where(_live(t), *rng(t.c.account_id)).group_by(t.c.account_id)
        tk = read_frame(conn, stmt, types).filter(pl.col("account_id").is_not_null())
        frame = _left(frame, tk, "account_id")
        return frame.with_columns([pl.col(x).fill_null(0) for x in counts])

    def _with_renewal(
        self, conn: Connection, frame: pl.DataFrame, rng: Callable[[Any], list[Any]]
    ) -> pl.DataFrame:
        o = opportunities
        stmt = sa.select(
            o.c.account_id.label("account_id"),
            o.c.renewal_risk.label("renewal_risk"),
            o.c.close_date.label("renewal_close_date"),
            o.c.id.label("id"),
        ).where(
            _live(o),
            sa.func.coalesce(o.c.is_closed, sa.false()) == sa.false(),
            sa.func.lower(o.c.opportunity_type).like("%renewal%"),
            o.c.account_id.is_not(None),
            *rng(o.c.account_id),
        )
        types: dict[str, FieldType] = {"account_id": "string", "renewal_risk": "string"}
        types |= {"renewal_close_date": "date", "id": "string"}
        rows = read_frame(conn, stmt, types)
        # "the" renewal closes first (ties: lowest id); an unknown close date sorts where the
        # database's ORDER BY puts NULLs: first on SQLite, last on PostgreSQL
        nulls_last = self.d.name != "sqlite"
        first = (
            rows.sort(["renewal_close_date", "id"], nulls_last=nulls_last)
            .group_by("account_id", maintain_order=True)
            .first()
            .drop("id")
            .with_columns(pl.lit(True).alias("has_open_renewal"))
        )
        frame = _left(frame, first, "account_id")
        return frame.with_columns(pl.col("has_open_renewal").fill_null(False))

    # ---- derived columns ----------------------------------------------------------------
    def finish_accounts(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Day counts relative to today; the account frame in the rules' schema."""
        today = pl.lit(self.today, dtype=pl.Date)
        extra: list[pl.Expr] = []
        if "customer_since" in frame.columns:
            extra.append((today - pl.col("customer_since")).dt.total_days().alias("tenure_days"))
        for col in frame.columns:
            if col.startswith("_oldest_"):
                p = col.removeprefix("_oldest_")
                extra.append((today - pl.col(col)).dt.total_days().alias(f"oldest_open_{p}_days"))
        frame = frame.with_columns(extra) if extra else frame
        schema = account_features_schema(self.policy)
        for cap in self.account_caps:
            for col, t in zip(cap_columns(cap), (pl.Int64(), pl.Date()), strict=True):
                schema[col] = t
        return _conform(frame, schema)

    def finish_contacts(self, frame: pl.DataFrame, account_frame: pl.DataFrame) -> pl.DataFrame:
        """Join the account features in, add day counts, conform to the policy's schema."""
        today = pl.lit(self.today, dtype=pl.Date)
        extra: list[pl.Expr] = []
        if "nps_latest_date" in frame.columns:
            extra.append((today - pl.col("nps_latest_date")).dt.total_days().alias("nps_age_days"))
            extra.append((pl.col("nps_latest") - pl.col("nps_previous")).alias("nps_trend"))
        if "last_ask_date" in frame.columns:
            extra.append(
                (today - pl.col("last_ask_date")).dt.total_days().alias("days_since_last_ask")
            )
        frame = frame.with_columns(extra) if extra else frame
        acc_cols = [c for c in account_frame.columns if c not in frame.columns or c == "account_id"]
        frame = frame.join(account_frame.select(acc_cols), on="account_id", how="left")
        for cap in self.account_caps:
            frame = frame.with_columns(pl.col(cap_columns(cap)[0]).fill_null(0))
        return _conform(frame, self.policy.input_schema())


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    cols = []
    for name, dtype in schema.items():
        if name in frame.columns:
            cols.append(_cast(pl.col(name), frame.schema[name], dtype).alias(name))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


def _cast(col: pl.Expr, have: pl.DataType, want: pl.DataType) -> pl.Expr:
    if have == want:
        return col
    if want == pl.Boolean:
        if have == pl.String:  # PostgreSQL CSV 't'/'f', JSON 'true'/'false'
            truthy = col.str.to_lowercase().is_in(["t", "true", "1", "yes"])
            return pl.when(col.is_null()).then(None).otherwise(truthy)
        return col.cast(pl.Int64, strict=False).cast(pl.Boolean)
    if want == pl.Date and have == pl.String:
        return col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    return col.cast(want, strict=False)


_PLAIN_TEXT = (sa.Integer, sa.Float, sa.Numeric, sa.Boolean, sa.Date, sa.DateTime)


def _may_need_quotes(t: Any) -> bool:
    """Whether a value of SQL type ``t`` may hold a comma, a quote or an empty string."""
    if isinstance(t, sa.TypeDecorator):
        t = t.impl_instance
    return not isinstance(t, _PLAIN_TEXT)


def read_frame(conn: Connection, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
    """Run ``stmt`` and return its rows as a polars frame typed by ``types``.

    The database writes the whole result as one text, which polars parses: one Python object
    per query instead of a tuple per row and an object per value, and the text is built with
    the GIL released, so that readers in threads run side by side (a cursor's rows hold it).
    (COPY TO STDOUT would hand psycopg a message per row: 3.5x the client CPU.)

    Fields and rows are separated by ASCII's unit and record separators and NULL is written
    as its group separator: no escaping, the cheapest text for the database to build. A value
    holding one of them shows as a wrong field or row count, and then the query is read again
    as quoted CSV. (Only a value that is exactly the group separator reads as NULL.)
    """
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    # the driver gets the values SQLAlchemy would send (e.g. a JSON path '$."key"' on SQLite)
    for key, process in compiled._bind_processors.items():
        if key in params and params[key] is not None and callable(process):
            params[key] = process(params[key])
    names = list(types)
    frame = _read_text(conn, compiled, params, stmt, names, quoted=False)
    if frame is None:
        frame = _read_text(conn, compiled, params, stmt, names, quoted=True)
        assert frame is not None
    return frame.select(
        [_cast(pl.col(n), frame.schema[n], POLARS_TYPES[types[n]]).alias(n) for n in names]
    )


_FIELD, _ROW, _NULL = "\x1f", "\x1e", "\x1d"  # ASCII unit, record and group separators


def _read_text(
    conn: Connection,
    compiled: Any,
    params: Mapping[str, Any],
    stmt: sa.Select[Any],
    names: list[str],
    *,
    quoted: bool,
) -> pl.DataFrame | None:
    """One query's rows as strings, through one text; None when the plain text is ambiguous."""
    pg = conn.dialect.name == "postgresql"
    as_text = "::text" if pg else ""
    if quoted:  # CSV: a text quoted (its quotes doubled), NULL an empty field
        quote, sep, eol = ('"' if pg else "'"), ",", "\n"
        cells = " || ',' || ".join(
            (
                f"""coalesce('"' || replace(q."{n}"::text, '"', '""') || '"', '')"""
                if pg  # SQLite's quote() quotes a text by ', and leaves a number bare
                else f"""CASE WHEN q."{n}" IS NULL THEN '' ELSE quote(q."{n}") END"""
            )
            if _may_need_quotes(stmt.selected_columns[n].type)
            else f"""coalesce(q."{n}"{as_text}, '')"""
            for n in names
        )
        # a last constant field, so that no line is ever empty (polars would skip it)
        row_text = f"{cells} || ',.'"
    else:
        # the separators are written into the SQL as they are: a literal costs the database
        # less per row than a chr() call (12-15% of the query)
        quote, sep, eol = None, _FIELD, _ROW
        cells = f" || '{_FIELD}' || ".join(
            f"""coalesce(q."{n}"{as_text}, '{_NULL}')""" for n in names
        )
        row_text = f"{cells} || '{_FIELD}.'"
    agg = "string_agg" if pg else "group_concat"
    sql = f"SELECT {agg}({row_text}, '{eol}'), count(*) FROM ({compiled}) AS q"
    dbapi = conn.connection.driver_connection
    if pg:
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            cur.execute(sql, params)
            text, count = cur.fetchone()
    else:
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql, [params[k] for k in compiled.positiontup or []])
            text, count = cur.fetchone()
        finally:
            cur.close()
    if not text:
        return pl.DataFrame(schema={n: pl.String() for n in names})
    try:
        frame = pl.read_csv(
            text.encode(),
            has_header=False,
            new_columns=[*names, "_end"],
            infer_schema=False,
            separator=sep,
            eol_char=eol,
            quote_char=quote,
            null_values=None if quoted else _NULL,
            # plain text: an empty field is '' (NULL is the group separator); CSV: NULL
            empty_string_is_null=quoted,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        if quoted:
            raise
        return None  # a separator inside a value
    if not quoted and frame.height != count:
        return None  # a record separator inside a value
    return frame.drop("_end")


def iter_feature_chunks(
    conn: Connection, policy: Policy, now: datetime, *, chunk_size: int = DEFAULT_CHUNK
) -> Generator[FeatureChunk, None, None]:
    """Yield the features of every live Salesforce contact and account, chunk by chunk.

    Args:
        conn: a connection (a read transaction is fine).
        policy: decides which features are computed.
        now: the run's ``now``.
        chunk_size: contacts per chunk (about; one account's contacts are never split).
    """
    q = FeatureQuery(policy, now, conn.dialect.name)
    q.prepare(conn)
    try:
        yield from _chunks(conn, q, policy, chunk_size)
    finally:
        # a broken connection must not hide the error that broke it
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            q.cleanup(conn)


def _chunks(
    conn: Connection, q: FeatureQuery, policy: Policy, chunk_size: int
) -> Iterator[FeatureChunk]:
    for lo, hi in _ranges(conn, chunk_size):
        yield _range_chunk(conn, q, lo, hi)
    yield from _orphan_chunks(conn, q, policy, chunk_size)


def _ranges(conn: Connection, chunk_size: int) -> Iterator[tuple[str | None, str | None]]:
    """Account id ranges ``(lo, hi]`` of about ``chunk_size`` contacts each; the last is open."""
    lo: str | None = None
    while True:
        c = contacts
        hi = conn.execute(
            sa.select(c.c.account_id)
            .where(
                c.c.source == SALESFORCE,
                _live(c),
                c.c.account_id.is_not(None),
                *_id_range(c.c.account_id, lo, None),
            )
            .order_by(c.c.account_id)
            .limit(1)
            .offset(chunk_size - 1)
        ).scalar()
        yield lo, hi
        if hi is None:
            return
        lo = hi


def _orphan_chunks(
    conn: Connection, q: FeatureQuery, policy: Policy, chunk_size: int
) -> Iterator[FeatureChunk]:
    """Contacts without an account: keyset pages of their id."""
    last: str | None = None
    while True:
        after = last

        def orphans(t: Any, after: str | None = after) -> ColumnElement[bool]:
            return sa.and_(t.c.account_id.is_(None), *_id_range(t.c.id, after, None))

        frame = q.contact_frame(conn, orphans, page=chunk_size)
        if frame.height == 0:
            break
        empty = _conform(
            pl.DataFrame({"account_id": pl.Series([], dtype=pl.String)}),
            account_features_schema(policy),
        )
        yield FeatureChunk(q.finish_contacts(frame, q.finish_accounts(empty)), empty.head(0))
        last = frame["contact_id"].max()  # type: ignore[assignment]
        if frame.height < chunk_size:
            break


def _range_chunk(conn: Connection, q: FeatureQuery, lo: str | None, hi: str | None) -> FeatureChunk:
    rows = q.chunk_rows(conn, lo, hi)
    acc = q.finish_accounts(q.account_frame(conn, lo, hi, rows=rows))

    def in_range(t: Any) -> ColumnElement[bool]:
        return sa.and_(t.c.account_id.is_not(None), *_id_range(t.c.account_id, lo, hi))

    con = q.finish_contacts(q.contact_frame(conn, in_range, rng=(lo, hi), rows=rows), acc)
    return FeatureChunk(con, acc)


def compute_features(
    engine: Engine, policy: Policy, now: datetime, *, chunk_size: int = DEFAULT_CHUNK
) -> pl.DataFrame:
    """All contact features at once (tests and small stores; the service streams chunks)."""
    with engine.connect() as conn:
        frames = [
            ch.contacts for ch in iter_feature_chunks(conn, policy, now, chunk_size=chunk_size)
        ]
    return pl.concat(frames) if frames else pl.DataFrame(schema=policy.input_schema())


def stream_feature_chunks(
    engine: Engine,
    policy: Policy,
    now: datetime,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = DEFAULT_WORKERS,
) -> Iterator[FeatureChunk]:
    """:func:`iter_feature_chunks`, read by ``workers`` threads ahead of the caller.

    While the caller evaluates and writes chunk k, the database computes the next ones: SQL
    (the GIL released), polars and the caller's work overlap, and with two workers the two
    cores of a small host both read. Each worker has its own connection and takes the next
    account range (:class:`_RangeFeed`) when done with one; the temporary tables of
    :meth:`FeatureQuery.prepare` are filled once, on a connection of their own, while the
    workers already read, and their few rows are read through it. Each worker holds at most
    two chunks (the one it builds and one ready), so memory stays bounded by ``chunk_size``.
    Errors in a reader are raised here. An in-memory SQLite store (one connection) is read by
    one worker.
    """
    if workers <= 1 or isinstance(engine.pool, (SingletonThreadPool, StaticPool)):

        def chunks() -> Iterator[FeatureChunk]:
            # the worker opens, cleans up (temporary tables) and closes the connection itself
            with engine.connect() as conn:
                yield from iter_feature_chunks(conn, policy, now, chunk_size=chunk_size)

        return read_ahead(chunks(), name="features-reader")
    return _parallel_chunks(engine, policy, now, chunk_size, workers)


class _Prepared:
    """A connection filling one temporary table of prepare() in a thread; then read through.

    Each table is filled on a connection of its own, side by side (the readers wait for them);
    readers then take turns on it: their queries there are small (the strays of a range).
    """

    def __init__(self, conn: Connection, fill: Callable[[Connection], None], table: str) -> None:
        self.conn = conn
        self.table = table
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._fill, fill),
            name=f"features-prepare-{table}",
            daemon=True,
        )
        self.thread.start()

    def _fill(self, fill: Callable[[Connection], None]) -> None:
        try:
            with self.lock:
                fill(self.conn)
        except BaseException as exc:  # raised in every reader that needs the table
            self.error = exc
        finally:
            self.done.set()

    def read(self, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
        self.done.wait()
        if self.error is not None:
            raise self.error
        with self.lock:
            return read_frame(self.conn, stmt, types)

    def close(self) -> None:
        """Wait for the filling to end; drop the table (the connection returns to the pool)."""
        self.thread.join()
        # a broken connection must not hide the error that broke it
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
            self.conn.commit()


@contextlib.contextmanager
def _reader_cache(conn: Connection) -> Iterator[None]:
    """A small SQLite page cache while ``conn`` reads features, the usual one after.

    A reader goes through each range's index pages once: a large cache per reader only
    holds pages it will not read again (3 connections x 64 MiB), and filling it costs time.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{_READER_CACHE_KIB}")
    try:
        yield
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")


class _RangeFeed:
    """Hands out the account ranges one at a time, then the orphans to one reader.

    Each range is found when asked for; after the last, one reader gets ``ORPHANS`` (the
    contacts without an account), the others ``None``. The readers start as soon as the first
    range is known (finding them all takes a query per range), and a reader done early takes
    the next range: no reader idles at the end.
    """

    ORPHANS = "orphans"

    def __init__(self, conn: Connection, chunk_size: int) -> None:
        self._ranges = _ranges(conn, chunk_size)
        self._lock = threading.Lock()
        self._orphans_given = False

    def next(self) -> tuple[str | None, str | None] | str | None:
        with self._lock:
            for rng in self._ranges:
                return rng
            if not self._orphans_given:
                self._orphans_given = True
                return self.ORPHANS
            return None


def _parallel_chunks(
    engine: Engine, policy: Policy, now: datetime, chunk_size: int, workers: int
) -> Generator[FeatureChunk, None, None]:
    with contextlib.ExitStack() as stack:
        feed_conn = stack.enter_context(engine.connect())
        q = FeatureQuery(policy, now, feed_conn.dialect.name)
        for table, fill in q.prepare_parts().items():
            conn = stack.enter_context(engine.connect())
            stack.enter_context(_reader_cache(conn))
            held = _Prepared(conn, fill, table)
            stack.callback(held.close)  # before its connection is closed
            q.prepared[table] = held
        feed = _RangeFeed(feed_conn, chunk_size)

        def share() -> Iterator[FeatureChunk]:
            with engine.connect() as conn, _reader_cache(conn):
                while (task := feed.next()) is not None:
                    if task == _RangeFeed.ORPHANS:
                        yield from _orphan_chunks(conn, q, policy, chunk_size)
                    else:
                        assert isinstance(task, tuple)
                        yield _range_chunk(conn, q, *task)

        readers = [read_ahead(share(), name=f"features-reader-{w}") for w in range(workers)]
        try:
            while readers:  # round robin; a finished reader drops out
                for reader in list(readers):
                    item = next(reader, None)
                    if item is None:
                        readers.remove(reader)
                    else:
                        yield item
        finally:
            for reader in readers:
                reader.close()
