"""The day a verdict may change with time alone: its ``valid_until``.

A verdict computed today stays the verdict of the same inputs until some time-based input
crosses a boundary. :func:`valid_until` finds the earliest such day per row, vectorised:

* **day counts** (``nps_age_days``, ``tenure_days``, ``oldest_open_<p>_days``, ... every
  built-in ``*_days`` feature) grow by one a day. Compared with a number in a rule
  (``tenure_days >= 90``), the comparison can only flip when the count reaches that number
  or the next one: those days are boundaries. In a score term as whole periods
  (``FLOOR(tenure_days / 365)``, the only way ``validate`` lets a score read a day count) it
  moves when the count reaches the next multiple: that day is a boundary. A count used any
  other way (in a reason, against another feature, in BETWEEN) may change the verdict any
  day: tomorrow.
* **window counts** (``asks_last_<N>d``, ``declines_last_<N>d``, ``tickets_last_<N>d``, a
  cap's count...) only fall with time, when a counted row leaves the window. A count of zero
  stays zero; a positive one may fall any day: tomorrow (the rows' dates are not in the
  features; the cap windows' and the rest period's ends are in ``next_available`` anyway).
* **next available**: the day a cap window lets an ask go or the rest period ends (the
  engine's ``next_available``); a date that is today (an Eligible contact's, which moves with
  the clock) holds until tomorrow.

NULL means nothing time-based can change the verdict. The result is conservative: a day given
may change nothing (the verdict is then recomputed the same), a day that may change something
is never later than the one given. Pure: features in, dates out, ``today`` given.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import polars as pl

from rules.policy import Policy, cap_columns

#: ``name OP number`` or ``number OP name`` in a condition.
_COMPARISON = (
    r"(?:\b{f}\s*(?:<=|>=|<>|!=|=|<|>)\s*(-?\d+)\b|\b(-?\d+)\s*(?:<=|>=|<>|!=|=|<|>)\s*{f}\b)"
)
_WINDOW_COUNT = re.compile(r"_last_[1-9][0-9]{0,4}d$")


def day_count_features(policy: Policy) -> list[str]:
    """The built-in day counts the policy reads (they grow by one a day)."""
    return sorted(
        name
        for name, spec in policy.features.items()
        if name.endswith("_days") and spec.extra is None
    )


def window_count_columns(policy: Policy) -> list[str]:
    """Input columns that count rows of a window of days (they fall as rows age out)."""
    schema = policy.input_schema()
    cols = {c for c in schema if _WINDOW_COUNT.search(c)}
    cols |= {cap_columns(cap)[0] for cap in policy.caps}
    return sorted(c for c in cols if c in schema)


def thresholds(policy: Policy, feature: str) -> list[int] | None:
    """The numbers ``feature`` is compared with in the rules; None if it is used otherwise.

    None (a boundary any day) when it appears in a reason, a score term, or in a condition
    other than a plain comparison with a number.
    """
    word = re.compile(rf"\b{re.escape(feature)}\b")
    for rule in policy.rules:
        if word.search(rule.reason.text) or word.search(rule.null_reason.text):
            return None
    # whole periods (FLOOR(tenure_days / 365)) move on known days: see periods()
    whole = _whole_periods(feature)
    if any(word.search(whole.sub("", term.value)) for term in policy.terms):
        return None
    found: list[int] = []
    comparison = re.compile(_COMPARISON.format(f=re.escape(feature)))
    for rule in policy.rules:
        uses = len(word.findall(rule.when))
        matches = comparison.findall(rule.when)
        if len(matches) != uses:
            return None
        found += [int(a or b) for a, b in matches]
    return sorted(set(found))


def _whole_periods(feature: str) -> re.Pattern[str]:
    return re.compile(rf"\bFLOOR\s*\(\s*{re.escape(feature)}\s*/\s*([1-9][0-9]*)\s*\)", re.I)


def periods(policy: Policy, feature: str) -> list[int]:
    """The N of each ``FLOOR(feature / N)`` in the score's terms (it moves every N days)."""
    pattern = _whole_periods(feature)
    return sorted({int(n) for term in policy.terms for n in pattern.findall(term.value)})


def valid_until(
    policy: Policy, features: pl.DataFrame, next_available: pl.Series, today: date
) -> pl.Series:
    """Per row of ``features``, the first day after ``today`` its verdict may change, or NULL.

    Args:
        policy: the policy the verdicts came from.
        features: the rows evaluated (columns the policy's inputs; absent ones are skipped).
        next_available: the verdicts' ``next_available``, row for row.
        today: the evaluation's day.
    """
    tomorrow = pl.lit(today + timedelta(days=1), dtype=pl.Date)
    candidates: list[pl.Expr] = []
    for name in day_count_features(policy):
        if name not in features.columns:
            continue
        value = pl.col(name)
        limits = thresholds(policy, name)
        if limits is None:
            candidates.append(pl.when(value.is_not_null()).then(tomorrow))
            continue
        for n in periods(policy, name):
            # FLOOR(value / n) moves when the count reaches the next multiple of n
            k = pl.lit(n) - ((value % n) + n) % n
            candidates.append(
                pl.when(value.is_not_null()).then(
                    pl.lit(today, dtype=pl.Date) + pl.duration(days=k)
                )
            )
        for c in limits:
            # the count reaches c on day c - value, and passes it the day after
            for k in (pl.lit(c) - value, pl.lit(c) - value + 1):
                day = pl.lit(today, dtype=pl.Date) + pl.duration(days=k)
                candidates.append(pl.when(k >= 1).then(day))
    for name in window_count_columns(policy):
        if name in features.columns:
            candidates.append(pl.when(pl.col(name).fill_null(0) > 0).then(tomorrow))
    out = features.select(
        pl.min_horizontal(candidates).alias("valid_until")
        if candidates
        else pl.lit(None, dtype=pl.Date).alias("valid_until")
    ).to_series()
    nxt = next_available.cast(pl.Date)
    due = (
        pl.DataFrame({"n": nxt})
        .select(
            pl.when(pl.col("n") > pl.lit(today))
            .then(pl.col("n"))
            .when(pl.col("n").is_not_null())
            .then(tomorrow)
            .alias("d")
        )
        .to_series()
    )
    return (
        pl.DataFrame({"a": out.cast(pl.Date), "b": due})
        .select(pl.min_horizontal("a", "b").alias("valid_until"))
        .to_series()
    )
