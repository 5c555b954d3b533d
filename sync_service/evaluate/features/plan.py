"""Which features a policy needs, and how a chunk's rows become them (polars, no SQL).

A :class:`FeaturePlan` reads the policy once: the features it declares, the caps and their
bits, the day windows and ticket priorities it names. Its polars side ranks and aggregates a
chunk's narrow rows (latest NPS answers, each cap's nth ask) with one sort per chunk, and
turns dates into day counts relative to the run's ``today``.

Time: one ``now`` per run. ``today`` is ``now`` in the policy's time zone; asks count in a
window of N days while ``requested_date > today - N``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from rules import Policy, account_features_schema, cap_columns, today_for
from rules.asks import cap_filter, pending_filter
from rules.catalogue import COMPLETED, DECLINED, pattern_params
from rules.policy import CapModel
from sync_service.evaluate.features.consent_flags import with_consent_flags
from sync_service.evaluate.features.sql import CLOSED, COMPLETED_CODE, DECLINED_CODE, OPEN
from sync_service.store.frames import cast_column

_NPS_NAMES = {
    "nps_latest",
    "nps_latest_date",
    "nps_age_days",
    "nps_previous",
    "nps_trend",
    "nps_responses",
}


def windows_of(names: set[str], prefix: str) -> list[int]:
    """The day counts ``N`` of the features named ``<prefix><N>d``, in order."""
    return sorted({int(pattern_params(x)["days"]) for x in names if x.startswith(prefix)})


def left_join(frame: pl.DataFrame, other: pl.DataFrame, key: str) -> pl.DataFrame:
    """``frame`` with ``other``'s columns joined on ``key``; ``frame``'s rows and order kept."""
    return frame.join(other, on=key, how="left", maintain_order="left")


def newest_first(answers: pl.DataFrame, by: str) -> pl.DataFrame:
    """NPS answers with a ``by``, newest first within each (ties: highest id).

    One sort of the chunk; a ``group_by(by)`` then keeps that order, so ``first()`` is the
    latest answer and ``get(1)`` the one before.
    """
    return answers.filter(pl.col(by).is_not_null()).sort(
        [by, "key", "id"], descending=[False, True, True]
    )


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with exactly ``schema``'s columns and types (a missing column is all null)."""
    cols = []
    for name, dtype in schema.items():
        if name in frame.columns:
            cols.append(cast_column(pl.col(name), frame.schema[name], dtype).alias(name))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


