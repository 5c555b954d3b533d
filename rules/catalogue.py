"""The features the rule language knows: names, types and what each one means.

A policy declares the features it uses (``name: type``); each must be one of these, match one
of the parameterised patterns, or be an admin-mapped ``extra`` field. The feature queries in
the service compute exactly what a policy declares, so the vocabulary lives here, beside the
language, and the store side implements it.

Day counts are whole days between the run's ``today`` (``now`` in the policy's time zone) and a
date; they are computed once per run, so ``nps_age_days <= 365`` needs no clock function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from canonical.model import FieldType

Level = Literal["contact", "account"]


@dataclass(frozen=True)
class FeatureInfo:
    """A feature: its type, whether it is the contact's or its account's, a line of help."""

    type: FieldType
    level: Level
    help: str


#: The fixed features. Account-level ones are the same for every contact of an account.
BUILTIN_FEATURES: dict[str, FeatureInfo] = {
    "opted_in": FeatureInfo("boolean", "contact", "the contact opted in to advocacy"),
    "opted_out": FeatureInfo("boolean", "contact", "explicit no: consent withdrawn / set to no"),
    "opt_in_date": FeatureInfo("date", "contact", "when the contact opted in"),
    "opt_in_age_days": FeatureInfo("integer", "contact", "days since the contact opted in"),
    "opt_in_source": FeatureInfo("string", "contact", "where the consent was recorded"),
    "consent_types": FeatureInfo(
        "string", "contact", "the activities consented to, ';'-separated (a multi-select)"
    ),
    "nps_latest": FeatureInfo("integer", "contact", "the contact's latest NPS score (0-10)"),
    "nps_latest_date": FeatureInfo("date", "contact", "date (UTC) of the latest NPS response"),
    "nps_age_days": FeatureInfo("integer", "contact", "days since the latest NPS response"),
    "nps_previous": FeatureInfo("integer", "contact", "the NPS score before the latest"),
    "nps_trend": FeatureInfo("integer", "contact", "latest minus previous NPS score"),
    "nps_responses": FeatureInfo("integer", "contact", "number of NPS responses"),
    "last_ask_date": FeatureInfo("date", "contact", "date of the contact's latest ask"),
    "days_since_last_ask": FeatureInfo("integer", "contact", "days since the latest ask"),
    "asks_pending": FeatureInfo(
        "integer", "contact", "asks of the contact still open (not declined, completed, cancelled)"
    ),
    "account_nps_latest": FeatureInfo("integer", "account", "latest NPS score on the account"),
    "open_tickets": FeatureInfo("integer", "account", "open support tickets"),
    "open_escalations": FeatureInfo("integer", "account", "open escalated tickets"),
    "oldest_open_escalation_date": FeatureInfo(
        "date", "account", "opening date of the oldest open escalation"
    ),
    "has_open_renewal": FeatureInfo("boolean", "account", "an open renewal opportunity exists"),
    "renewal_risk": FeatureInfo("string", "account", "risk of the next open renewal"),
    "renewal_close_date": FeatureInfo("date", "account", "close date of the next open renewal"),
    "customer_since": FeatureInfo("date", "account", "start of the customer relationship"),
    "tenure_days": FeatureInfo("integer", "account", "days since customer_since"),
    "health_score": FeatureInfo("number", "account", "health score (Gainsight, else Salesforce)"),
    "payment_overdue": FeatureInfo("boolean", "account", "a payment is overdue"),
    "churn_risk": FeatureInfo("boolean", "account", "a churn signal is raised"),
    "industry": FeatureInfo("string", "account", "account industry"),
    "region": FeatureInfo("string", "account", "account region"),
    "segment": FeatureInfo("string", "account", "account segment"),
    "account_type": FeatureInfo("string", "account", "account type"),
}

#: Parameterised features: a regex and the feature it describes. ``<p>`` is a ticket priority
#: normalised to lower case with non-alphanumerics as ``_`` ('P1' -> p1, 'Very High' -> very_high).
PATTERN_FEATURES: list[tuple[re.Pattern[str], FeatureInfo]] = [
    (
        re.compile(r"^open_tickets_(?P<priority>[a-z0-9_]+)$"),
        FeatureInfo("integer", "account", "open tickets of priority <p>"),
    ),
    (
        re.compile(r"^oldest_open_(?P<priority>[a-z0-9_]+)_days$"),
        FeatureInfo("integer", "account", "age in days of the oldest open ticket of priority <p>"),
    ),
    (
        re.compile(r"^oldest_open_(?P<priority>[a-z0-9_]+)_date$"),
        FeatureInfo("date", "account", "opening date of the oldest open ticket of priority <p>"),
    ),
    (
        re.compile(r"^tickets_last_(?P<days>[1-9][0-9]{0,4})d$"),
        FeatureInfo("integer", "account", "tickets opened in the last <N> days"),
    ),
    (
        re.compile(r"^asks_last_(?P<days>[1-9][0-9]{0,4})d$"),
        FeatureInfo("integer", "contact", "asks of the contact in the last <N> days"),
    ),
    (
        re.compile(r"^account_asks_last_(?P<days>[1-9][0-9]{0,4})d$"),
        FeatureInfo("integer", "account", "asks on the account in the last <N> days"),
    ),
    (
        re.compile(r"^declines_last_(?P<days>[1-9][0-9]{0,4})d$"),
        FeatureInfo("integer", "contact", "asks the contact declined in the last <N> days"),
    ),
    (
        re.compile(r"^completed_last_(?P<days>[1-9][0-9]{0,4})d$"),
        FeatureInfo("integer", "contact", "asks the contact completed in the last <N> days"),
    ),
    (
        re.compile(r"^consent_(?P<consent>[a-z0-9_]+)$"),
        FeatureInfo("boolean", "contact", "the contact consented to activity <type> (slugged)"),
    ),
]

#: Ask statuses (lower case) that mean the ask is over: it no longer waits for an answer.
CLOSED_ASK_STATUSES = ("declined", "completed", "cancelled", "canceled")
#: The ask status counted by ``declines_last_<N>d`` and the one by ``completed_last_<N>d``.
DECLINED = "declined"
COMPLETED = "completed"


def slug(value: str) -> str:
    """A picklist value as a feature-name part: 'Beta/Advisory' -> 'beta_advisory'."""
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


def consent_feature(consent_type: str) -> str:
    """The feature saying whether a contact consented to ``consent_type`` ('consent_<slug>')."""
    return f"consent_{slug(consent_type)}"


#: Day counts from ``today`` and the date each counts from. Their values change every day, so a
#: reason naming one would rewrite the CRM field daily: reasons name the date instead.
DAY_COUNT_DATES: dict[str, str] = {
    "opt_in_age_days": "opt_in_date",
    "nps_age_days": "nps_latest_date",
    "days_since_last_ask": "last_ask_date",
    "tenure_days": "customer_since",
}
_OLDEST_OPEN_DAYS = re.compile(r"^oldest_open_(?P<priority>[a-z0-9_]+)_days$")


def day_count_date(name: str) -> str | None:
    """The date feature a day-count feature counts from, or None when ``name`` is no day count.

    ``nps_age_days`` -> ``nps_latest_date``; ``oldest_open_p1_days`` -> ``oldest_open_p1_date``.
    """
    if name in DAY_COUNT_DATES:
        return DAY_COUNT_DATES[name]
    m = _OLDEST_OPEN_DAYS.match(name)
    return f"oldest_open_{m.group('priority')}_date" if m else None


#: Columns every features frame has, whatever the policy declares.
KEY_COLUMNS: dict[str, FieldType] = {"contact_id": "string", "account_id": "string"}


def lookup(name: str) -> FeatureInfo | None:
    """The catalogue entry for ``name`` (built-in or pattern), or None when it is unknown."""
    if name in BUILTIN_FEATURES:
        return BUILTIN_FEATURES[name]
    for pattern, info in PATTERN_FEATURES:
        if pattern.match(name):
            return info
    return None


def pattern_params(name: str) -> dict[str, str]:
    """The parameters of a parameterised feature name (empty for a fixed one)."""
    if name in BUILTIN_FEATURES:  # oldest_open_escalation_date is not priority 'escalation'
        return {}
    for pattern, _info in PATTERN_FEATURES:
        m = pattern.match(name)
        if m:
            return m.groupdict()
    return {}


def known_names() -> list[str]:
    """Every fixed feature name plus an example of each pattern, for "did you mean"."""
    return [
        *BUILTIN_FEATURES,
        "open_tickets_p1",
        "oldest_open_p1_days",
        "oldest_open_p1_date",
        "tickets_last_30d",
        "asks_last_90d",
        "account_asks_last_90d",
        "declines_last_60d",
        "completed_last_365d",
        "consent_reference_call",
    ]
