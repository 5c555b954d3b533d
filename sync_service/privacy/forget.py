"""Erase one person on request (GDPR art. 17, CCPA right to delete), and prove it was done.

:func:`forget` runs in one transaction, holding the sync stage locks so no sync writes the
person back meanwhile:

1. finds the person everywhere (:mod:`~sync_service.privacy.subject`);
2. records tombstones: keyed hashes of each of their ids and e-mails, so later syncs store
   their records stripped (:mod:`~sync_service.privacy.tombstones`);
3. strips their rows of personal data, table by table (:mod:`~sync_service.privacy.personal`):
   contacts, Gainsight people, NPS answers and comments, asks, tickets; their current verdict
   becomes Opted Out, "Erased on request"; history rows lose their reasons, the values written
   to the CRM for them keep statuses and flags but lose reasons, scores and dates; open outbox rows
   are dropped (the next writeback writes the Opted Out verdict once, if
   ``privacy.write_erased_status``), CRM error texts, quarantined payloads and run errors that
   name them are emptied;
4. writes an audit row (when, who, why, row counts per table) without the person's data: the
   subject appears only as the keyed hash of what the request named, and names, addresses and
   ids in the reason are replaced.

Ids stay, so counts stay right. On SQLite the erased values are overwritten on disk
(``secure_delete``) and the write-ahead log is emptied after the commit
(:func:`~sync_service.store.engine.checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.errors import InputError, LockBusyError
from canonical.model import ERASED_REASON, Entity, Status, System
from canonical.redaction import mask_emails
from sync_service.ops.locks import STAGE_PREFIX, job_lock
from sync_service.privacy.keys import KeyedHasher
from sync_service.privacy.personal import strip_where
from sync_service.privacy.subject import Subject, parse_request, related_ids, resolve, table_filters
from sync_service.privacy.tombstones import tombstone_rows
from sync_service.store.engine import checkpoint
from sync_service.store.models import (
    CANONICAL_TABLES,
    evaluation_history,
    evaluations,
    privacy_erasures,
    privacy_tombstones,
    quarantine,
    runs,
    writeback_outbox,
)
from sync_service.store.upsert import upsert
from sync_service.sync import changes

log = logging.getLogger(__name__)

#: Stages that write CRM records into the store: an erasure waits for none of them, it refuses.
SYNC_STAGES = (System.SALESFORCE.value, System.GAINSIGHT.value, "reconcile")
#: What replaces the person's names, addresses and ids in free text.
ERASED_TEXT = "[erased]"
_STRIPPED = (Entity.CONTACT, Entity.NPS_RESPONSE, Entity.ASK, Entity.TICKET)


@dataclass
class ErasureResult:
    """What one erasure did: its audit id and the rows changed per table (no personal data)."""

    erasure_id: int
    erased_at: datetime
    tables: dict[str, int] = field(default_factory=dict)
    tombstones: int = 0
    found: bool = False
    #: False when a reader kept the SQLite write-ahead log from being emptied at once.
    log_emptied: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the CLI and the API print)."""
        return {
            "erasure_id": self.erasure_id,
            "erased_at": self.erased_at.isoformat(),
            "found": self.found,
            "tables": self.tables,
            "tombstones": self.tombstones,
            "log_emptied": self.log_emptied,
        }


@contextmanager
def sync_paused(engine: Engine) -> Iterator[None]:
    """Hold the stage locks of every sync, or raise if one is running now.

    Raises:
        LockBusyError: a sync or reconciliation is running; try again when it has finished.
    """
    with ExitStack() as stack:
        for stage in SYNC_STAGES:
            try:
                stack.enter_context(job_lock(engine, STAGE_PREFIX + stage, close_abandoned=False))
            except LockBusyError:
                msg = (
                    f"a {stage} sync is running; erase again when it has finished "
                    "(see `sync-service status`); nothing was changed"
                )
                raise LockBusyError(msg) from None
        yield


