"""Features for the rules, computed set-based in SQL over the store, chunk by chunk.

What is computed is shaped by the policy: only the features it declares (and the ask counts
its caps need) are queried. Every aggregate is a ``GROUP BY`` (or a window function) over the
canonical tables; Python never loops over a table. Results stream into polars in chunks:

* contacts are taken in ranges of their ``account_id`` (keyset: each range ends at the
  account id found ``chunk_size`` contacts further), so a contact and its account always land in
  the same chunk and account-level features are computed once per account; contacts without an
  account come last, in keyset pages of their id. Memory is bounded by ``chunk_size``.
* on PostgreSQL a chunk is read with ``COPY (query) TO STDOUT`` as CSV (parsed by polars); on
  SQLite through the driver's cursor. No row is dropped or capped: every contact is yielded.

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
import io
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from canonical.model import FieldType
from rules import Policy, account_features_schema, cap_columns, today_for
from rules.catalogue import pattern_params
from rules.expressions import POLARS_TYPES
from rules.policy import CapModel
from sync_service.store.models import (
    accounts,
    advocacy_asks,
    contacts,
    nps_responses,
    opportunities,
    tickets,
)

log = logging.getLogger(__name__)

SALESFORCE = "salesforce"
GAINSIGHT = "gainsight"
DEFAULT_CHUNK = 100_000
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


class FeatureQuery:
    """Builds the per-chunk SQL for one policy and ``now``, and reads chunks into polars."""

    def __init__(self, policy: Policy, now: datetime, dialect: str) -> None:
        self.policy = policy
        self.now = now
        self.today = today_for(policy, now)
        self.d = _Dialect(dialect)
        self.need = policy.required_features()
        self.names = set(self.need)
        self.contact_caps = [c for c in policy.caps if c.scope == "contact"]
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
        self.account_caps = [c for c in policy.caps if c.scope == "account"]

    # ---- contact-level ------------------------------------------------------------------
    def contact_select(
        self,
        scope: Callable[[Any], ColumnElement[bool]],
        page: int | None = None,
        rng: tuple[str | None, str | None] | None = None,
    ) -> tuple[sa.Select[Any], dict[str, FieldType]]:
        """Contacts matching ``scope(table)`` with their contact-level features, and the types.

        With ``page``, only the first ``page`` of them by id (keyset paging). With ``rng``
        (the chunk's account-id range, after :meth:`prepare`), the NPS answers and asks are
        found through their own indexed ``account_id`` plus the few rows whose account differs
        from their contact's, instead of through the list of the chunk's contact ids.
        """
        c = contacts.alias("c")
        cols: list[Any] = [c.c.id.label("contact_id"), c.c.account_id.label("account_id")]
        types: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}
        base_where = sa.and_(c.c.source == SALESFORCE, _live(c), scope(c))
        # the contacts of this chunk, as a subquery every aggregate is restricted to
        ids = sa.select(contacts.c.id).where(
            contacts.c.source == SALESFORCE, _live(contacts), scope(contacts)
        )
        if page is not None:
            ids = ids.order_by(contacts.c.id).limit(page)
        frm: Any = c
        n = self.names

        if n & {"opted_in", "opted_out", "opt_in_date"}:
            gs = contacts.alias("gsc")
            g = (
                sa.select(
                    gs.c.sf_contact_id.label("cid"),
                    _tri(gs.c.opted_out).label("g_out"),
                    _tri(gs.c.opted_in).label("g_in"),
                )
                .where(gs.c.source == GAINSIGHT, _live(gs), gs.c.sf_contact_id.in_(ids))
                .group_by(gs.c.sf_contact_id)
                .subquery("g")
            )
            frm = frm.outerjoin(g, g.c.cid == c.c.id)
            sf_out = sa.case((c.c.opted_out == sa.true(), 1), (c.c.opted_out == sa.false(), 0))
            sf_in = sa.case((c.c.opted_in == sa.true(), 1), (c.c.opted_in == sa.false(), 0))
            # an explicit no anywhere wins; opted in needs a yes from Salesforce or Gainsight
            cols += [
                sa.func.max(
                    sa.func.coalesce(sf_out, g.c.g_out), sa.func.coalesce(g.c.g_out, sf_out)
                ).label("opted_out")
                if self.d.name == "sqlite"
                else sa.func.greatest(sf_out, g.c.g_out).label("opted_out"),
                sa.func.max(
                    sa.func.coalesce(sf_in, g.c.g_in), sa.func.coalesce(g.c.g_in, sf_in)
                ).label("opted_in")
                if self.d.name == "sqlite"
                else sa.func.greatest(sf_in, g.c.g_in).label("opted_in"),
                c.c.opt_in_date.label("opt_in_date"),
            ]
            types |= {"opted_out": "boolean", "opted_in": "boolean", "opt_in_date": "date"}

        nps_names = {
            "nps_latest",
            "nps_latest_date",
            "nps_age_days",
            "nps_previous",
            "nps_trend",
            "nps_responses",
        }
        if n & nps_names:
            r = self._source(nps_responses, self.stray_nps, ids, rng, "nsrc")
            ranked = (
                sa.select(
                    r.c.contact_id.label("cid"),
                    r.c.score.label("score"),
                    self.d.to_date(r.c.responded_at).label("day"),
                    sa.func.row_number()
                    .over(
                        partition_by=r.c.contact_id,
                        order_by=(r.c.responded_at.desc(), r.c.id.desc()),
                    )
                    .label("rn"),
                )
                .where(r.c.score.is_not(None), r.c.responded_at.is_not(None))
                .subquery("nr")
            )
            nps = (
                sa.select(
                    ranked.c.cid,
                    sa.func.max(sa.case((ranked.c.rn == 1, ranked.c.score))).label("nps_latest"),
                    sa.func.max(sa.case((ranked.c.rn == 1, ranked.c.day))).label("nps_latest_date"),
                    sa.func.max(sa.case((ranked.c.rn == 2, ranked.c.score))).label("nps_previous"),
                    sa.func.count().label("nps_responses"),
                )
                .group_by(ranked.c.cid)
                .subquery("nps")
            )
            frm = frm.outerjoin(nps, nps.c.cid == c.c.id)
            cols += [
                nps.c.nps_latest,
                nps.c.nps_latest_date,
                nps.c.nps_previous,
                sa.func.coalesce(nps.c.nps_responses, 0).label("nps_responses"),
            ]
            types |= {
                "nps_latest": "integer",
                "nps_latest_date": "date",
                "nps_previous": "integer",
                "nps_responses": "integer",
            }

        windows = sorted({int(pattern_params(x)["days"]) for x in n if x.startswith("asks_last_")})
        want_last = bool(n & {"last_ask_date", "days_since_last_ask"})
        if want_last or windows or self.contact_caps:
            # one pass over the chunk's asks for every contact-level ask feature and cap
            src = self._source(advocacy_asks, self.stray_asks, ids, rng, "asrc")
            sub = self._asks_subquery(
                src,
                "contact_id",
                self.contact_caps,
                windows,
                want_last=want_last,
                name="ca",
            )
            frm = frm.outerjoin(sub, sub.c.k == c.c.id)
            if want_last:
                cols.append(sub.c.last_ask_date)
                types["last_ask_date"] = "date"
            for w in windows:
                cols.append(sa.func.coalesce(sub.c[f"w{w}"], 0).label(f"asks_last_{w}d"))
                types[f"asks_last_{w}d"] = "integer"
            for i, cap in enumerate(self.contact_caps):
                count_col, nth_col = cap_columns(cap)
                cols += [
                    sa.func.coalesce(sub.c[f"n{i}"], 0).label(count_col),
                    sub.c[f"nth{i}"].label(nth_col),
                ]
                types |= {count_col: "integer", nth_col: "date"}

        for spec in self.need.values():
            if spec.extra is not None and spec.level == "contact":
                cols.append(c.c.extra[spec.extra].as_string().label(spec.name))
                types[spec.name] = spec.type

        stmt = sa.select(*cols).select_from(frm).where(base_where)
        if page is not None:
            stmt = stmt.where(c.c.id.in_(ids)).order_by(c.c.id)
        return stmt, types

    def _source(
        self,
        table: sa.Table,
        stray: sa.Table,
        ids: Any,
        rng: tuple[str | None, str | None] | None,
        name: str,
    ) -> Any:
        """Live rows of ``table`` (asks or NPS answers) of the chunk's contacts, as a subquery."""
        cols = [table.c[c.name] for c in stray.c if c.name != "c_account_id"]
        if rng is None:
            return sa.select(*cols).where(_live(table), table.c.contact_id.in_(ids)).subquery(name)
        lo, hi = rng
        own = sa.select(*cols).where(
            _live(table), table.c.account_id.is_not(None), *_id_range(table.c.account_id, lo, hi)
        )
        # rows filed under another account than their contact's: they belong to the chunk of
        # the contact's account (and must not be counted twice when both are in this range)
        in_own = sa.and_(stray.c.account_id.is_not(None), *_id_range(stray.c.account_id, lo, hi))
        moved = sa.select(*[stray.c[c.name] for c in cols]).where(
            *_id_range(stray.c.c_account_id, lo, hi), sa.not_(in_own)
        )
        return sa.union_all(own, moved).subquery(name)

    def prepare(self, conn: Connection) -> None:
        """Collect, once per run, the asks and NPS answers filed under another account.

        An ask or answer normally carries its contact's account; one that does not (the
        contact moved, the link was filled later) is copied here with the contact's account,
        so chunking by account range never loses it.
        """
        for table, stray in ((advocacy_asks, self.stray_asks), (nps_responses, self.stray_nps)):
            stray.drop(conn, checkfirst=True)
            stray.create(conn)
            c = contacts
            cols = [table.c[x.name] for x in stray.c if x.name != "c_account_id"]
            conn.execute(
                stray.insert().from_select(
                    [x.name for x in stray.c],
                    sa.select(*cols, c.c.account_id)
                    .select_from(table.join(c, c.c.id == table.c.contact_id))
                    .where(
                        _live(table),
                        c.c.source == SALESFORCE,
                        _live(c),
                        c.c.account_id.is_not(None),
                        sa.or_(table.c.account_id.is_(None), table.c.account_id != c.c.account_id),
                    ),
                )
            )

    def cleanup(self, conn: Connection) -> None:
        """Drop the per-run temporary tables."""
        for stray in (self.stray_asks, self.stray_nps):
            stray.drop(conn, checkfirst=True)

    def _asks_subquery(
        self,
        a: Any,
        key_name: str,
        caps: list[CapModel],
        windows: list[int],
        *,
        want_last: bool,
        name: str,
    ) -> Any:
        """Per ``key``: last ask date, asks in each window, and each cap's count and nth date.

        One scan of the asks: a cap's matching asks are ranked newest first within the
        partition (key, matches-the-cap), so the ``max_asks``-th of them is one row number.
        """
        key = a.c[key_name]
        inner: list[Any] = [key.label("k"), a.c.requested_date.label("day")]
        for i, cap in enumerate(caps):
            cond: list[ColumnElement[bool]] = [
                a.c.requested_date > self.d.day(self.today - timedelta(days=cap.window_days))
            ]
            if cap.ask_types:
                cond.append(sa.func.lower(a.c.ask_type).in_([t.lower() for t in cap.ask_types]))
            if cap.teams:
                cond.append(sa.func.lower(a.c.team).in_([t.lower() for t in cap.teams]))
            flag = sa.case((sa.and_(*cond), 1), else_=0)
            inner.append(flag.label(f"f{i}"))
            inner.append(
                sa.func.row_number()
                .over(partition_by=(key, flag), order_by=(a.c.requested_date.desc(), a.c.id))
                .label(f"rn{i}")
            )
        ranked = sa.select(*inner).where(key.is_not(None)).subquery(f"{name}_r")
        outer: list[Any] = [ranked.c.k]
        if want_last:
            outer.append(sa.func.max(ranked.c.day).label("last_ask_date"))
        for w in windows:
            since = self.d.day(self.today - timedelta(days=w))
            outer.append(sa.func.sum(sa.case((ranked.c.day > since, 1), else_=0)).label(f"w{w}"))
        for i, cap in enumerate(caps):
            f, rn = ranked.c[f"f{i}"], ranked.c[f"rn{i}"]
            outer.append(sa.func.sum(f).label(f"n{i}"))
            hit = sa.and_(f == 1, rn == cap.max_asks)
            outer.append(sa.func.max(sa.case((hit, ranked.c.day))).label(f"nth{i}"))
        return sa.select(*outer).group_by(ranked.c.k).subquery(name)

    # ---- account-level ------------------------------------------------------------------
    def account_select(
        self, lo: str | None, hi: str | None, *, only: str | None = None
    ) -> tuple[sa.Select[Any], dict[str, FieldType]]:
        """Salesforce accounts with id in ``(lo, hi]`` (or just ``only``) and their features."""

        def _range(col: Any, lo: str | None, hi: str | None) -> list[ColumnElement[bool]]:
            return [col == only] if only is not None else _id_range(col, lo, hi)

        ac = accounts.alias("a")
        n = self.names
        cols: list[Any] = [ac.c.id.label("account_id")]
        types: dict[str, FieldType] = {"account_id": "string"}
        frm: Any = ac

        for plain in ("industry", "region", "segment", "account_type", "customer_since"):
            if plain in n or (plain == "customer_since" and "tenure_days" in n):
                cols.append(ac.c[plain].label(plain))
                types[plain] = "date" if plain == "customer_since" else "string"

        if n & {"health_score", "payment_overdue", "churn_risk"}:
            gs = accounts.alias("gsa")
            g = (
                sa.select(
                    gs.c.sf_account_id.label("aid"),
                    sa.func.max(gs.c.health_score).label("g_health"),
                    _tri(gs.c.payment_overdue).label("g_pay"),
                    _tri(gs.c.churn_risk).label("g_churn"),
                )
                .where(gs.c.source == GAINSIGHT, _live(gs), *_range(gs.c.sf_account_id, lo, hi))
                .group_by(gs.c.sf_account_id)
                .subquery("ga")
            )
            frm = frm.outerjoin(g, g.c.aid == ac.c.id)
            greatest = sa.func.max if self.d.name == "sqlite" else sa.func.greatest
            for name, gcol in (("payment_overdue", g.c.g_pay), ("churn_risk", g.c.g_churn)):
                sf = sa.case((ac.c[name] == sa.true(), 1), (ac.c[name] == sa.false(), 0))
                cols.append(
                    greatest(sa.func.coalesce(sf, gcol), sa.func.coalesce(gcol, sf)).label(name)
                )
                types[name] = "boolean"
            cols.append(sa.func.coalesce(g.c.g_health, ac.c.health_score).label("health_score"))
            types["health_score"] = "number"

        prios = sorted(
            {
                pattern_params(x)["priority"]
                for x in n
                if x.startswith(("open_tickets_", "oldest_open_"))
                and pattern_params(x).get("priority")
            }
        )
        ticket_windows = sorted(
            {int(pattern_params(x)["days"]) for x in n if x.startswith("tickets_last_")}
        )
        if (
            n & {"open_tickets", "open_escalations", "oldest_open_escalation_date"}
            or prios
            or ticket_windows
        ):
            t = tickets
            open_ = sa.func.coalesce(t.c.is_closed, sa.false()) == sa.false()
            esc = sa.and_(open_, t.c.is_escalated == sa.true())
            day = self.d.to_date(t.c.opened_at)
            parts: list[Any] = [
                t.c.account_id.label("aid"),
                sa.func.sum(sa.case((open_, 1), else_=0)).label("open_tickets"),
                sa.func.sum(sa.case((esc, 1), else_=0)).label("open_escalations"),
                sa.func.min(sa.case((esc, day))).label("oldest_open_escalation_date"),
            ]
            for p in prios:
                hit = sa.and_(open_, _norm_priority(t.c.priority) == p)
                parts.append(sa.func.sum(sa.case((hit, 1), else_=0)).label(f"open_tickets_{p}"))
                parts.append(sa.func.min(sa.case((hit, day))).label(f"_oldest_{p}"))
            for w in ticket_windows:
                since = self.d.ts(self.now - timedelta(days=w))
                parts.append(
                    sa.func.sum(sa.case((t.c.opened_at >= since, 1), else_=0)).label(
                        f"tickets_last_{w}d"
                    )
                )
            tk = (
                sa.select(*parts)
                .where(_live(t), *_range(t.c.account_id, lo, hi))
                .group_by(t.c.account_id)
                .subquery("tk")
            )
            frm = frm.outerjoin(tk, tk.c.aid == ac.c.id)
            for name in ("open_tickets", "open_escalations"):
                cols.append(sa.func.coalesce(tk.c[name], 0).label(name))
                types[name] = "integer"
            cols.append(tk.c.oldest_open_escalation_date)
            types["oldest_open_escalation_date"] = "date"
            for p in prios:
                cols.append(
                    sa.func.coalesce(tk.c[f"open_tickets_{p}"], 0).label(f"open_tickets_{p}")
                )
                cols.append(tk.c[f"_oldest_{p}"])
                types |= {f"open_tickets_{p}": "integer", f"_oldest_{p}": "date"}
            for w in ticket_windows:
                cols.append(
                    sa.func.coalesce(tk.c[f"tickets_last_{w}d"], 0).label(f"tickets_last_{w}d")
                )
                types[f"tickets_last_{w}d"] = "integer"

        if n & {"has_open_renewal", "renewal_risk", "renewal_close_date"}:
            o = opportunities
            ranked = (
                sa.select(
                    o.c.account_id.label("aid"),
                    o.c.renewal_risk,
                    o.c.close_date,
                    sa.func.row_number()
                    .over(partition_by=o.c.account_id, order_by=(o.c.close_date.asc(), o.c.id))
                    .label("rn"),
                )
                .where(
                    _live(o),
                    sa.func.coalesce(o.c.is_closed, sa.false()) == sa.false(),
                    sa.func.lower(o.c.opportunity_type).like("%renewal%"),
                    *_range(o.c.account_id, lo, hi),
                )
                .subquery("ro")
            )
            ren = (
                sa.select(ranked.c.aid, ranked.c.renewal_risk, ranked.c.close_date)
                .where(ranked.c.rn == 1)
                .subquery("ren")
            )
            frm = frm.outerjoin(ren, ren.c.aid == ac.c.id)
            cols += [
                sa.case((ren.c.aid.is_not(None), 1), else_=0).label("has_open_renewal"),
                ren.c.renewal_risk.label("renewal_risk"),
                ren.c.close_date.label("renewal_close_date"),
            ]
            types |= {
                "has_open_renewal": "boolean",
                "renewal_risk": "string",
                "renewal_close_date": "date",
            }

        if "account_nps_latest" in n:
            r = nps_responses
            ranked = (
                sa.select(
                    r.c.account_id.label("aid"),
                    r.c.score,
                    sa.func.row_number()
                    .over(
                        partition_by=r.c.account_id,
                        order_by=(r.c.responded_at.desc(), r.c.id.desc()),
                    )
                    .label("rn"),
                )
                .where(
                    _live(r),
                    r.c.score.is_not(None),
                    r.c.responded_at.is_not(None),
                    *_range(r.c.account_id, lo, hi),
                )
                .subquery("anr")
            )
            anps = sa.select(ranked.c.aid, ranked.c.score).where(ranked.c.rn == 1).subquery("anps")
            frm = frm.outerjoin(anps, anps.c.aid == ac.c.id)
            cols.append(anps.c.score.label("account_nps_latest"))
            types["account_nps_latest"] = "integer"

        acc_windows = sorted(
            {int(pattern_params(x)["days"]) for x in n if x.startswith("account_asks_last_")}
        )
        if acc_windows or self.account_caps:
            aks = advocacy_asks
            src = (
                sa.select(*[aks.c[x.name] for x in self.stray_asks.c if x.name != "c_account_id"])
                .where(_live(aks), *_range(aks.c.account_id, lo, hi))
                .subquery("aasrc")
            )
            sub = self._asks_subquery(
                src,
                "account_id",
                self.account_caps,
                acc_windows,
                want_last=False,
                name="aa",
            )
            frm = frm.outerjoin(sub, sub.c.k == ac.c.id)
            for w in acc_windows:
                cols.append(sa.func.coalesce(sub.c[f"w{w}"], 0).label(f"account_asks_last_{w}d"))
                types[f"account_asks_last_{w}d"] = "integer"
            for i, cap in enumerate(self.account_caps):
                count_col, nth_col = cap_columns(cap)
                cols += [
                    sa.func.coalesce(sub.c[f"n{i}"], 0).label(count_col),
                    sub.c[f"nth{i}"].label(nth_col),
                ]
                types |= {count_col: "integer", nth_col: "date"}

        for spec in self.need.values():
            if spec.extra is not None and spec.level == "account":
                cols.append(ac.c.extra[spec.extra].as_string().label(spec.name))
                types[spec.name] = spec.type

        stmt = (
            sa.select(*cols)
            .select_from(frm)
            .where(ac.c.source == SALESFORCE, _live(ac), *_range(ac.c.id, lo, hi))
        )
        return stmt, types

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


_RAW: dict[FieldType, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Int64(),
    "date": pl.String(),
    "datetime": pl.String(),
}


def read_frame(conn: Connection, stmt: sa.Select[Any], types: dict[str, FieldType]) -> pl.DataFrame:
    """Run ``stmt`` and return its rows as a polars frame typed by ``types``.

    PostgreSQL streams the result as CSV through ``COPY``; SQLite goes through the cursor.
    """
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    # the driver gets the values SQLAlchemy would send (e.g. a JSON path '$."key"' on SQLite)
    for key, process in compiled._bind_processors.items():
        if key in params and params[key] is not None and callable(process):
            params[key] = process(params[key])
    names = list(types)
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        buf = io.BytesIO()
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            with cur.copy(
                f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER true)", params
            ) as cp:
                for block in cp:
                    buf.write(block)
        buf.seek(0)
        frame = (
            pl.read_csv(buf, infer_schema=False)
            if buf.getbuffer().nbytes
            else pl.DataFrame(schema={n: pl.String() for n in names})
        )
    else:
        positional = [params[k] for k in compiled.positiontup or []]
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(str(compiled), positional)
            rows = cur.fetchall()
        finally:
            cur.close()
        frame = pl.DataFrame(
            rows, schema={n: _RAW[types[n]] for n in names}, orient="row", strict=False
        )
    return frame.select(
        [_cast(pl.col(n), frame.schema[n], POLARS_TYPES[types[n]]).alias(n) for n in names]
    )


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
    lo: str | None = None
    while True:
        c = contacts
        nxt = conn.execute(
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
        hi = nxt  # None: the last range, open-ended
        yield _range_chunk(conn, q, lo, hi)
        if hi is None:
            break
        lo = hi
    # contacts without an account: keyset pages of their id
    last: str | None = None
    while True:
        after = last

        def orphans(t: Any, after: str | None = after) -> ColumnElement[bool]:
            return sa.and_(t.c.account_id.is_(None), *_id_range(t.c.id, after, None))

        stmt, types = q.contact_select(orphans, page=chunk_size)
        frame = read_frame(conn, stmt, types)
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
    astmt, atypes = q.account_select(lo, hi)
    acc = q.finish_accounts(read_frame(conn, astmt, atypes))

    def in_range(t: Any) -> ColumnElement[bool]:
        return sa.and_(t.c.account_id.is_not(None), *_id_range(t.c.account_id, lo, hi))

    cstmt, ctypes = q.contact_select(in_range, rng=(lo, hi))
    con = q.finish_contacts(read_frame(conn, cstmt, ctypes), acc)
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


_DONE = object()


def stream_feature_chunks(
    engine: Engine,
    policy: Policy,
    now: datetime,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    stop: threading.Event | None = None,
) -> Iterator[FeatureChunk]:
    """:func:`iter_feature_chunks` on its own connection, one chunk ahead, in a thread.

    While the caller evaluates and writes chunk k, the database computes chunk k+1: the SQL
    and the Python side overlap. At most two chunks are in memory (the one being used and the
    one ready), so memory stays bounded by ``chunk_size``. Errors in the reader are raised here.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = stop or threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with engine.connect() as conn:
                chunks = iter_feature_chunks(conn, policy, now, chunk_size=chunk_size)
                try:
                    for chunk in chunks:
                        if not put(chunk):
                            return
                finally:
                    chunks.close()  # its cleanup needs the connection: run it now
                conn.rollback()
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="features-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
