"""Consent per activity: which ask types a contact's consent allows.

The policy's ``consent.requires`` maps each ask type to the consent type it needs (a value of
the contact's consent multi-select, default ``Reference_Consent_Types__c``). The evaluation
writes the allowed types back (``available_for``); the ``check`` command and the Ask API call
:func:`consent_refusal` before an ask is made.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.engine import MULTI_SELECT_SEP
from rules.policy import Policy


def consent_set(consent_types: str | Iterable[str] | None) -> set[str]:
    """The consent types of a multi-select value ('A;B') or a list, lower-cased for matching."""
    if consent_types is None:
        return set()
    items = (
        consent_types.split(MULTI_SELECT_SEP) if isinstance(consent_types, str) else consent_types
    )
    return {i.strip().lower() for i in items if i and i.strip()}


def allowed_ask_types(policy: Policy, consent_types: str | Iterable[str] | None) -> list[str]:
    """The ask types (policy order) whose consent is among ``consent_types``.

    Empty when the policy has no consent section (then :func:`consent_refusal` allows every
    type: consent is the single opt-in rule).
    """
    given = consent_set(consent_types)
    return [t for t, needs in policy.consent_requires.items() if needs.lower() in given]


def consent_refusal(
    policy: Policy, ask_type: str, consent_types: str | Iterable[str] | None
) -> str | None:
    """Why ``ask_type`` may not be asked of a contact with ``consent_types``; None if it may.

    Ask types are matched without regard to case. An ask type the consent section does not
    list is refused when the policy has a consent section (nobody consented to it), and
    allowed when the policy has none (consent is then the single opt-in rule).
    """
    requires = {k.lower(): (k, v) for k, v in policy.consent_requires.items()}
    if not requires:
        return None
    known_type = requires.get(ask_type.lower())
    if known_type is None:
        known = ", ".join(policy.consent_requires)
        return f"No consent type covers '{ask_type}' asks (the policy knows {known})"
    name, needs = known_type
    if needs.lower() in consent_set(consent_types):
        return None
    return f"No consent for {needs} (needed for a {name} ask)"
