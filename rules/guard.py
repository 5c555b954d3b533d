"""The guard at the point of ask: may this contact be asked this now? Pure code.

The latest verdict says whether the contact may be asked at all (opt-out, suspension,
eligibility come from the full evaluation). Fatigue changes with every ask, so it is recounted
here from the contact's and its account's asks as they stand now, with the policy's own caps
(:func:`rules.asks.counts_towards`, the twin of the evaluation's filter) and rest period:

* a cap blocks *this* ask when it already holds ``max_asks`` asks in its window and would count
  this ask too (its ``ask_types`` and ``teams`` match); a cap on reference calls does not block
  a case study;
* the rest period blocks every ask until ``rest_days`` after the contact's last ask;
* consent (:func:`rules.consent.consent_refusal`) blocks an ask type the contact has not
  consented to, whatever the asks say, and with no date: time does not give consent.

``status`` is the contact's status after the recount (Fatigued when any cap binds at all, as
the evaluation would say); ``allowed`` is about the proposed ask. ``next_available`` is the day
the last blocking constraint lifts (today when allowed, None when the status itself or a missing
consent refuses).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from canonical.model import Status
from rules.asks import counts_towards
from rules.consent import consent_refusal
from rules.engine import cap_words
from rules.policy import CapModel, Policy

#: Statuses the recount can lift or impose; the others refuse whatever the asks say.
RECOUNTED = frozenset({Status.ELIGIBLE.value, Status.FATIGUED.value})

#: What a request in the CRM is stamped with (``Guard_Status__c``).
CLEAR = "Clear"
CONFLICT = "Conflict"
OVERRIDE = "Override"

#: Status of a contact that no evaluation has seen yet (synced since the last run).
NOT_EVALUATED = "Not Evaluated"

#: What an override of a missing consent breaks (beside cap ids and ``rest_period``).
CONSENT = "consent"


@dataclass(frozen=True)
class LedgerAsk:
    """One ask as the guard counts it."""

    ask_type: str | None
    team: str | None
    requested_date: date | None


@dataclass(frozen=True)
class Verdict:
    """The latest stored verdict of a contact."""

    status: str
    reason: str | None
    next_available: date | None


@dataclass(frozen=True)
class CapCount:
    """One cap recounted: its count now, whether it binds, and whether it blocks this ask."""

    cap: CapModel
    count: int
    binding: bool
    blocks: bool
    until: date | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.cap.id,
            "scope": self.cap.scope,
            "count": self.count,
            "max_asks": self.cap.max_asks,
            "window_days": self.cap.window_days,
            "binding": self.binding,
            "blocks": self.blocks,
            "words": cap_words(self.cap, self.count),
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class Decision:
    """The guard's answer for one proposed ask."""

    allowed: bool
    status: str
    reasons: list[str]
    next_available: date | None
    caps: list[CapCount] = field(default_factory=list)
    rest_until: date | None = None
    #: The ids of the caps (and ``rest_period``) this ask would break: what an override breaks.
    broken: list[str] = field(default_factory=list)


def window_start(policy: Policy, today: date, scope: str) -> date:
    """The day before the oldest ask that can still count for ``scope`` (contact or account).

    Asks on or before it count towards no cap of that scope (nor the rest period): the guard
    reads only the asks after it.
    """
    days = [c.window_days for c in policy.caps if c.scope == scope]
    if scope == "contact":
        days.append(policy.rest_days)
    return today - timedelta(days=max(days or [0]) + 1)


def _nth_newest(dates: Sequence[date], n: int) -> date | None:
    ordered = sorted(dates, reverse=True)
    return ordered[n - 1] if len(ordered) >= n else None


def recount(
    cap: CapModel,
    asks: Iterable[LedgerAsk],
    today: date,
    ask_type: str | None,
    team: str | None,
) -> CapCount:
    """Count ``asks`` (already those of the cap's scope) towards ``cap`` as of ``today``."""
    dates = [
        a.requested_date
        for a in asks
        if a.requested_date is not None
        and counts_towards(cap, a.ask_type, a.team, a.requested_date, today)
    ]
    binding = len(dates) >= cap.max_asks
    nth = _nth_newest(dates, cap.max_asks)
    until = nth + timedelta(days=cap.window_days) if binding and nth else None
    # Would the proposed ask count here? Asked today, by its type and team.
    counted = counts_towards(cap, ask_type, team, today, today)
    return CapCount(cap, len(dates), binding, binding and counted, until)


def decide(
    policy: Policy,
    verdict: Verdict | None,
    contact_asks: Sequence[LedgerAsk],
    account_asks: Sequence[LedgerAsk],
    ask_type: str,
    team: str | None,
    today: date,
    consent_types: str | Iterable[str] | None,
) -> Decision:
    """Answer whether the contact may be asked for ``ask_type`` by ``team`` on ``today``.

    Args:
        policy: the policy (caps, rest period).
        verdict: the contact's latest stored verdict; None when it was never evaluated.
        contact_asks: every live ask of the contact (any date; older ones are not counted).
        account_asks: every live ask of the contact's account (for account caps).
        ask_type: the proposed ask's type.
        team: the team asking.
        today: the day in the policy's time zone.
        consent_types: the contact's consents as they stand now (the multi-select 'A;B').
    """
    if verdict is None:
        return Decision(
            False,
            NOT_EVALUATED,
            ["not evaluated yet: the contact arrived after the last evaluation run"],
            None,
        )
    refusal = consent_refusal(policy, ask_type, consent_types)
    unconsented = [refusal] if refusal else []
    if verdict.status not in RECOUNTED:
        return Decision(
            False,
            verdict.status,
            [verdict.reason or verdict.status, *unconsented],
            None,
            broken=[CONSENT] if refusal else [],
        )
    caps = [
        recount(
            cap, contact_asks if cap.scope == "contact" else account_asks, today, ask_type, team
        )
        for cap in policy.caps
    ]
    reasons: list[str] = list(unconsented)
    untils: list[date] = []
    broken: list[str] = [CONSENT] if refusal else []
    for c in caps:
        if c.blocks:
            reasons.append(cap_words(c.cap, c.count))
            broken.append(c.cap.id)
            if c.until:
                untils.append(c.until)
    rest_until: date | None = None
    resting = False
    if policy.rest_days:
        dates = [a.requested_date for a in contact_asks if a.requested_date is not None]
        if dates:
            last = max(dates)
            rest_until = last + timedelta(days=policy.rest_days)
            resting = rest_until > today
            if resting:
                reasons.append(
                    f"rest period after the ask on {last.isoformat()} ({policy.rest_days} days)"
                )
                broken.append("rest_period")
                untils.append(rest_until)
    fatigued = resting or any(c.binding for c in caps)
    status = Status.FATIGUED.value if fatigued else Status.ELIGIBLE.value
    allowed = not broken
    return Decision(
        allowed,
        status,
        reasons or ([] if allowed else [status]),
        today if allowed else (max(untils) if untils and not refusal else None),
        caps,
        rest_until,
        broken,
    )
