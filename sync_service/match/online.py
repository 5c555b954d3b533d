"""``validate --online`` for the matching rules: the account fields the terms read exist in the CRM.

A term names a canonical account field or a mapped ``extra``; the mapping says which Salesforce
field feeds it, and the org's describe of that object says whether the field exists. The
suggestions field itself is a ``writeback`` entry of the mapping, checked (updateable) with the
other writeback fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from canonical.model import Entity
from sync_service.mapping import SourceMapping
from sync_service.match.config import MatchingRules, term_fields


def check_online(
    rules: MatchingRules,
    source: SourceMapping,
    describe: Callable[[str], Mapping[str, Any]],
) -> list[str]:
    """Problems: a term whose account field is not mapped, or whose CRM field is missing."""
    problems: list[str] = []
    accounts = source.entities.get(Entity.ACCOUNT)
    if accounts is None:
        return [f"{rules.path}: terms: the account entity is not mapped in {source.path}"]
    crm_of = {f.name: f.crm_field for f in (*accounts.fields, *accounts.extra_fields)}
    described = describe(accounts.object_name)
    names = {n.lower() for n in described}
    for name in term_fields(rules):
        crm = crm_of.get(name)
        where = rules.where(name)
        if crm is None:
            problems.append(
                f"{where}: '{name}' is not mapped on {accounts.object_name} in {source.path}; "
                "map it (fields: or extra:) or remove the term"
            )
        elif crm.lower() not in names:
            problems.append(
                f"{where}: '{name}' reads {accounts.object_name}.{crm}, which the org does not "
                "have (or the integration user cannot see)"
            )
    return problems
