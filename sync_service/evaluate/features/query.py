"""One chunk's features read from the store: narrow rows in SQL, aggregated in polars.

SQL selects the live rows of one account range (or of a list of contacts, or one account) and
does the plain ``GROUP BY`` sums of tickets and Gainsight rows; :class:`FeaturePlan` ranks and
aggregates the rest. Every table read has a covering index led by ``account_id`` (migration
0004), so a chunk's rows come from one index range, without a table lookup per row.

Conventions (see ``rules.catalogue`` for what each feature means): NPS answers and asks link
through ``contact_id`` / ``account_id`` (Salesforce ids) whatever their source; timestamps
(stored in UTC) become UTC dates before a day count; ``tickets_last_<N>d`` counts tickets
opened at or after ``now - N``. Open ticket: ``is_closed`` is not true. Escalation: open and
``is_escalated``. Priority ``<p>`` matches ``lower(replace(priority, ' ', '_'))``. Open renewal:
an opportunity not closed whose type contains 'renewal' (any case); the one closing first is
"the" renewal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import FieldType
from rules import Policy, cap_columns
from rules.expressions import POLARS_TYPES
from sync_service.evaluate.features.plan import FeaturePlan, left_join, newest_first
from sync_service.evaluate.features.run_tables import RunTables
from sync_service.evaluate.features.sql import (
    GAINSIGHT,
    SALESFORCE,
    Dialect,
    extra_value,
    id_range,
    live,
    norm_priority,
    tri,
)
from sync_service.store.frames import read_frame
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    nps_responses,
    opportunities,
    tickets,
)


def read_typed(conn: Connection, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
    """:func:`~sync_service.store.frames.read_frame` with the rules' field types."""
    return read_frame(conn, stmt, {name: POLARS_TYPES[t] for name, t in types.items()})