class FeaturePlan:
    """What one policy needs computed at one ``now``, and the polars steps that compute it."""

    def __init__(self, policy: Policy, now: datetime) -> None:
        self.policy = policy
        self.now = now
        self.today = today_for(policy, now)
        self.need = policy.required_features()
        self.names = n = set(self.need)
        self.contact_caps = [c for c in policy.caps if c.scope == "contact"]
        self.account_caps = [c for c in policy.caps if c.scope == "account"]
        self.bit = {cap.id: i for i, cap in enumerate(policy.caps)}
        self.want_opt = bool(n & {"opted_in", "opted_out", "opt_in_date", "opt_in_age_days"})
        self.want_source = "opt_in_source" in n
        self.consents = sorted(x for x in n if x.startswith("consent_") and x != "consent_types")
        self.want_consent = bool(self.consents) or "consent_types" in n
        # ask outcomes: declines and completions per window, open asks, caps by status
        self.decline_windows = windows_of(n, "declines_last_")
        self.completed_windows = windows_of(n, "completed_last_")
        self.want_pending = "asks_pending" in n
        self.want_outcome = bool(
            self.decline_windows or self.completed_windows or self.want_pending
        )
        # an ask's text columns its codes are computed from (ask_codes)
        caps = policy.caps
        self.ask_text = [
            name
            for name, wanted in (
                ("ask_type", any(c.ask_types for c in caps)),
                ("team", any(c.teams for c in caps)),
                ("status", self.want_outcome or any(c.statuses for c in caps)),
            )
            if wanted
        ]
        self.want_nps = bool(n & _NPS_NAMES)
        self.want_last = bool(n & {"last_ask_date", "days_since_last_ask"})
        self.ask_windows = windows_of(n, "asks_last_")
        self.acc_windows = windows_of(n, "account_asks_last_")
        self.want_asks = bool(
            self.want_last or self.ask_windows or self.contact_caps or self.want_outcome
        )
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
        self.ticket_windows = windows_of(n, "tickets_last_")
        self.want_tickets = bool(
            n & {"open_tickets", "open_escalations", "oldest_open_escalation_date"}
            or self.prios
            or self.ticket_windows
        )

    @staticmethod
    def key_day() -> pl.Expr:
        """The UTC date of a timestamp read as text (what ``date()`` gives in SQL)."""
        return pl.col("key").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)

    def nps_features(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Per contact: latest score and date, the score before, the number of answers."""
        return (
            newest_first(rows, "contact_id")
            .group_by("contact_id")
            .agg(
                pl.col("score").first().alias("nps_latest"),
                pl.col("key").first(),
                pl.col("score").get(1, null_on_oob=True).alias("nps_previous"),
                pl.len().cast(pl.Int64).alias("nps_responses"),
            )
            .with_columns(self.key_day().alias("nps_latest_date"))
            .drop("key")
        )

    def ask_codes(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Asks read with their text columns (:attr:`ask_text`) as two small integers.

        ``bits``: one bit per cap the ask counts towards (:func:`rules.asks.cap_filter`, the
        pure twin's own test); ``outcome``: declined, completed, otherwise closed, or still
        open. Done here rather than in SQL: ``lower()`` per row and per cap cost PostgreSQL
        more than the few bytes of the raw values cost to ship (``BENCHMARKS.md``, rules).
        """
        codes: list[pl.Expr] = []
        if self.policy.caps:
            codes.append(
                pl.sum_horizontal(
                    pl.when(cap_filter(cap, self.today)).then(1 << self.bit[cap.id]).otherwise(0)
                    for cap in self.policy.caps
                )
                .cast(pl.Int64)
                .alias("bits")
            )
        if self.want_outcome:
            status = pl.col("status").str.to_lowercase()
            codes.append(
                pl.when(status == DECLINED)
                .then(DECLINED_CODE)
                .when(status == COMPLETED)
                .then(COMPLETED_CODE)
                .when(pending_filter())
                .then(OPEN)
                .otherwise(CLOSED)
                .cast(pl.Int64)
                .alias("outcome")
            )
        # cap_filter reads the ask's date as requested_date
        return (
            rows.with_columns(pl.col("day").alias("requested_date"))
            .with_columns(codes)
            .drop("requested_date", *self.ask_text)
        )

    def ask_features(
        self,
        rows: pl.DataFrame,
        key: str,
        caps: list[tuple[int, CapModel]],
        windows: list[int],
        prefix: str,
        *,
        outcomes: bool = False,
    ) -> pl.DataFrame:
        """Per ``key``: last ask date, asks in each window, each cap's count and nth date.

        A cap's nth date is the ``max_asks``-th most recent of the asks it counts. With
        ``outcomes`` (contacts), also declines and completions per window and open asks.
        """
        aggs: list[pl.Expr] = [pl.col("day").max().alias("last_ask_date")]
        for w in windows:
            since = self.today - timedelta(days=w)
            aggs.append((pl.col("day") > since).sum().cast(pl.Int64).alias(f"{prefix}_{w}d"))
        if outcomes:
            for code, name, ws in (
                (DECLINED_CODE, "declines_last", self.decline_windows),
                (COMPLETED_CODE, "completed_last", self.completed_windows),
            ):
                for w in ws:
                    hit = (pl.col("day") > self.today - timedelta(days=w)) & (
                        pl.col("outcome") == code
                    )
                    aggs.append(hit.sum().cast(pl.Int64).alias(f"{name}_{w}d"))
            if self.want_pending:
                open_ = (pl.col("outcome") == OPEN).sum().cast(pl.Int64)
                aggs.append(open_.alias("asks_pending"))
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
                extra.append(pl.col(col).alias(f"oldest_open_{p}_date"))
        frame = frame.with_columns(extra) if extra else frame
        schema = account_features_schema(self.policy)
        for cap in self.account_caps:
            for col, t in zip(cap_columns(cap), (pl.Int64(), pl.Date()), strict=True):
                schema[col] = t
        return conform(frame, schema)

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
        if "opt_in_date" in frame.columns:
            extra.append((today - pl.col("opt_in_date")).dt.total_days().alias("opt_in_age_days"))
        frame = frame.with_columns(extra) if extra else frame
        if self.consents:
            frame = with_consent_flags(frame, self.consents)
        acc_cols = [c for c in account_frame.columns if c not in frame.columns or c == "account_id"]
        frame = frame.join(account_frame.select(acc_cols), on="account_id", how="left")
        for cap in self.account_caps:
            frame = frame.with_columns(pl.col(cap_columns(cap)[0]).fill_null(0))
        return conform(frame, self.policy.input_schema())
