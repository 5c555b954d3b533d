"""Property tests: the verdict is a pure function of the features, and monotone where it must be."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical.model import STATUS_PRECEDENCE
from rules import evaluate
from tests.rules.helpers import NOW, TODAY, frame, shipped_policy

POLICY = shipped_policy()
RANK = {s.value: i for i, s in enumerate(STATUS_PRECEDENCE)}  # higher = closer to Eligible
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2027, 6, 1))
contacts = st.fixed_dictionaries(
    {
        "contact_id": st.just("003A"),
        "account_id": st.just("001A"),
        "opted_in": maybe(st.booleans()),
        "opted_out": maybe(st.booleans()),
        "nps_latest": maybe(st.integers(0, 10)),
        "nps_latest_date": maybe(dates),
        "nps_age_days": maybe(st.integers(0, 2000)),
        "nps_trend": maybe(st.integers(-10, 10)),
        "open_escalations": maybe(st.integers(0, 3)),
        "oldest_open_escalation_date": maybe(dates),
        "oldest_open_p1_days": maybe(st.integers(0, 60)),
        "payment_overdue": maybe(st.booleans()),
        "renewal_risk": maybe(st.sampled_from(["Low", "Medium", "High", "At Risk"])),
        "renewal_close_date": maybe(dates),
        "customer_since": maybe(dates),
        "tenure_days": maybe(st.integers(0, 3000)),
        "health_score": maybe(st.floats(-10, 110, allow_nan=False)),
    }
)
asks_st = st.lists(
    st.fixed_dictionaries(
        {
            "contact_id": st.sampled_from(["003A", "003B"]),
            "account_id": st.just("001A"),
            "ask_type": st.sampled_from(
                ["Reference Call", "Case Study", "Review", "reference call"]
            ),
            "team": st.sampled_from(["Sales", "Marketing"]),
            "requested_date": st.integers(-5, 200).map(lambda d: TODAY - timedelta(days=d)),
        }
    ),
    max_size=8,
)


def one(row: dict[str, Any], asks: list[dict[str, Any]]) -> dict[str, Any]:
    return evaluate(POLICY, frame(POLICY, [row], asks), NOW).row(0, named=True)


@SETTINGS
@given(rows=st.lists(contacts, min_size=1, max_size=6), asks=asks_st, seed=st.randoms())
def test_the_verdict_is_a_pure_function_of_the_features(
    rows: list[dict[str, Any]], asks: list[dict[str, Any]], seed: Any
) -> None:
    rows = [{**r, "contact_id": f"c{i}"} for i, r in enumerate(rows)]
    feats = frame(POLICY, rows, asks)
    once = evaluate(POLICY, feats, NOW)
    order = list(range(feats.height))
    seed.shuffle(order)
    shuffled = evaluate(POLICY, feats[order], NOW).sort("contact_id")
    assert once.sort("contact_id").equals(shuffled)
    # each row alone gives the same verdict as in a batch
    for i in range(feats.height):
        assert evaluate(POLICY, feats[i], NOW).equals(once[i])


@SETTINGS
@given(row=contacts, asks=asks_st, extra=asks_st.filter(lambda a: len(a) == 1))
def test_adding_an_ask_never_makes_a_contact_less_fatigued(
    row: dict[str, Any], asks: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> None:
    before = one(row, asks)
    after = one(row, asks + extra)
    if before["fatigued"]:
        assert after["fatigued"]
        assert (
            after["status"] == before["status"] or RANK[after["status"]] <= RANK[before["status"]]
        )
    assert RANK[after["status"]] <= RANK[before["status"]]
    if before["status"] == after["status"] == "Fatigued":
        assert after["next_available"] >= before["next_available"]


@SETTINGS
@given(row=contacts.filter(lambda r: (r["open_escalations"] or 0) > 0), asks=asks_st)
def test_removing_an_escalation_never_makes_a_contact_less_eligible(
    row: dict[str, Any], asks: list[dict[str, Any]]
) -> None:
    before = one(row, asks)
    after = one({**row, "open_escalations": row["open_escalations"] - 1}, asks)
    assert RANK[after["status"]] >= RANK[before["status"]]
    assert after["eligible"] or not before["eligible"]


def test_rank_covers_every_status() -> None:
    assert pl.Series(list(RANK)).n_unique() == 5
