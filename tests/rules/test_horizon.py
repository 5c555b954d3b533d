"""valid_until: the day a verdict may change with time alone."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from rules import load_policy
from rules.horizon import periods, thresholds, valid_until

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"
TODAY = date(2026, 12, 7)


def test_whole_years_of_tenure_in_the_score_are_due_on_the_anniversary_not_tomorrow() -> None:
    policy = load_policy(SHIPPED)
    assert periods(policy, "tenure_days") == [365]
    limits = thresholds(policy, "tenure_days")
    assert limits is not None  # the FLOOR term alone does not make every day a boundary
    features = pl.DataFrame(
        {"tenure_days": [400, 729, 100, None]}, schema={"tenure_days": pl.Int64}
    )
    nxt = pl.Series([None] * 4, dtype=pl.Date)
    due = valid_until(policy, features, nxt, TODAY).to_list()
    onboarding = [TODAY + timedelta(days=c - 100) for c in limits if c - 100 >= 1]
    assert due == [
        TODAY + timedelta(days=330),  # 730 days: the second anniversary
        TODAY + timedelta(days=1),  # 730 tomorrow
        min([TODAY + timedelta(days=265), *onboarding]),
        None,
    ]


def test_a_day_count_in_a_score_other_than_whole_periods_is_due_tomorrow(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    policy = load_policy(SHIPPED)
    assert "FLOOR(tenure_days / 365)" in text
    # a term reading the count itself (validate refuses it; the horizon must stay safe anyway)
    changed = dataclasses.replace(
        policy,
        terms=[
            dataclasses.replace(t, value="tenure_days") if t.id == "tenure" else t
            for t in policy.terms
        ],
    )
    features = pl.DataFrame({"tenure_days": [400]}, schema={"tenure_days": pl.Int64})
    due = valid_until(changed, features, pl.Series([None], dtype=pl.Date), TODAY)
    assert due.to_list() == [TODAY + timedelta(days=1)]
