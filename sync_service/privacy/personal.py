"""Which stored values are personal data, decided per table and column.

Kept everywhere: ids and keys (``source``, ``id``, ``*_id`` links), because counts, joins and the
writeback need them and an id alone names a CRM record, not a person to whoever reads the
store; figures that aggregates need (NPS score and date, ask type, team, status and date,
ticket fields); the CRM's current values of the service's own result fields (``extra['_crm']``).

Emptied on an erased person's rows and on rows deleted in the CRM past retention:

==================  ====================================================================
table               personal columns (set to NULL unless noted)
==================  ====================================================================
contacts            email, first_name, last_name, title, opt_in_date, opt_in_source,
                    consent_types;
                    every ``extra`` field but ``_crm``; an erasure also sets
                    opted_in = false, opted_out = true
nps_responses       email; every ``extra`` field (comments) but ``_crm``
advocacy_asks       every ``extra`` field but ``_crm`` (admin-mapped notes)
tickets             every ``extra`` field but ``_crm`` (admin-mapped subjects)
==================  ====================================================================

The service tables are handled by :mod:`~sync_service.privacy.forget`: the erased person's
evaluation reasons and history reasons, open outbox rows and CRM error texts, quarantined
payloads and run error texts that name them. ``accounts`` and ``opportunities`` hold company
data, not a person's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical.model import Entity
from sync_service.store.models import CANONICAL_TABLES, ERASED_KEY

#: ``extra`` keys a stripped row keeps: the CRM's current values of the service's own fields,
#: and the erasure mark.
KEPT_EXTRA: tuple[str, ...] = ("_crm", ERASED_KEY)

#: Columns emptied per canonical table (extra is handled apart).
PERSONAL_COLUMNS: dict[Entity, tuple[str, ...]] = {
    Entity.CONTACT: (
        "email",
        "first_name",
        "last_name",
        "title",
        "opt_in_date",
        "opt_in_source",
        "consent_types",
    ),
    Entity.NPS_RESPONSE: ("email",),
    Entity.ASK: (),
    Entity.TICKET: (),
}

#: What an erasure sets besides emptying: the person is opted out from then on.
ERASED_VALUES: dict[Entity, dict[str, Any]] = {
    Entity.CONTACT: {"opted_in": False, "opted_out": True},
}


def stripped_extra(extra: Any, *, erased: bool) -> dict[str, Any]:
    """``extra`` without its personal fields; marked as erased when ``erased``."""
    out = {k: v for k, v in extra.items() if k in KEPT_EXTRA} if isinstance(extra, dict) else {}
    if erased:
        out[ERASED_KEY] = True
    return out


def strip_row(entity: Entity, row: dict[str, Any], *, erased: bool) -> None:
    """Empty the personal values of a canonical ``row`` in place (ids and figures stay)."""
    for column in PERSONAL_COLUMNS.get(entity, ()):
        if column in row:
            row[column] = None
    if erased:
        row.update(ERASED_VALUES.get(entity, {}))
    row["extra"] = stripped_extra(row.get("extra"), erased=erased)


def personal_values(entity: Entity, *, erased: bool) -> dict[str, Any]:
    """The column values an UPDATE sets to strip rows of ``entity`` (extra apart)."""
    values: dict[str, Any] = dict.fromkeys(PERSONAL_COLUMNS.get(entity, ()))
    if erased:
        values.update(ERASED_VALUES.get(entity, {}))
    return values


def strip_where(conn: Connection, entity: Entity, where: Any, *, erased: bool) -> int:
    """Strip the stored rows of ``entity`` that ``where`` selects; return how many.

    ``extra`` is rewritten per row (only the kept keys stay), so the rows are read first;
    callers pass a bounded selection (one person, or one chunk of rows past retention).
    """
    table = CANONICAL_TABLES[entity]
    rows = conn.execute(sa.select(table.c.source, table.c.id, table.c.extra).where(where)).all()
    if not rows:
        return 0
    stmt = (
        table.update()
        .where(table.c.source == sa.bindparam("k_source"), table.c.id == sa.bindparam("k_id"))
        .values(**personal_values(entity, erased=erased), extra=sa.bindparam("new_extra"))
    )
    conn.execute(
        stmt,
        [
            {
                "k_source": r.source,
                "k_id": r.id,
                "new_extra": stripped_extra(r.extra, erased=erased),
            }
            for r in rows
        ],
    )
    return len(rows)
