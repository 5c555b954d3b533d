"""Evaluation: each rule kind, the precedence, NULLs, boundary dates, score and accounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from canonical.errors import PolicyError
from canonical.model import STATUS_PRECEDENCE, Status
from rules import evaluate, evaluate_accounts, explain, parse_policy
from tests.rules.helpers import NOW, TODAY, ask, eligible_contact, frame, shipped_policy

POLICY = shipped_policy()


def verdict(overrides: dict[str, Any], asks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = evaluate(POLICY, frame(POLICY, [eligible_contact(**overrides)], asks), NOW)
    assert out.height == 1
    return out.row(0, named=True)


# One row per rule kind: features that trigger it, the status and the reason people see.
CASES: list[tuple[str, dict[str, Any], Status, str]] = [
    ("eligible advocate", {}, Status.ELIGIBLE, "Eligible"),
    (
        "explicit withdrawal",
        {"opted_out": True},
        Status.OPTED_OUT,
        "Withdrew from the advocacy program",
    ),
    ("never opted in", {"opted_in": False}, Status.NOT_ELIGIBLE, "not opted in"),
    ("opt-in unknown", {"opted_in": None}, Status.NOT_ELIGIBLE, "not opted in"),
    (
        "detractor",
        {"nps_latest": 6},
        Status.NOT_ELIGIBLE,
        "Not a recent promoter: NPS 6 on 2026-06-01",
    ),
    (
        "no NPS response",
        {"nps_latest": None, "nps_latest_date": None, "nps_age_days": None},
        Status.NOT_ELIGIBLE,
        "no NPS response",
    ),
    (
        "promoter too long ago",
        {"nps_age_days": 366},
        Status.NOT_ELIGIBLE,
        "Not a recent promoter: NPS 10 on 2026-06-01",
    ),
    ("promoter exactly 12 months ago", {"nps_age_days": 365}, Status.ELIGIBLE, "Eligible"),
    (
        "new customer",
        {"customer_since": date(2026, 10, 1), "tenure_days": 53},
        Status.NOT_ELIGIBLE,
        "New customer since 2026-10-01 (first 90 days)",
    ),
    ("customer for exactly 90 days", {"tenure_days": 90}, Status.ELIGIBLE, "Eligible"),
    (
        "open escalation",
        {"open_escalations": 1, "oldest_open_escalation_date": date(2026, 11, 2)},
        Status.SUSPENDED,
        "Open escalation since 2026-11-02",
    ),
    (
        "P1 open 8 days",
        {"oldest_open_p1_days": 8, "oldest_open_p1_date": TODAY - timedelta(days=8)},
        Status.SUSPENDED,
        "P1 case open since 2026-11-15",
    ),
    ("P1 open 7 days", {"oldest_open_p1_days": 7}, Status.ELIGIBLE, "Eligible"),
    ("payment overdue", {"payment_overdue": True}, Status.SUSPENDED, "Payment overdue"),
    ("payment status unknown", {"payment_overdue": None}, Status.ELIGIBLE, "Eligible"),
    (
        "renewal at risk",
        {"renewal_risk": "High", "renewal_close_date": date(2027, 1, 31)},
        Status.SUSPENDED,
        "Renewal at risk (closes 2027-01-31)",
    ),
    ("renewal fine", {"renewal_risk": "Low"}, Status.ELIGIBLE, "Eligible"),
]


@pytest.mark.parametrize(
    ("name", "overrides", "status", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_each_rule_kind(name: str, overrides: dict[str, Any], status: Status, reason: str) -> None:
    row = verdict(overrides)
    assert row["status"] == status.value
    assert row["reason"] == reason
    assert row["eligible"] is (status is Status.ELIGIBLE)
    assert row["next_available"] is None  # no cap binds; Eligible may be asked now, not "today"


# (features, asks as (days ago, type)) -> status, reason, next available
FATIGUE_CASES: list[tuple[str, list[tuple[int, str]], Status, str | None, date | None]] = [
    ("no asks", [], Status.ELIGIBLE, "Eligible", None),
    (
        "reference call 20 days ago",
        [(20, "Reference Call")],
        Status.FATIGUED,
        "1 reference call ask in 30 days, cap 1",
        TODAY + timedelta(days=10),
    ),
    (
        "reference call exactly 30 days ago",
        [(30, "Reference Call")],
        Status.ELIGIBLE,
        "Eligible",
        None,
    ),
    (
        "reference call 29 days ago",
        [(29, "Reference Call")],
        Status.FATIGUED,
        "1 reference call ask in 30 days, cap 1",
        TODAY + timedelta(days=1),
    ),
    (
        "ask 13 days ago: rest",
        [(13, "Case Study")],
        Status.FATIGUED,
        "rest period after the ask on 2026-11-10 (14 days)",
        TODAY + timedelta(days=1),
    ),
    ("ask exactly 14 days ago: rested", [(14, "Case Study")], Status.ELIGIBLE, "Eligible", None),
    (
        "three asks in the quarter",
        [(20, "Case Study"), (50, "Review"), (80, "Webinar")],
        Status.FATIGUED,
        "3 asks in 90 days, cap 3",
        TODAY + timedelta(days=10),
    ),
    (
        "two asks in the quarter",
        [(20, "Case Study"), (50, "Review")],
        Status.ELIGIBLE,
        "Eligible",
        None,
    ),
    (
        "third ask exactly 90 days ago",
        [(20, "Case Study"), (50, "Review"), (90, "Webinar")],
        Status.ELIGIBLE,
        "Eligible",
        None,
    ),
    (
        "four asks: binds until the 3rd newest leaves",
        [(15, "A"), (16, "B"), (40, "C"), (85, "D")],
        Status.FATIGUED,
        "4 asks in 90 days, cap 3",
        TODAY + timedelta(days=50),
    ),
]


@pytest.mark.parametrize(
    ("name", "asks", "status", "reason", "next_available"),
    FATIGUE_CASES,
    ids=[c[0] for c in FATIGUE_CASES],
)
def test_fatigue_caps_and_rest(
    name: str, asks: list[tuple[int, str]], status: Status, reason: str, next_available: date
) -> None:
    row = verdict({}, [ask(d, ask_type=t) for d, t in asks])
    assert (row["status"], row["reason"], row["next_available"]) == (
        status.value,
        reason,
        next_available,
    )
    assert row["fatigued"] is (status is Status.FATIGUED)


def test_the_account_cap_counts_asks_of_every_contact_of_the_account() -> None:
    asks = [ask(20 + i, contact=f"003X{i}", ask_type="Review") for i in range(6)]
    row = verdict({}, asks)
    assert row["status"] == Status.FATIGUED.value
    assert row["reason"] == "6 asks on the account in 90 days, cap 6"
    assert row["next_available"] == TODAY + timedelta(days=90 - 25)


def test_the_binding_cap_is_the_one_that_lifts_last() -> None:
    # rest lifts in 4 days, the reference-call cap in 20 days: the cap is what binds
    row = verdict({}, [ask(10, ask_type="reference call")])
    assert row["reason"] == "1 reference call ask in 30 days, cap 1"
    assert row["next_available"] == TODAY + timedelta(days=20)


PRECEDENCE = [
    (
        {"opted_out": True, "payment_overdue": True, "opted_in": False},
        [(5, "Reference Call")],
        Status.OPTED_OUT,
    ),
    ({"payment_overdue": True, "opted_in": False}, [(5, "Reference Call")], Status.SUSPENDED),
    ({"opted_in": False}, [(5, "Reference Call")], Status.NOT_ELIGIBLE),
    ({}, [(5, "Reference Call")], Status.FATIGUED),
    ({}, [], Status.ELIGIBLE),
]


@pytest.mark.parametrize(("overrides", "asks", "status"), PRECEDENCE)
def test_status_precedence(
    overrides: dict[str, Any], asks: list[tuple[int, str]], status: Status
) -> None:
    assert verdict(overrides, [ask(d, ask_type=t) for d, t in asks])["status"] == status.value


def test_precedence_order_is_the_documented_one() -> None:
    assert [s.value for s in STATUS_PRECEDENCE] == [
        "Opted Out",
        "Suspended",
        "Not Eligible",
        "Fatigued",
        "Eligible",
    ]


def test_dates_follow_the_policy_time_zone() -> None:
    # 03:00 UTC on the 23rd is still the 22nd in Los Angeles: an ask on 2026-10-24 is 30 days ago
    # in UTC (out of a 30-day window) but 29 days ago for an org on Pacific time.
    text = shipped_policy().source_text.replace("timezone: UTC", "timezone: America/Los_Angeles")
    pacific = parse_policy(text, "rules.yaml")
    utc = shipped_policy()
    now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    asks = [
        {
            "contact_id": "003A",
            "account_id": "001A",
            "ask_type": "Reference Call",
            "team": "Sales",
            "requested_date": date(2026, 10, 24),
        }
    ]
    for policy, status, nxt in (
        (utc, "Eligible", None),
        (pacific, "Fatigued", date(2026, 11, 23)),
    ):
        row = evaluate(policy, frame(policy, [eligible_contact()], asks, now=now), now).row(
            0, named=True
        )
        assert (row["status"], row["next_available"]) == (status, nxt)


def test_now_must_be_aware() -> None:
    with pytest.raises(PolicyError, match="aware"):
        evaluate(POLICY, frame(POLICY, [eligible_contact()]), datetime(2026, 11, 23))  # noqa: DTZ001


def test_a_missing_feature_column_is_an_error_not_a_null() -> None:
    f = frame(POLICY, [eligible_contact()]).drop("nps_latest")
    with pytest.raises(PolicyError, match="lacks nps_latest"):
        evaluate(POLICY, f, NOW)


def test_null_features_never_raise_and_rows_stay_in_order() -> None:
    nulls = {k: None for k in eligible_contact() if k not in ("contact_id", "account_id")}
    rows = [eligible_contact(contact_id=f"003{i}", **(nulls if i % 2 else {})) for i in range(10)]
    out = evaluate(POLICY, frame(POLICY, rows), NOW)
    assert out["contact_id"].to_list() == [r["contact_id"] for r in rows]
    assert out.filter(pl.col("contact_id") == "0031")["reason"].item() == "not opted in"
    assert out["status"].null_count() == 0
    assert out["reason"].null_count() == 0


def test_score_is_bounded_and_never_changes_the_status() -> None:
    high = verdict({"nps_latest": 10, "health_score": 100.0, "tenure_days": 5000, "nps_trend": 9})
    low = verdict({"nps_latest": 9, "health_score": -50.0, "tenure_days": 90, "nps_trend": -9})
    suspended = verdict({"payment_overdue": True})
    assert high["score"] == 100.0
    assert 0.0 <= low["score"] < high["score"]
    assert high["status"] == low["status"] == "Eligible"
    assert suspended["status"] == "Suspended"
    assert suspended["score"] > 0


def test_long_reasons_are_cut_to_the_crm_field_with_an_ellipsis() -> None:
    text = shipped_policy().source_text.replace(
        "reason: Payment overdue", 'reason: "Payment overdue ' + "x" * 200 + ' {renewal_risk}"'
    )
    policy = parse_policy(text, "rules.yaml")
    row = eligible_contact(payment_overdue=True, renewal_risk="y" * 100)
    row = evaluate(policy, frame(policy, [row]), NOW).row(0, named=True)
    assert len(row["reason"]) == 255
    assert row["reason"].endswith("…")


def test_explain_lists_every_feature_rule_and_cap() -> None:
    f = frame(
        POLICY, [eligible_contact(nps_latest=None, nps_age_days=None)], [ask(10, ask_type="Review")]
    )
    out = explain(POLICY, f, NOW)
    assert out["status"] == "Not Eligible"
    assert (
        out["reason"] == "no NPS response; also rest period after the ask on 2026-11-13 (14 days)"
    )
    rules = {r["id"]: r for r in out["rules"]}
    assert set(rules) == {r.id for r in POLICY.rules}
    assert rules["recent_promoter"]["outcome"] == "unknown"
    assert rules["recent_promoter"]["reason"] == "no NPS response"
    assert rules["opted_in"]["outcome"] == "holds"
    assert rules["long_open_p1"]["outcome"] == "unknown"
    assert rules["long_open_p1"]["reason"] is None
    caps = {c["id"]: c for c in out["caps"]}
    assert caps["contact_quarter"]["words"] == "1 ask in 90 days, cap 3"
    assert caps["reference_calls"]["count"] == 0
    assert out["rest"]["binding"] is True
    assert out["rest"]["until"] == "2026-11-27"
    assert out["features"]["nps_latest"] is None
    assert sum(t["points"] for t in out["score_terms"]) == pytest.approx(out["score"], abs=0.7)


def test_accounts_take_suspension_from_their_features_and_the_rest_from_their_contacts() -> None:
    contacts = frame(
        POLICY,
        [
            eligible_contact(contact_id="c1", account_id="a1"),
            eligible_contact(contact_id="c2", account_id="a1", opted_in=False),
            eligible_contact(contact_id="c3", account_id="a2"),
            eligible_contact(contact_id="c4", account_id="a3", opted_in=False),
        ],
        [ask(5, contact="c3", account="a2")],
    )
    results = evaluate(POLICY, contacts, NOW)
    accounts = pl.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5"],
            "payment_overdue": [False, False, False, False, True],
            "open_escalations": [0, 0, 0, 0, 0],
        }
    )
    out = {
        r["account_id"]: r
        for r in evaluate_accounts(POLICY, accounts, results, NOW).iter_rows(named=True)
    }
    assert (out["a1"]["status"], out["a1"]["reason"]) == ("Eligible", "1 eligible advocate")
    assert out["a1"]["next_available"] is None  # one may be asked now: no date that moves daily
    assert out["a2"]["status"] == "Fatigued"
    assert out["a2"]["next_available"] == TODAY + timedelta(days=9)
    assert (out["a3"]["status"], out["a3"]["reason"]) == ("Not Eligible", "no eligible advocate")
    assert (out["a4"]["status"], out["a4"]["reason"]) == ("Not Eligible", "no contacts")
    assert (out["a5"]["status"], out["a5"]["reason"]) == ("Suspended", "Payment overdue")


def test_an_unchanged_contact_keeps_its_values_from_day_to_day() -> None:
    # Only the clock moves: day counts grow, dates stay. Reason, score and next available date
    # must not change (they are written to the CRM), except on a real boundary: tenure's whole
    # years (the anniversary of customer_since, 1 March here, not inside these 60 days).
    seen = set()
    for day in range(60):
        now = NOW + timedelta(days=day)
        today = now.date()
        row = eligible_contact(
            nps_age_days=(today - date(2026, 6, 1)).days,
            customer_since=date(2024, 3, 1),
            tenure_days=(today - date(2024, 3, 1)).days,
            open_escalations=0,
            oldest_open_p1_days=(today - date(2026, 11, 1)).days,
            oldest_open_p1_date=date(2026, 11, 1),
        )
        out = evaluate(POLICY, frame(POLICY, [row], now=now), now).row(0, named=True)
        seen.add((out["status"], out["reason"], out["score"], out["next_available"]))
    [(status, reason, score, nxt)] = seen
    assert (status, reason, nxt) == ("Suspended", "P1 case open since 2026-11-01", None)
    assert score == round(score)
