"""What a rep needs on the record: fatigue never hidden, ask outcomes, consent per activity."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from canonical.model import Status
from rules import evaluate, parse_policy
from rules.asks import ASK_SCHEMA, cap_filter
from rules.consent import allowed_ask_types, consent_refusal
from tests.rules.helpers import NOW, TODAY, ask, eligible_contact, frame, shipped_policy

POLICY = shipped_policy()
NO_NPS = {"nps_latest": None, "nps_latest_date": None, "nps_age_days": None}


def verdict(overrides: dict[str, object], asks: list[dict[str, object]]) -> dict[str, object]:
    return evaluate(POLICY, frame(POLICY, [eligible_contact(**overrides)], asks), NOW).row(
        0, named=True
    )


def test_fatigue_behind_another_status_is_in_the_reason_and_dates_the_next_ask() -> None:
    out = verdict(NO_NPS, [ask(d) for d in (20, 30, 40, 50)])
    assert out["status"] == Status.NOT_ELIGIBLE
    assert out["reason"] == "no NPS response; also 4 asks in 90 days, cap 3"
    assert out["next_available"] == TODAY - timedelta(days=40) + timedelta(days=90)
    assert out["recent_asks"] == 4
    assert out["last_ask"] == TODAY - timedelta(days=20)


def test_engagement_fields_are_set_for_every_status_and_empty_without_asks() -> None:
    out = verdict({"opted_out": True}, [ask(5), ask(120)])
    assert out["status"] == Status.OPTED_OUT
    assert (out["recent_asks"], out["last_ask"]) == (1, TODAY - timedelta(days=5))
    assert out["next_available"] == TODAY - timedelta(days=5) + timedelta(days=14)
    clean = verdict({}, [])
    assert (clean["recent_asks"], clean["last_ask"], clean["reason"]) == (0, None, "Eligible")


def test_the_recent_window_is_configurable() -> None:
    text = (POLICY.source_text).replace("recent_window_days: 90", "recent_window_days: 30")
    policy = parse_policy(text)
    f = frame(policy, [eligible_contact()], [ask(20), ask(40)])
    assert evaluate(policy, f, NOW)["recent_asks"].to_list() == [1]


def test_two_declines_in_60_days_suspend_with_the_decline_reason() -> None:
    out = verdict({}, [ask(20, status="Declined"), ask(50, status="declined")])
    assert out["status"] == Status.SUSPENDED
    assert out["reason"] == "Declined 2 asks in the last 60 days"
    one = verdict({}, [ask(20, status="Declined"), ask(61, status="Declined")])
    assert one["status"] == Status.ELIGIBLE


def test_outcome_features_count_by_status() -> None:
    text = POLICY.source_text.replace(
        "  declines_last_60d: integer\n",
        "  declines_last_60d: integer\n  completed_last_365d: integer\n  asks_pending: integer\n",
    )
    policy = parse_policy(text)
    asks = [
        ask(20, status="Completed"),
        ask(200, status="Completed"),
        ask(400, status="Completed"),
        ask(30, status="Requested"),
        ask(35, status="Accepted"),
        ask(50, status="Cancelled"),
        {**ask(70), "status": None},
    ]
    row = frame(policy, [eligible_contact()], asks).row(0, named=True)
    assert row["completed_last_365d"] == 2
    assert row["asks_pending"] == 3
    assert row["declines_last_60d"] == 0


def test_a_cap_with_statuses_counts_only_those() -> None:
    text = POLICY.source_text.replace(
        "    - id: contact_quarter\n      scope: contact\n",
        "    - id: contact_quarter\n      scope: contact\n      statuses: [Completed, Accepted]\n",
    )
    policy = parse_policy(text)
    requested = [ask(d) for d in (20, 30, 40, 50)]
    assert evaluate(policy, frame(policy, [eligible_contact()], requested), NOW)[
        "status"
    ].to_list() == [Status.ELIGIBLE]
    done = [ask(d, status="completed") for d in (20, 30, 40)]
    out = evaluate(policy, frame(policy, [eligible_contact()], done), NOW).row(0, named=True)
    assert out["status"] == Status.FATIGUED
    assert out["reason"] == "3 asks in 90 days, cap 3"
    cap = next(c for c in policy.caps if c.id == "contact_quarter")
    asks = pl.DataFrame([ask(1, status="Declined"), ask(2, status="COMPLETED")], schema=ASK_SCHEMA)
    assert asks.filter(cap_filter(cap, TODAY))["status"].to_list() == ["COMPLETED"]


def test_available_for_lists_the_consented_ask_types_while_eligible() -> None:
    only_calls = {"consent_case_study": False}
    out = verdict(only_calls, [])
    assert (out["status"], out["available_for"]) == (Status.ELIGIBLE, "Reference Call")
    both = verdict({}, [])
    assert both["available_for"] == "Reference Call;Case Study"
    assert verdict({**only_calls, "opted_in": False}, [])["available_for"] is None
    assert verdict(only_calls, [ask(3)])["available_for"] is None  # resting: not now


def test_consent_refusal_names_the_missing_consent() -> None:
    assert consent_refusal(POLICY, "Reference Call", "Reference Call") is None
    assert consent_refusal(POLICY, "case study", "Reference Call") == (
        "No consent for Case Study (needed for a Case Study ask)"
    )
    assert consent_refusal(POLICY, "Webinar", ["speaking"]) is None
    assert "No consent type covers 'Lunch'" in (consent_refusal(POLICY, "Lunch", None) or "")
    assert allowed_ask_types(POLICY, "Beta/Advisory; Reference Call") == [
        "Reference Call",
        "Advisory Board",
        "Beta",
    ]
    without = parse_policy(POLICY.source_text.split("# Consent per activity")[0])
    assert consent_refusal(without, "Case Study", None) is None


def test_available_for_is_the_same_with_many_consent_types() -> None:
    # past ten consent types the table lookup gives way to a join per row: same answers
    many = "".join(f"    Kind {i}: Consent {i}\n" for i in range(11))
    text = POLICY.source_text.split("consent:\n  requires:\n")[0]
    policy = parse_policy(text + "consent:\n  requires:\n" + many)
    row = eligible_contact(consent_consent_3=True, consent_consent_10=True)
    out = evaluate(policy, frame(policy, [row, {**row, "opted_in": False}]), NOW)
    assert out["available_for"].to_list() == ["Kind 3;Kind 10", None]
