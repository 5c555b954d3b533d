"""Ask-ledger features computed from a frame of asks: the pure twin of the store's SQL.

The service computes these columns in SQL over the store; this module computes the same from a
polars frame of asks, so the fatigue semantics can be tested (and property-tested) without a
database, and the two implementations can be checked against each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import polars as pl

from rules import catalogue
from rules.engine import today_for
from rules.policy import CapModel, Policy, cap_columns

ASK_SCHEMA: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "account_id": pl.String(),
    "ask_type": pl.String(),
    "team": pl.String(),
    "status": pl.String(),
    "requested_date": pl.Date(),
}

#: Ask-ledger feature patterns and the statuses they count (None: any status).
_WINDOWED: dict[str, str | None] = {
    "asks_last_": None,
    "declines_last_": catalogue.DECLINED,
    "completed_last_": catalogue.COMPLETED,
}


def windowed_features(names: Iterable[str]) -> list[tuple[str, str | None, int]]:
    """The contact-level windowed ask counts among ``names``: (name, status counted, days)."""
    out = []
    for name in names:
        for prefix, status in _WINDOWED.items():
            params = catalogue.pattern_params(name)
            if name.startswith(prefix) and "days" in params:
                out.append((name, status, int(params["days"])))
    return out


def pending_filter() -> pl.Expr:
    """Asks still open: a status that is none of the closed ones (or none at all)."""
    status = pl.col("status").str.to_lowercase()
    return status.is_null() | ~status.is_in(list(catalogue.CLOSED_ASK_STATUSES))


def cap_filter(cap: CapModel, today: date) -> pl.Expr:
    """Asks that count towards ``cap``: inside its window, of its types and teams (any case)."""
    cond = pl.col("requested_date") > pl.lit(today - timedelta(days=cap.window_days))
    if cap.ask_types:
        cond &= pl.col("ask_type").str.to_lowercase().is_in([t.lower() for t in cap.ask_types])
    if cap.teams:
        cond &= pl.col("team").str.to_lowercase().is_in([t.lower() for t in cap.teams])
    if cap.statuses:
        cond &= pl.col("status").str.to_lowercase().is_in([t.lower() for t in cap.statuses])
    return cond


def counts_towards(
    cap: CapModel, ask_type: str | None, team: str | None, requested: date | None, today: date
) -> bool:
    """Whether one ask counts towards ``cap`` today: the row-at-a-time twin of :func:`cap_filter`.

    The guard recounts one contact's few asks with it, where a frame would cost more than the
    count; a property test holds it equal to :func:`cap_filter`.
    """
    if requested is None or requested <= today - timedelta(days=cap.window_days):
        return False
    if cap.ask_types and (
        ask_type is None or ask_type.lower() not in {t.lower() for t in cap.ask_types}
    ):
        return False
    return not (cap.teams and (team is None or team.lower() not in {t.lower() for t in cap.teams}))


def ask_features(
    policy: Policy, contacts: pl.DataFrame, asks: pl.DataFrame, now: datetime
) -> pl.DataFrame:
    """Add the fatigue columns the policy needs to ``contacts`` from ``asks``.

    Args:
        policy: the policy (its caps and rest days).
        contacts: at least ``contact_id`` and ``account_id``.
        asks: rows of :data:`ASK_SCHEMA`.
        now: the run's ``now``.

    Returns:
        ``contacts`` with ``cap__<id>__count``, ``cap__<id>__nth``, ``last_ask_date`` and the
        contact's windowed counts (``asks_last_<N>d``, ``declines_last_<N>d``,
        ``completed_last_<N>d``) and ``asks_pending`` when the policy needs them.
    """
    today = today_for(policy, now)
    asks = asks.cast(ASK_SCHEMA)  # type: ignore[arg-type]
    out = contacts
    for cap in policy.caps:
        count_col, nth_col = cap_columns(cap)
        key = "contact_id" if cap.scope == "contact" else "account_id"
        per = (
            asks.filter(cap_filter(cap, today) & pl.col(key).is_not_null())
            .group_by(key)
            .agg(
                pl.len().cast(pl.Int64).alias(count_col),
                pl.col("requested_date")
                .sort(descending=True)
                .get(cap.max_asks - 1, null_on_oob=True)
                .alias(nth_col),
            )
        )
        out = out.join(per, on=key, how="left").with_columns(pl.col(count_col).fill_null(0))
    names = policy.required_features()
    aggs = [pl.col("requested_date").max().alias("last_ask_date")]
    counted: list[str] = []
    for name, status, days in windowed_features(names):
        hit = pl.col("requested_date") > pl.lit(today - timedelta(days=days))
        if status is not None:
            hit &= pl.col("status").str.to_lowercase() == status
        aggs.append(hit.sum().cast(pl.Int64).alias(name))
        counted.append(name)
    if "asks_pending" in names:
        aggs.append(pending_filter().sum().cast(pl.Int64).alias("asks_pending"))
        counted.append("asks_pending")
    per_contact = asks.group_by("contact_id").agg(aggs)
    out = out.drop([c for c in ("last_ask_date", *counted) if c in out.columns])
    return out.join(per_contact, on="contact_id", how="left").with_columns(
        [pl.col(c).fill_null(0) for c in counted]
    )