def forget(
    engine: Engine,
    key: bytes,
    *,
    contact: str | None = None,
    email: str | None = None,
    reason: str,
    requested_by: str,
    now: datetime,
    via: str = "cli",
) -> ErasureResult:
    """Erase the person named by ``contact`` (a CRM id) or ``email`` from the store.

    A person the store does not hold yet is tombstoned all the same: they will never arrive.

    Raises:
        InputError: neither or both of ``contact`` and ``email``, a malformed one, or no reason.
        LockBusyError: a sync is running (nothing was changed).
    """
    kind, subject_key = parse_request(contact, email)
    reason = _required_reason(reason)
    hasher = KeyedHasher(key)
    with sync_paused(engine), engine.begin() as conn:
        subject = resolve(conn, kind, subject_key)
        erasure_id = int(
            conn.execute(
                privacy_erasures.insert()
                .values(
                    erased_at=now,
                    requested_by=_scrub_text(requested_by, subject)[:255],
                    reason=_scrub_text(reason, subject),
                    subject_digest=hasher.digest(kind, subject_key),
                    tables={},
                    via=via,
                )
                .returning(privacy_erasures.c.id)
            ).scalar_one()
        )
        result = ErasureResult(erasure_id, now, found=bool(subject.contact_rows))
        marks = tombstone_rows(
            hasher,
            ids=subject.ids,
            emails=subject.emails,
            contact_id=_salesforce_contact(subject),
            erasure_id=erasure_id,
            now=now,
        )
        result.tombstones = upsert(conn, privacy_tombstones, marks)
        related = related_ids(conn, subject)
        result.tables = _erase(conn, subject, related, now)
        conn.execute(
            privacy_erasures.update()
            .where(privacy_erasures.c.id == erasure_id)
            .values(tables=result.tables)
        )
    result.log_emptied = checkpoint(engine)
    log.info(
        "erasure %d: %d row(s) changed in %d table(s), %d tombstone(s)",
        erasure_id,
        sum(result.tables.values()),
        len(result.tables),
        result.tombstones,
    )
    return result


def _required_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        msg = "give the reason of the erasure (--reason), e.g. the request's ticket number"
        raise InputError(msg)
    return text


def _salesforce_contact(subject: Subject) -> str | None:
    sf = sorted(subject.sf_contact_ids)
    if sf:
        return sf[0]
    return subject.key if subject.kind == "id" and len(subject.key) == 18 else None


def _scrub_text(text: str, subject: Subject) -> str:
    """``text`` without the person's names, addresses and ids (and without any address)."""
    for term in sorted(subject.text_terms(), key=len, reverse=True):
        text = text.replace(term, ERASED_TEXT)
    return mask_emails(text)


def _erase(conn: Connection, subject: Subject, related: set[str], now: datetime) -> dict[str, int]:
    filters = table_filters(subject)
    counts: dict[str, int] = {}
    for entity in _STRIPPED:
        table = CANONICAL_TABLES[entity]
        # the person's verdict changes (Opted Out): marked for the next evaluation, same transaction
        changes.mark_where(conn, table, filters[table.name][1], now)
        counts[table.name] = strip_where(conn, entity, filters[table.name][1], erased=True)
    counts.update(_erase_service_tables(conn, subject, related, filters, now))
    return {name: n for name, n in counts.items() if n}


