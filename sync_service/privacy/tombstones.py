"""Tombstones: keyed hashes of an erased person's ids and e-mails, and the ingest's scrubber.

A sync reads whole objects, so the CRM keeps handing the service an erased person's record
while it still holds it. The :class:`Scrubber` stands between the mapping and the store: each
batch's rows are checked against the tombstones (loaded once per run into a set, so a batch
costs a keyed hash per id and e-mail and a set lookup each, never a query), and a row that
names an erased person is stored stripped (see :mod:`~sync_service.privacy.personal`): its ids
and figures stay, so counts stay right, its personal values never reach the store.

The same scrubber applies retention at the door (see :class:`Scrubber`). A row recognised by
e-mail alone (a duplicate contact created in the CRM after the erasure)
gets its own id tombstoned in the same transaction, so it stays recognised if its e-mail
changes later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.model import Entity, System
from sync_service.privacy.keys import KeyedHasher
from sync_service.privacy.personal import strip_row
from sync_service.settings import PrivacySettings
from sync_service.store.models import privacy_tombstones

#: Canonical tables whose rows can name a person, and the columns holding their ids.
_ID_COLUMNS: dict[Entity, tuple[str, ...]] = {
    Entity.CONTACT: ("id", "sf_contact_id"),
    Entity.NPS_RESPONSE: ("contact_id", "person_id"),
    Entity.ASK: ("contact_id",),
    Entity.TICKET: ("contact_id",),
}
#: Of those, the ones whose rows carry the person's e-mail.
_EMAIL_ENTITIES = frozenset({Entity.CONTACT, Entity.NPS_RESPONSE})


def tombstone_rows(
    hasher: KeyedHasher,
    *,
    ids: Iterable[str],
    emails: Iterable[str],
    contact_id: str | None,
    erasure_id: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The tombstone rows for a person's ids and e-mails (digests only)."""
    rows: dict[str, dict[str, Any]] = {}
    for kind, values, digest_of in (
        ("id", ids, hasher.of_id),
        ("email", emails, hasher.of_email),
    ):
        for value in values:
            digest = digest_of(value)
            if digest:
                rows[digest] = {
                    "digest": digest,
                    "kind": kind,
                    "contact_id": contact_id,
                    "erasure_id": erasure_id,
                    "created_at": now,
                }
    return list(rows.values())


class Tombstones:
    """The tombstones of the store, loaded once: digest -> the erased person's contact id."""

    def __init__(self, hasher: KeyedHasher, contact_of: dict[str, str | None]) -> None:
        self.hasher = hasher
        self._contact_of = contact_of

    @classmethod
    def load(cls, conn: Connection, hasher: KeyedHasher) -> Tombstones:
        """Read every tombstone (one query; there are as many as erased ids and addresses)."""
        rows = conn.execute(sa.select(privacy_tombstones.c.digest, privacy_tombstones.c.contact_id))
        return cls(hasher, {r.digest: r.contact_id for r in rows})

    def __len__(self) -> int:
        return len(self._contact_of)

    def match(self, ids: Iterable[Any], email: Any) -> tuple[bool, str | None, bool]:
        """``(erased, contact id, by id)`` for a record carrying ``ids`` and ``email``."""
        for value in dict.fromkeys(ids):  # a Salesforce contact's id and sf_contact_id agree
            digest = self.hasher.of_id(value) if isinstance(value, str) else None
            if digest is not None and digest in self._contact_of:
                return True, self._contact_of[digest], True
        digest = self.hasher.of_email(email) if isinstance(email, str) else None
        if digest is not None and digest in self._contact_of:
            return True, self._contact_of[digest], False
        return False, None, False


