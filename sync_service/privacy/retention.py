"""Retention: personal data is kept no longer than the service needs it.

Run by the daily housekeeping (:mod:`sync_service.ops.housekeeping`, after reconciliation):

* **Deleted in the CRM.** The first time a row of ``contacts``, ``nps_responses``,
  ``advocacy_asks`` or ``tickets`` is seen deleted (soft delete, hard delete found by
  reconciliation, merge loser), the day is noted in ``privacy_deleted_seen``; after
  ``privacy.deleted_days`` (default 30) its personal data is stripped (see
  :mod:`~sync_service.privacy.personal`). The row itself stays (suppress, never delete:
  counts and history still add up). A record restored in the CRM before then loses its note.
* **Free text.** With ``privacy.free_text_days`` set, the ``privacy.free_text_fields`` extra
  fields (NPS comments by default) are removed from rows whose CRM timestamp is older.

The ingest applies the same two rules to rows it reads (:class:`~sync_service.privacy.
tombstones.Scrubber`), so a full re-read does not bring back what retention removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.model import Entity
from sync_service.privacy.personal import PERSONAL_COLUMNS, strip_where
from sync_service.settings import PrivacySettings
from sync_service.store.models import CANONICAL_TABLES, privacy_deleted_seen

#: Rows stripped per statement batch (each row's extra is rewritten from Python).
CHUNK = 1000


@dataclass
class RetentionResult:
    """What one retention pass did, per table."""

    noted: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)
    purged: dict[str, int] = field(default_factory=dict)
    free_text: dict[str, int] = field(default_factory=dict)

    def as_counts(self) -> dict[str, int]:
        """Non-zero figures for ``run.counts``: ``retention.purged.contacts``, ..."""
        out: dict[str, int] = {}
        for kind in ("noted", "restored", "purged", "free_text"):
            for table, n in getattr(self, kind).items():
                if n:
                    out[f"retention.{kind}.{table}"] = n
        return out


def apply_retention(engine: Engine, settings: PrivacySettings, now: datetime) -> RetentionResult:
    """Note newly deleted rows, purge those past ``deleted_days``, drop old free text."""
    result = RetentionResult()
    cutoff = now - timedelta(days=settings.deleted_days)
    for entity in PERSONAL_COLUMNS:
        name = CANONICAL_TABLES[entity].name
        with engine.begin() as conn:
            result.noted[name], result.restored[name] = _note_deleted(conn, entity, now)
        result.purged[name] = _purge_deleted(engine, entity, cutoff, now)
    if settings.free_text_days:
        text_cutoff = now - timedelta(days=settings.free_text_days)
        for table_name, fields in settings.free_text_fields.items():
            if fields:
                result.free_text[table_name] = _drop_free_text(
                    engine, Entity(table_name), tuple(fields), text_cutoff
                )
    return result


def _seen_of(table: sa.Table) -> Any:
    s = privacy_deleted_seen
    return sa.and_(s.c.table_name == table.name, s.c.source == table.c.source, s.c.id == table.c.id)


def _note_deleted(conn: Connection, entity: Entity, now: datetime) -> tuple[int, int]:
    table = CANONICAL_TABLES[entity]
    s = privacy_deleted_seen
    noted = conn.execute(
        s.insert()
        .from_select(
            ["table_name", "source", "id", "seen_at"],
            sa.select(
                sa.literal(table.name, sa.String()),
                table.c.source,
                table.c.id,
                sa.literal(now, s.c.seen_at.type),
            ).where(table.c.deleted.is_(True), ~sa.exists().where(_seen_of(table))),
        )
        # an INSERT ... SELECT's rowcount is -1 on psycopg: count what it returns
        .returning(s.c.id)
    ).all()
    live = sa.exists().where(
        table.c.source == s.c.source, table.c.id == s.c.id, table.c.deleted.is_(False)
    )
    restored = conn.execute(s.delete().where(s.c.table_name == table.name, live)).rowcount
    return len(noted), int(restored or 0)


def _purge_deleted(engine: Engine, entity: Entity, cutoff: datetime, now: datetime) -> int:
    table = CANONICAL_TABLES[entity]
    s = privacy_deleted_seen
    due = sa.and_(s.c.table_name == table.name, s.c.purged_at.is_(None), s.c.seen_at <= cutoff)
    purged = 0
    while True:
        with engine.begin() as conn:
            keys = conn.execute(sa.select(s.c.source, s.c.id).where(due).limit(CHUNK)).all()
            if not keys:
                return purged
            pairs = [(k.source, k.id) for k in keys]
            purged += strip_where(
                conn,
                entity,
                sa.and_(
                    sa.tuple_(table.c.source, table.c.id).in_(pairs), table.c.deleted.is_(True)
                ),
                erased=False,
            )
            conn.execute(
                s.update()
                .where(s.c.table_name == table.name, sa.tuple_(s.c.source, s.c.id).in_(pairs))
                .values(purged_at=now)
            )


def _drop_free_text(
    engine: Engine, entity: Entity, fields: tuple[str, ...], cutoff: datetime
) -> int:
    table = CANONICAL_TABLES[entity]
    stamp = sa.func.coalesce(table.c.source_updated_at, table.c.synced_at)
    has_text = sa.or_(*(table.c.extra[f].is_not(None) for f in fields))
    changed = 0
    last: tuple[str, str] = ("", "")
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(table.c.source, table.c.id, table.c.extra)
                .where(stamp < cutoff, table.c.extra.is_not(None), has_text)
                .where(sa.tuple_(table.c.source, table.c.id) > sa.tuple_(*last))
                .order_by(table.c.source, table.c.id)
                .limit(CHUNK)
            ).all()
            if not rows:
                return changed
            last = (rows[-1].source, rows[-1].id)
            todo = [
                {"k_source": r.source, "k_id": r.id, "new_extra": _without(r.extra, fields)}
                for r in rows
                if isinstance(r.extra, dict) and any(r.extra.get(f) is not None for f in fields)
            ]
            if todo:
                conn.execute(
                    table.update()
                    .where(
                        table.c.source == sa.bindparam("k_source"),
                        table.c.id == sa.bindparam("k_id"),
                    )
                    .values(extra=sa.bindparam("new_extra")),
                    todo,
                )
            changed += len(todo)


def _without(extra: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k not in fields}