class PreparedReader(Protocol):
    """A temporary table of :class:`RunTables` filled on a connection of its own."""

    def read(self, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
        """:func:`read_typed` of ``stmt`` through the connection holding the table."""
        ...


@dataclass
class ChunkRows:
    """A chunk's NPS answers or asks: those filed under its accounts, and its strays."""

    own: pl.DataFrame = field(default_factory=pl.DataFrame)
    # read when first needed: the strays come from prepare()'s tables, which a parallel
    # reader may have to wait for; the chunk's other reads go first
    moved: Callable[[], pl.DataFrame] | None = None

    def for_contacts(self) -> pl.DataFrame:
        """The rows that count for the chunk's contacts."""
        return self.own if self.moved is None else pl.concat([self.own, self.moved()])


class FeatureQuery(FeaturePlan):
    """Reads one chunk's narrow rows for one policy and ``now``; aggregates them in polars.

    SQL only filters and, where it is a plain ``GROUP BY`` (tickets, Gainsight rows), sums;
    every ranking (latest NPS, the nth ask of a cap, the next renewal) is done in polars on
    the chunk's rows, which is several times faster than the window functions it replaces.
    """

    def __init__(self, policy: Policy, now: datetime, dialect: str) -> None:
        super().__init__(policy, now)
        self.d = Dialect(dialect)
        self.tables = RunTables(self.d, want_opt=self.want_opt)
        # set by the parallel reader: per temporary table, the connection holding it
        self.prepared: dict[str, PreparedReader] = {}

    @property
    def scoped(self) -> bool:
        """An incremental evaluation: every range, and the run's tables, limited to eval_scope."""
        return self.tables.scoped

    @scoped.setter
    def scoped(self, value: bool) -> None:
        self.tables.scoped = value

    def prepare(self, conn: Connection) -> None:
        """Fill the run's temporary tables (:class:`RunTables`) on ``conn``."""
        self.tables.prepare(conn)

    def prepare_parts(self) -> dict[str, Callable[[Connection], None]]:
        """:meth:`prepare` in parts (see :meth:`RunTables.prepare_parts`)."""
        return self.tables.prepare_parts()

    def cleanup(self, conn: Connection) -> None:
        """Drop the per-run temporary tables."""
        self.tables.cleanup(conn)

    # ---- raw rows -----------------------------------------------------------------------
    def _ask_cols(self, t: Any) -> tuple[list[Any], dict[str, FieldType]]:
        # the text columns the caps' filters and the outcomes read, as stored: they become one
        # small integer each in polars (FeaturePlan.ask_codes)
        cols = [
            t.c.contact_id.label("contact_id"),
            t.c.account_id.label("account_id"),
            t.c.requested_date.label("day"),
        ]
        types: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}
        types["day"] = "date"
        for name in self.ask_text:
            cols.append(t.c[name].label(name))
            types[name] = "string"
        return cols, types

    def _nps_cols(self, t: Any) -> tuple[list[Any], dict[str, FieldType]]:
        # the answer time as text, which sorts as time: SQLite's is fixed-width, PostgreSQL's
        # is ISO in UTC (read_frame's session zone) with a fraction that drops trailing zeros
        # the answer's account only for the account's latest answer: a fifth of the row else
        cols = [t.c.contact_id.label("contact_id")]
        types: dict[str, FieldType] = {"contact_id": "string"}
        if self.want_acc_nps:
            cols.append(t.c.account_id.label("account_id"))
            types["account_id"] = "string"
        cols += [t.c.score.label("score"), t.c.responded_at.label("key"), t.c.id.label("id")]
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
            live(table),
            table.c.account_id.is_not(None),
            *id_range(table.c.account_id, lo, hi, scoped=self.scoped),
            *where(table),
        )
        scols, _ = shape(stray)
        in_own = sa.and_(
            stray.c.account_id.is_not(None),
            *id_range(stray.c.account_id, lo, hi, scoped=self.scoped),
        )
        moved = sa.select(*scols).where(
            *id_range(stray.c.c_account_id, lo, hi, scoped=self.scoped),
            sa.not_(in_own),
            *where(stray),
        )
        return read_typed(conn, own, types), lambda: self._read_prepared(conn, stray, moved, types)

    def _read_prepared(
        self, conn: Connection, table: sa.Table, stmt: sa.Select[Any], types: dict[str, FieldType]
    ) -> pl.DataFrame:
        """:func:`read_typed` of a statement on ``table``, a temporary table of prepare()."""
        held = self.prepared.get(table.name)
        return held.read(stmt, types) if held is not None else read_typed(conn, stmt, types)

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
        return read_typed(conn, sa.select(*cols).where(live(table), link, *where(table)), types)

    @staticmethod
    def _scored(t: Any) -> list[ColumnElement[bool]]:
        return [t.c.score.is_not(None), t.c.responded_at.is_not(None)]

    @staticmethod
    def _any(t: Any) -> list[ColumnElement[bool]]:
        return []

    def chunk_rows(
        self, conn: Connection, lo: str | None, hi: str | None
    ) -> tuple[ChunkRows, ChunkRows]:
        """The NPS answers and asks of an account range: for its accounts and its contacts."""
        nps = asks = ChunkRows()
        if self.want_nps or self.want_acc_nps:
            own, moved = self._rows(
                conn, nps_responses, self.tables.stray_nps, self._nps_cols, self._scored, (lo, hi)
            )
            nps = ChunkRows(own, moved)
        if self.want_asks or self.want_acc_asks:
            own, moved = self._rows(
                conn, advocacy_asks, self.tables.stray_asks, self._ask_cols, self._any, (lo, hi)
            )
            asks = ChunkRows(self.ask_codes(own), lambda: self.ask_codes(moved()))
        return nps, asks

    # ---- contact-level ------------------------------------------------------------------
    def contact_frame(
        self,
        conn: Connection,
        scope: Callable[[Any], ColumnElement[bool]],
        *,
        page: int | None = None,
        rng: tuple[str | None, str | None] | None = None,
        rows: tuple[ChunkRows, ChunkRows] | None = None,
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
        for name, wanted in (
            ("opt_in_source", self.want_source),
            ("consent_types", self.want_consent),
        ):
            if wanted:
                cols.append(c.c[name].label(name))
                types[name] = "string"
        for spec in self.need.values():
            if spec.extra is not None and spec.level == "contact":
                cols.append(extra_value(c, spec.extra, c.c.sf_contact_id).label(spec.name))
                types[spec.name] = spec.type
        stmt = sa.select(*cols).where(c.c.source == SALESFORCE, live(c), scope(c))
        if page is not None:
            stmt = stmt.order_by(c.c.id).limit(page)
        ids = stmt.with_only_columns(c.c.id)  # this chunk's contacts, for the lookups below
        frame = read_typed(conn, stmt, types)
        if self.want_opt:
            frame = self._with_gainsight_opt(conn, frame, ids, rng)
        if rows is None:
            rows = self._contact_rows(conn, ids)
        nps, asks = rows
        if self.want_nps:
            frame = left_join(frame, self.nps_features(nps.for_contacts()), "contact_id")
            frame = frame.with_columns(pl.col("nps_responses").fill_null(0))
        if self.want_asks:
            caps = [(self.bit[cap.id], cap) for cap in self.contact_caps]
            feats = self.ask_features(
                asks.for_contacts(),
                "contact_id",
                caps,
                self.ask_windows,
                "asks_last",
                outcomes=self.want_outcome,
            )
            frame = left_join(frame, feats, "contact_id")
            counts = [f"asks_last_{w}d" for w in self.ask_windows]
            counts += [f"declines_last_{w}d" for w in self.decline_windows]
            counts += [f"completed_last_{w}d" for w in self.completed_windows]
            counts += ["asks_pending"] if self.want_pending else []
            frame = frame.with_columns(
                [pl.col(x).fill_null(0) for x in counts]
                + [pl.col(cap_columns(cap)[0]).fill_null(0) for cap in self.contact_caps]
            )
            if not self.want_last:
                frame = frame.drop("last_ask_date")
        return frame

    def _contact_rows(self, conn: Connection, ids: Any) -> tuple[ChunkRows, ChunkRows]:
        nps = asks = ChunkRows()
        if self.want_nps:
            link = nps_responses.c.contact_id.in_(ids)
            nps = ChunkRows(self._rows_of(conn, nps_responses, self._nps_cols, self._scored, link))
        if self.want_asks:
            link = advocacy_asks.c.contact_id.in_(ids)
            own = self._rows_of(conn, advocacy_asks, self._ask_cols, self._any, link)
            asks = ChunkRows(self.ask_codes(own))
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
            gt = self.tables.gs_contacts
            stmt = sa.select(gt.c.contact_id, gt.c.g_out, gt.c.g_in).where(
                *id_range(gt.c.c_account_id, *rng, scoped=self.scoped)
            )
        else:
            gs = contacts.alias("gsc")
            stmt = (
                sa.select(
                    gs.c.sf_contact_id.label("contact_id"),
                    tri(gs.c.opted_out).label("g_out"),
                    tri(gs.c.opted_in).label("g_in"),
                )
                .where(gs.c.source == GAINSIGHT, live(gs), gs.c.sf_contact_id.in_(ids))
                .group_by(gs.c.sf_contact_id)
            )
        types: dict[str, FieldType] = {"contact_id": "string", "g_out": "integer"}
        types["g_in"] = "integer"
        if rng is not None:
            g = self._read_prepared(conn, self.tables.gs_contacts, stmt, types)
        else:
            g = read_typed(conn, stmt, types)
        frame = left_join(frame, g, "contact_id")
        # an explicit no anywhere wins; opted in needs a yes from Salesforce or Gainsight
        return frame.with_columns(
            [
                pl.max_horizontal(pl.col(x).cast(pl.Int64), pl.col(g)).cast(pl.Boolean).alias(x)
                for x, g in (("opted_out", "g_out"), ("opted_in", "g_in"))
            ]
        ).drop("g_out", "g_in")

    # ---- account-level ------------------------------------------------------------------
    def account_frame(
        self,
        conn: Connection,
        lo: str | None,
        hi: str | None,
        *,
        only: str | None = None,
        rows: tuple[ChunkRows, ChunkRows] | None = None,
    ) -> pl.DataFrame:
        """Salesforce accounts with id in ``(lo, hi]`` (or just ``only``) and their features.

        ``rows``: the range's NPS answers and asks when already read (:meth:`chunk_rows`).
        """

        def _range(col: Any) -> list[ColumnElement[bool]]:
            return [col == only] if only is not None else id_range(col, lo, hi, scoped=self.scoped)

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
                cols.append(extra_value(ac, spec.extra, ac.c.sf_account_id).label(spec.name))
                types[spec.name] = spec.type
        stmt = sa.select(*cols).where(ac.c.source == SALESFORCE, live(ac), *_range(ac.c.id))
        frame = read_typed(conn, stmt, types)

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
                    newest_first(nps.own, "account_id")
                    .group_by("account_id")
                    .agg(pl.col("score").first().alias("account_nps_latest"))
                )
                frame = left_join(frame, latest, "account_id")
            if self.want_acc_asks:
                caps = [(self.bit[cap.id], cap) for cap in self.account_caps]
                feats = self.ask_features(
                    asks.own, "account_id", caps, self.acc_windows, "account_asks_last"
                ).drop("last_ask_date")
                frame = left_join(frame, feats, "account_id").with_columns(
                    [pl.col(f"account_asks_last_{w}d").fill_null(0) for w in self.acc_windows]
                    + [pl.col(cap_columns(cap)[0]).fill_null(0) for cap in self.account_caps]
                )
        return frame

    def _account_rows(
        self, conn: Connection, rng: Callable[[Any], list[Any]]
    ) -> tuple[ChunkRows, ChunkRows]:
        nps = asks = ChunkRows()
        if self.want_acc_nps:
            t = nps_responses
            link = sa.and_(t.c.account_id.is_not(None), *rng(t.c.account_id))
            nps = ChunkRows(self._rows_of(conn, t, self._nps_cols, self._scored, link))
        if self.want_acc_asks:
            t = advocacy_asks
            link = sa.and_(t.c.account_id.is_not(None), *rng(t.c.account_id))
            asks = ChunkRows(
                self.ask_codes(self._rows_of(conn, t, self._ask_cols, self._any, link))
            )
        return nps, asks

    def _with_gainsight_account(
        self, conn: Connection, frame: pl.DataFrame, rng: Callable[[Any], list[Any]]
    ) -> pl.DataFrame:
        gs = accounts.alias("gsa")
        stmt = (
            sa.select(
                gs.c.sf_account_id.label("account_id"),
                sa.func.max(gs.c.health_score).label("g_health"),
                tri(gs.c.payment_overdue).label("g_payment_overdue"),
                tri(gs.c.churn_risk).label("g_churn_risk"),
            )
            .where(gs.c.source == GAINSIGHT, live(gs), *rng(gs.c.sf_account_id))
            .group_by(gs.c.sf_account_id)
        )
        types: dict[str, FieldType] = {"account_id": "string", "g_health": "number"}
        types |= {"g_payment_overdue": "integer", "g_churn_risk": "integer"}
        g = read_typed(conn, stmt, types)
        frame = left_join(frame, g, "account_id")
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
            hit = sa.and_(open_, norm_priority(t.c.priority) == p)
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
        stmt = sa.select(*parts).where(live(t), *rng(t.c.account_id)).group_by(t.c.account_id)
        tk = read_typed(conn, stmt, types).filter(pl.col("account_id").is_not_null())
        frame = left_join(frame, tk, "account_id")
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
            live(o),
            sa.func.coalesce(o.c.is_closed, sa.false()) == sa.false(),
            sa.func.lower(o.c.opportunity_type).like("%renewal%"),
            o.c.account_id.is_not(None),
            *rng(o.c.account_id),
        )
        types: dict[str, FieldType] = {"account_id": "string", "renewal_risk": "string"}
        types |= {"renewal_close_date": "date", "id": "string"}
        rows = read_typed(conn, stmt, types)
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
        frame = left_join(frame, first, "account_id")
        return frame.with_columns(pl.col("has_open_renewal").fill_null(False))

    # ---- derived columns ----------------------------------------------------------------