class Scrubber:
    """Strips rows before they are stored: erased people, and what retention already removed.

    * a row naming an erased person loses its personal data (tombstones);
    * a row deleted in the CRM longer than ``privacy.deleted_days`` ago (by its CRM timestamp)
      loses it too, so a full re-read never brings back what retention purged;
    * free-text extra fields older than ``privacy.free_text_days`` are dropped likewise.

    Called by the ingest once per batch, from its read-ahead thread; it keeps no state between
    calls beyond what it read at the start of the run.
    """

    def __init__(
        self,
        tombstones: Tombstones | None,
        now: datetime,
        *,
        deleted_cutoff: datetime | None = None,
        free_text: dict[Entity, tuple[str, ...]] | None = None,
        free_text_cutoff: datetime | None = None,
    ) -> None:
        self.tombstones = tombstones if tombstones else None
        self.now = now
        self.deleted_cutoff = deleted_cutoff
        self.free_text = free_text or {}
        self.free_text_cutoff = free_text_cutoff

    def __call__(
        self, entity: Entity, rows: list[dict[str, Any]], bad: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Strip ``rows`` (and quarantined ``bad`` records) in place, as the class says.

        Returns:
            New id tombstones to store with the batch (rows recognised by e-mail only).
        """
        if entity not in _ID_COLUMNS:
            return []
        if self.tombstones is not None:
            self._quarantined(bad)
        new: list[dict[str, Any]] = []
        texts = self.free_text.get(entity, ()) if self.free_text_cutoff else ()
        for row in rows:
            if self.tombstones is not None and self._erased(entity, row, new):
                continue
            stamp = row.get("source_updated_at") or self.now
            if row.get("deleted") and self.deleted_cutoff and stamp < self.deleted_cutoff:
                strip_row(entity, row, erased=False)
            elif texts and self.free_text_cutoff and stamp < self.free_text_cutoff:
                extra = row.get("extra")
                if isinstance(extra, dict):
                    row["extra"] = {k: v for k, v in extra.items() if k not in texts}
        return new

    def _quarantined(self, bad: list[dict[str, Any]]) -> None:
        assert self.tombstones is not None
        for record in bad:
            payload = record.get("payload") or {}
            values = [record.get("record_id"), *(v for v in payload.values() if isinstance(v, str))]
            if self.tombstones.match([v for v in values if v and len(v) <= 64], None)[0]:
                record["payload"] = None
                record["reason"] = "record of a person erased on request; its content is not kept"

    def _erased(self, entity: Entity, row: dict[str, Any], new: list[dict[str, Any]]) -> bool:
        assert self.tombstones is not None
        email = row.get("email") if entity in _EMAIL_ENTITIES else None
        erased, contact_id, by_id = self.tombstones.match(
            [row.get(c) for c in _ID_COLUMNS[entity]], email
        )
        if not erased:
            return False
        strip_row(entity, row, erased=True)
        if entity is Entity.NPS_RESPONSE and not row.get("contact_id") and contact_id:
            # Named by e-mail only: without the address the identity step could not link it,
            # so it is linked here and still counts for the person's account.
            row["contact_id"] = contact_id
        if entity is Entity.CONTACT and not by_id:
            found = contact_id or (row["id"] if row.get("source") == System.SALESFORCE else None)
            new += tombstone_rows(
                self.tombstones.hasher,
                ids=[str(row["id"])],
                emails=(),
                contact_id=found,
                erasure_id=None,
                now=self.now,
            )
        return True


def load_scrubber(
    engine: Engine, key: Callable[[], bytes], now: datetime, settings: PrivacySettings
) -> Scrubber:
    """The scrubber for one run, with the store's tombstones read once.

    ``key`` is asked only when there are tombstones, so a store nobody was ever erased from
    needs no key (and none is created for it).
    """
    tombstones = None
    with engine.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(privacy_tombstones)).scalar():
            tombstones = Tombstones.load(conn, KeyedHasher(key()))
    free_text_cutoff = (
        now - timedelta(days=settings.free_text_days) if settings.free_text_days else None
    )
    return Scrubber(
        tombstones,
        now,
        deleted_cutoff=now - timedelta(days=settings.deleted_days),
        free_text={Entity(t): tuple(f) for t, f in settings.free_text_fields.items()},
        free_text_cutoff=free_text_cutoff,
    )