def _erase_service_tables(
    conn: Connection,
    subject: Subject,
    related: set[str],
    filters: dict[str, tuple[sa.Table, Any]],
    now: datetime,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    ids = sorted(subject.ids)
    ev = evaluations
    # The current verdict: the reasons and rule details described the person; the verdict is
    # now the erasure's. The history keeps who changed status when (counts), not why.
    prior = conn.execute(
        sa.select(ev.c.entity_id, ev.c.status).where(
            ev.c.entity_type == "contact", ev.c.entity_id.in_(ids)
        )
    ).all()
    counts["evaluations"] = (
        conn.execute(
            ev.update()
            .where(ev.c.entity_type == "contact", ev.c.entity_id.in_(ids))
            .values(
                status=Status.OPTED_OUT.value,
                eligible=False,
                score=None,
                reason=ERASED_REASON,
                next_available=None,
                details=None,
                evaluated_at=now,
            )
        ).rowcount
        or 0
    )
    counts["evaluation_history"] = (
        conn.execute(
            evaluation_history.update()
            .where(
                evaluation_history.c.entity_type == "contact",
                evaluation_history.c.entity_id.in_(ids),
            )
            .values(reason=None)
        ).rowcount
        or 0
    )
    changed = [(eid, old) for eid, old in prior if old != Status.OPTED_OUT.value]
    if changed:
        conn.execute(
            evaluation_history.insert(),
            [
                {
                    "entity_type": "contact",
                    "entity_id": eid,
                    "old_status": old,
                    "new_status": Status.OPTED_OUT.value,
                    "reason": ERASED_REASON,
                    "changed_at": now,
                }
                for eid, old in changed
            ],
        )
    ob = writeback_outbox
    where_ob = filters["writeback_outbox"][1]
    # An open row would write the old verdict; the next writeback enqueues the erasure's.
    dropped = conn.execute(ob.delete().where(where_ob, ob.c.state != "done")).rowcount or 0
    kept = (
        conn.execute(ob.update().where(where_ob).values(last_error=None, old_values=None)).rowcount
        or 0
    )
    counts["writeback_outbox"] = dropped + kept
    q = quarantine
    where_q = sa.or_(filters["quarantine"][1], q.c.record_id.in_(sorted(related)))
    counts["quarantine"] = (
        conn.execute(
            q.update()
            .where(where_q)
            .values(payload=None, reason="record of a person erased on request; content removed")
        ).rowcount
        or 0
    )
    counts["runs"] = _scrub_runs(conn, subject, filters["runs"][1])
    # identity marks keep a contact's e-mail before a change (here, before the strip above)
    counts["eval_marks"] = changes.forget_prior(conn, subject.emails, now)
    for name, columns in (
        ("writeback_log", ("old_value", "new_value")),
        ("writeback_state", ("value",)),
    ):
        table, where = filters[name]
        counts[name] = _keep_statuses(conn, table, columns, where)
    return counts


#: Values of the written fields an erasure keeps: the statuses and flags (the counts by status
#: stay right); reasons, scores and dates described the person and go.
_KEPT_VALUES = frozenset(s.value for s in Status)


def _keep_status(value: Any) -> Any:
    if (
        value is None
        or isinstance(value, bool)
        or (isinstance(value, str) and value in _KEPT_VALUES)
    ):
        return value
    return None


def _keep_statuses(conn: Connection, table: sa.Table, columns: tuple[str, ...], where: Any) -> int:
    """Null the values in ``columns`` of the selected rows but statuses and flags."""
    keys = [c.name for c in table.primary_key.columns]
    changed = 0
    for row in conn.execute(sa.select(table).where(where)).mappings().all():
        values = {c: _keep_status(row[c]) for c in columns}
        if values == {c: row[c] for c in columns}:
            continue
        conn.execute(table.update().where(*(table.c[k] == row[k] for k in keys)).values(**values))
        changed += 1
    return changed


def _scrub_runs(conn: Connection, subject: Subject, where: Any) -> int:
    rows = conn.execute(sa.select(runs.c.id, runs.c.error, runs.c.config_errors).where(where)).all()
    for row in rows:
        errors = row.config_errors
        if isinstance(errors, list):
            errors = [_scrub_text(str(e), subject) for e in errors]
        conn.execute(
            runs.update()
            .where(runs.c.id == row.id)
            .values(
                error=_scrub_text(row.error, subject) if row.error else None,
                config_errors=errors,
            )
        )
    return len(rows)
