"""Coverage: Eligible advocates per region, segment, industry and any mapped field, vs targets.

A field is looked up in the Salesforce mapping of accounts, then of contacts: a canonical
column (``region``) is read from its column, an admin-mapped extra field (``employees``) from
the row's ``extra`` JSON. ``accounts.X`` or ``contacts.X`` picks the entity explicitly.
Targets come from ``report.coverage_targets`` in the settings; a value named in a target shows
up even when no contact has it (that is the gap a program manager needs to see first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from canonical.errors import ConfigError
from canonical.model import CANONICAL_FIELDS, Entity, Status
from sync_service.mapping import Mappings
from sync_service.report.sql import contact_verdicts, extra_field, is_contact, text_of
from sync_service.report.tables import NOT_SET, Figure, Section, Table, cols
from sync_service.settings import CoverageTarget
from sync_service.store.models import CANONICAL_TABLES, evaluations

#: The fields every report covers; ``--by`` adds more.
DEFAULT_FIELDS: tuple[str, ...] = ("region", "segment", "industry")
_ENTITIES = {"accounts": Entity.ACCOUNT, "contacts": Entity.CONTACT}


@dataclass(frozen=True)
class GroupField:
    """A field to count Eligible advocates by: its name, entity, and whether it is extra."""

    name: str
    entity: Entity
    extra: bool = False

    def expression(self) -> Any:
        """The SQL expression of the field's value, as text."""
        table = CANONICAL_TABLES[self.entity]
        if self.extra:
            return extra_field(table, self.name)
        return text_of(table.c[self.name])


def resolve_field(spec: str, mappings: Mappings | None) -> GroupField:
    """Find ``spec`` (``industry``, ``employees``, ``contacts.title``) in the mapping.

    Raises:
        ConfigError: the field is neither a canonical nor a mapped extra field of Salesforce
            accounts or contacts (exit 2); the message lists the fields there are.
    """
    entity_name, _, name = spec.rpartition(".")
    if entity_name and entity_name not in _ENTITIES:
        msg = f"--by {spec}: '{entity_name}' is not accounts or contacts"
        raise ConfigError(msg)
    wanted = [_ENTITIES[entity_name]] if entity_name else [Entity.ACCOUNT, Entity.CONTACT]
    known: list[str] = []
    for entity in wanted:
        extras: set[str] = set()
        source = mappings.salesforce if mappings else None
        if source is not None and entity in source.entities:
            extras = {f.name for f in source.entities[entity].extra_fields}
        columns = set(CANONICAL_FIELDS[entity]) - {"email"}  # never group people by email
        if name in columns:
            return GroupField(name, entity)
        if name in extras:
            return GroupField(name, entity, extra=True)
        known += [f"{entity.value}.{n}" for n in sorted(columns | extras)]
    msg = f"--by {spec}: no such mapped field; choose one of {', '.join(known)}"
    raise ConfigError(msg)


def _counts(conn: sa.Connection, fields: list[GroupField]) -> list[tuple[Any, ...]]:
    e = evaluations
    values = [f.expression().label(f"f{i}") for i, f in enumerate(fields)]
    eligible = sa.func.sum(sa.case((e.c.status == Status.ELIGIBLE, 1), else_=0))
    return list(
        conn.execute(
            sa.select(*values, eligible, sa.func.count())
            .select_from(contact_verdicts())
            .where(is_contact())
            .group_by(*values)
        ).all()
    )


def coverage_rows(
    field: str,
    counts: Mapping[str, tuple[int, int]],
    target: CoverageTarget | None,
) -> list[tuple[Any, ...]]:
    """One field's rows ``(field, value, eligible, contacts, target, gap)``, gaps first."""
    values = dict(counts)
    if target is not None:
        for value in target.values:
            values.setdefault(value, (0, 0))
    rows: list[tuple[Any, ...]] = []
    for value, (eligible, total) in values.items():
        goal = None
        if target is not None:
            goal = target.values.get(value, target.at_least)
        gap = max(0, goal - eligible) if goal is not None else None
        rows.append((field, value, eligible, total, goal, gap))
    # Gaps first (the largest first); then the rest by Eligible count, largest first.
    rows.sort(key=lambda r: (-(r[5] or 0), -r[2], str(r[1])))
    return rows


def coverage_section(
    conn: sa.Connection,
    fields: Iterable[GroupField],
    targets: Mapping[str, CoverageTarget],
) -> Section:
    """Eligible advocates and all evaluated contacts per value of each field, against targets."""
    fields = list(fields)
    canonical = [f for f in fields if f.name in DEFAULT_FIELDS and f.entity is Entity.ACCOUNT]
    others = [f for f in fields if f not in canonical]
    per_field: dict[str, dict[str, tuple[int, int]]] = {f.name: {} for f in fields}
    # The three default fields in one grouped scan; each --by field in its own.
    groups = [canonical] if canonical else []
    groups += [[f] for f in others]
    for group in groups:
        for row in _counts(conn, group):
            *values, eligible, total = row
            for f, value in zip(group, values, strict=True):
                key = NOT_SET if value is None or value == "" else str(value)
                have = per_field[f.name].get(key, (0, 0))
                per_field[f.name][key] = (have[0] + int(eligible or 0), have[1] + int(total))
    table = Table(
        "coverage",
        "Eligible advocates per value, against the targets (gaps first)",
        cols(
            ("field", "Field"),
            ("value", "Value"),
            ("eligible", "Eligible", "count"),
            ("contacts", "Contacts", "count"),
            ("target", "Target", "count"),
            ("gap", "Short by", "count"),
        ),
    )
    for f in fields:
        table.rows += coverage_rows(f.name, per_field[f.name], targets.get(f.name))
    gaps = [r for r in table.rows if r[5]]
    return Section(
        "coverage",
        "Coverage",
        "Eligible advocates by region, segment and industry"
        + (" and " + ", ".join(f.name for f in others) if others else "")
        + ", against the targets in the settings (report.coverage_targets). Values short of "
        "their target come first.",
        figures=[
            Figure("gaps", "values short of their target", len(gaps)),
            Figure("short_by", "Eligible advocates missing", sum(r[5] for r in gaps)),
        ],
        tables=[table],
    )
