"""The guard's decision: the verdict's status, then a recount of caps and rest, per ask."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.model import Status
from rules.asks import ASK_SCHEMA, ask_features, cap_filter, counts_towards
from rules.guard import NOT_EVALUATED, LedgerAsk, Verdict, decide, recount
from rules.policy import cap_columns
from tests.rules.helpers import TODAY, shipped_policy

POLICY = shipped_policy()
ELIGIBLE = Verdict(Status.ELIGIBLE.value, "Eligible", TODAY)
#: Every consent the shipped policy knows: consent never decides these cases.
EVERY = ";".join(POLICY.consent_requires.values())


def ask(days_ago: int, kind: str = "Case Study", team: str = "Marketing") -> LedgerAsk:
    return LedgerAsk(kind, team, TODAY - timedelta(days=days_ago))


def test_an_eligible_contact_never_asked_is_allowed_today() -> None:
    d = decide(POLICY, ELIGIBLE, [], [], "Reference Call", "Sales", TODAY, EVERY)
    assert d.allowed
    assert d.status == "Eligible"
    assert d.reasons == []
    assert d.next_available == TODAY


def test_the_rest_period_refuses_any_ask_until_it_ends() -> None:
    d = decide(POLICY, ELIGIBLE, [ask(3)], [ask(3)], "Webinar", "Events", TODAY, EVERY)
    assert not d.allowed
    assert d.status == "Fatigued"
    assert d.broken == ["rest_period"]
    assert d.reasons == [f"rest period after the ask on {TODAY - timedelta(days=3)} (14 days)"]
    assert d.next_available == TODAY + timedelta(days=11)


def test_a_reference_call_cap_blocks_only_reference_calls() -> None:
    asks = [ask(20, "Reference Call")]
    call = decide(POLICY, ELIGIBLE, asks, asks, "reference call", "Sales", TODAY, EVERY)
    assert not call.allowed
    assert call.broken == ["reference_calls"]
    assert call.reasons == ["1 reference call ask in 30 days, cap 1"]
    assert call.next_available == TODAY + timedelta(days=10)
    study = decide(POLICY, ELIGIBLE, asks, asks, "Case Study", "Marketing", TODAY, EVERY)
    assert study.allowed
    assert study.status == "Fatigued"  # the contact is fatigued; this kind of ask is not capped


def test_the_third_ask_in_a_quarter_fills_the_cap_and_the_fourth_is_refused() -> None:
    two = [ask(80), ask(40)]
    assert decide(POLICY, ELIGIBLE, two, two, "Webinar", "Events", TODAY, EVERY).allowed
    three = [*two, ask(20)]
    d = decide(POLICY, ELIGIBLE, three, three, "Webinar", "Events", TODAY, EVERY)
    assert not d.allowed
    assert d.broken == ["contact_quarter"]
    assert d.next_available == TODAY + timedelta(days=10)  # the oldest leaves the window


def test_account_caps_count_the_asks_of_every_contact_of_the_account() -> None:
    account = [ask(d) for d in (20, 25, 30, 35, 40, 45)]
    d = decide(POLICY, ELIGIBLE, [], account, "Webinar", "Events", TODAY, EVERY)
    assert not d.allowed
    assert d.broken == ["account_quarter"]
    assert "on the account" in d.reasons[0]


@pytest.mark.parametrize("status", [Status.OPTED_OUT, Status.SUSPENDED, Status.NOT_ELIGIBLE])
def test_a_status_above_fatigue_refuses_whatever_the_asks(status: Status) -> None:
    d = decide(
        POLICY, Verdict(status.value, "why", None), [], [], "Webinar", "Events", TODAY, EVERY
    )
    assert not d.allowed
    assert d.status == status.value
    assert d.reasons == ["why"]
    assert d.next_available is None


def test_an_ask_type_without_consent_is_refused_with_the_consent_reason_and_no_date() -> None:
    d = decide(POLICY, ELIGIBLE, [], [], "Case Study", "Marketing", TODAY, "Reference Call")
    assert not d.allowed
    assert d.status == "Eligible"  # consent refuses the ask, not the contact
    assert d.reasons == ["No consent for Case Study (needed for a Case Study ask)"]
    assert d.broken == ["consent"]
    assert d.next_available is None  # no day brings consent
    ok = decide(POLICY, ELIGIBLE, [], [], "reference call", "Sales", TODAY, "Reference Call")
    assert ok.allowed


def test_a_missing_consent_is_named_beside_the_caps_it_also_breaks() -> None:
    d = decide(POLICY, ELIGIBLE, [ask(3)], [ask(3)], "Webinar", "Events", TODAY, None)
    assert not d.allowed
    assert d.broken == ["consent", "rest_period"]
    assert d.reasons[0] == "No consent for Speaking (needed for a Webinar ask)"
    assert d.next_available is None


def test_a_status_above_fatigue_still_names_a_missing_consent() -> None:
    why = Verdict(Status.SUSPENDED.value, "Open escalation", None)
    d = decide(POLICY, why, [], [], "Case Study", "Marketing", TODAY, "Reference Call")
    assert d.reasons == [
        "Open escalation",
        "No consent for Case Study (needed for a Case Study ask)",
    ]
    assert d.broken == ["consent"]


def test_a_contact_never_evaluated_is_refused_with_a_reason() -> None:
    d = decide(POLICY, None, [], [], "Webinar", "Events", TODAY, EVERY)
    assert not d.allowed
    assert d.status == NOT_EVALUATED


def test_a_stale_fatigued_verdict_lifts_when_the_recount_finds_the_window_passed() -> None:
    stale = Verdict(Status.FATIGUED.value, "3 asks in 90 days, cap 3", TODAY)
    old = [ask(95), ask(100), ask(120)]
    assert decide(POLICY, stale, old, old, "Webinar", "Events", TODAY, EVERY).allowed


_dates = st.integers(min_value=-5, max_value=200).map(lambda d: TODAY - timedelta(days=d))
_asks = st.lists(
    st.tuples(
        st.sampled_from(["Reference Call", "reference call", "Case Study", None]),
        st.sampled_from(["Sales", "Marketing", None]),
        st.one_of(st.none(), _dates),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(asks=_asks)
def test_the_row_filter_and_the_recount_equal_the_evaluations_frame_code(
    asks: list[tuple[str | None, str | None, date | None]],
) -> None:
    frame = pl.DataFrame(
        {
            "contact_id": ["003A"] * len(asks),
            "account_id": ["001A"] * len(asks),
            "ask_type": [a[0] for a in asks],
            "team": [a[1] for a in asks],
            "status": [None] * len(asks),  # the guard's ledger has no status (shipped caps: none)
            "requested_date": [a[2] for a in asks],
        },
        schema=ASK_SCHEMA,
    )
    contacts = pl.DataFrame({"contact_id": ["003A"], "account_id": ["001A"]})
    from tests.rules.helpers import NOW

    features = ask_features(POLICY, contacts, frame, NOW).row(0, named=True)
    ledger = [LedgerAsk(*a) for a in asks]
    for cap in POLICY.caps:
        expected = frame.filter(cap_filter(cap, TODAY)).height
        assert sum(counts_towards(cap, *a, TODAY) for a in asks) == expected
        counted = recount(cap, ledger, TODAY, None, None)
        count_col, nth_col = cap_columns(cap)
        assert counted.count == features[count_col]
        if counted.binding:
            nth = features[nth_col]
            assert counted.until == nth + timedelta(days=cap.window_days)
