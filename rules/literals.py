"""The picklist values a policy names: cap filters and literals compared with picklist features.

``validate --online`` checks each against the CRM's picklist values and ``validate`` against
the values the store holds, so a misspelt ``Refrence Call`` is caught instead of silently
matching nothing. This module only finds them (with ``file:line:col``); the checks live with
the mappings, which know which CRM field feeds which canonical one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from canonical.errors import PolicyError
from canonical.model import Entity
from canonical.yaml import parse_yaml
from rules.policy import Policy

#: Cap filters and the ask column each is matched against (without regard to case).
CAP_FILTERS: dict[str, str] = {"ask_types": "ask_type", "teams": "team", "statuses": "status"}

#: Features that are a canonical picklist field as it is (no count, no derivation).
PICKLIST_FEATURES: dict[str, tuple[Entity, str]] = {
    "industry": (Entity.ACCOUNT, "industry"),
    "region": (Entity.ACCOUNT, "region"),
    "segment": (Entity.ACCOUNT, "segment"),
    "account_type": (Entity.ACCOUNT, "account_type"),
    "renewal_risk": (Entity.OPPORTUNITY, "renewal_risk"),
    "opt_in_source": (Entity.CONTACT, "opt_in_source"),
}

_QUOTED = r"'(?:[^']|'')*'"
_COMPARISON = re.compile(
    rf"\b(?P<feature>[a-z_][a-z0-9_]*)\s*(?:(?:=|==)\s*(?P<one>{_QUOTED})"
    rf"|(?:NOT\s+)?IN\s*\((?P<many>\s*{_QUOTED}(?:\s*,\s*{_QUOTED})*)\s*\))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PolicyLiteral:
    """A value the policy expects some store column to hold."""

    where: str
    label: str
    entity: Entity
    field: str
    value: str
    #: Caps match without regard to case; a condition's ``=`` / ``IN`` does not.
    any_case: bool


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def policy_literals(policy: Policy) -> list[PolicyLiteral]:
    """Every cap filter value and every ``=`` / ``IN`` literal on a picklist feature."""
    doc = parse_yaml(policy.source_text, policy.path, PolicyError)
    out: list[PolicyLiteral] = []
    for i, cap in enumerate(policy.caps):
        for key, column in CAP_FILTERS.items():
            for j, value in enumerate(getattr(cap, key) or []):
                out.append(
                    PolicyLiteral(
                        doc.where(("fatigue", "caps", i, key, j)),
                        f"fatigue.caps[{i}] ({cap.id}).{key}",
                        Entity.ASK,
                        column,
                        value,
                        any_case=True,
                    )
                )
    for kind in ("opt_out", "eligibility", "suspension"):
        for i, rule in enumerate(getattr(policy.model, kind)):
            for m in _COMPARISON.finditer(rule.when):
                target = PICKLIST_FEATURES.get(m.group("feature").lower())
                if target is None:
                    continue
                values = [m.group("one")] if m.group("one") else _split(m.group("many"))
                for value in values:
                    out.append(
                        PolicyLiteral(
                            doc.where((kind, i, "when")),
                            f"{kind}[{i}] ({rule.id}).when",
                            target[0],
                            target[1],
                            _unquote(value),
                            any_case=False,
                        )
                    )
    return out


def _split(many: str) -> list[str]:
    return re.findall(_QUOTED, many)
