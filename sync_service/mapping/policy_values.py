"""The policy's picklist literals checked against the org (online) and the store (offline).

A cap's ``ask_types: [Refrence Call]`` or a rule's ``renewal_risk IN ('Hgh')`` matches nothing
and says nothing. :func:`check_online` compares each literal (found by
:func:`rules.literals.policy_literals`) with the picklist values of the CRM field the mappings
feed it from: a value the picklist lacks is a problem, with a did-you-mean and the policy's
``file:line:col``. :func:`check_stored` warns, offline, about a literal no stored row has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical.errors import FatalApiError
from canonical.yaml import did_you_mean
from rules.literals import PolicyLiteral
from sync_service.mapping.model import SourceMapping
from sync_service.store.models import CANONICAL_TABLES

#: ``describe(object_name)`` -> fields by API name (see ``mapping.online.Describe``).
Describe = Callable[[str], Mapping[str, Any]]

_PICKLISTS = {"picklist", "multipicklist", "combobox"}


def _picklist(
    source: SourceMapping, lit: PolicyLiteral, describe: Describe, cache: dict[str, Any]
) -> tuple[str, list[str]] | None:
    """The CRM field feeding the literal's column and its values (None: nothing to check)."""
    em = source.entities.get(lit.entity)
    if em is None:
        return None
    mapped = next((f for f in em.fields if f.name == lit.field), None)
    if mapped is None or mapped.has_map:  # a value map translates: the CRM's values differ
        return None
    if em.object_name not in cache:
        try:
            cache[em.object_name] = describe(em.object_name)
        except (FatalApiError, KeyError):
            cache[em.object_name] = {}  # the mapping check reports the object
    info = cache[em.object_name].get(mapped.crm_field)
    if info is None or str(info.type).lower() not in _PICKLISTS or not info.picklist_values:
        return None
    return f"{em.object_name}.{mapped.crm_field}", [str(v) for v in info.picklist_values]


def check_online(
    literals: list[PolicyLiteral], source: SourceMapping, describe: Describe
) -> list[str]:
    """One problem per literal that is not a value of its CRM picklist."""
    problems: list[str] = []
    cache: dict[str, Any] = {}
    for lit in literals:
        found = _picklist(source, lit, describe, cache)
        if found is None:
            continue
        field, values = found
        have = {v.lower() for v in values} if lit.any_case else set(values)
        if (lit.value.lower() if lit.any_case else lit.value) in have:
            continue
        hint = did_you_mean(lit.value, values, f"; its values: {', '.join(values[:12])}")
        problems.append(f"{lit.where}: {lit.label}: '{lit.value}' is not a value of {field}{hint}")
    return problems


def check_stored(literals: list[PolicyLiteral], conn: Connection) -> list[str]:
    """One warning per literal that no live stored row holds (tables with no rows: skipped)."""
    warnings: list[str] = []
    seen: dict[tuple[str, str], set[str]] = {}
    for lit in literals:
        key = (lit.entity.value, lit.field)
        if key not in seen:
            t = CANONICAL_TABLES[lit.entity]
            col = t.c[lit.field]
            rows = conn.execute(sa.select(col).where(t.c.deleted == sa.false()).distinct())
            seen[key] = {str(v) for (v,) in rows if v is not None}
        stored = seen[key]
        if not stored:
            continue
        have = {v.lower() for v in stored} if lit.any_case else stored
        if (lit.value.lower() if lit.any_case else lit.value) not in have:
            hint = did_you_mean(lit.value, sorted(stored))
            warnings.append(
                f"{lit.where}: {lit.label}: no stored {lit.entity.value} row has "
                f"{lit.field} '{lit.value}'{hint}"
            )
    return warnings
