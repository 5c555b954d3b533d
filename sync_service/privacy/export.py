"""A subject access request: everything the store holds about one person, as JSON.

The person is found exactly as :func:`~sync_service.privacy.forget.forget` finds them (same
queries, :mod:`~sync_service.privacy.subject`), so the export shows every row an erasure would
touch: their contact rows (Salesforce contacts, Gainsight people), NPS answers with comments,
asks, tickets, verdicts and their history, values written to the CRM for them (outbox, state,
log), quarantined records and run errors naming them, and, once erased, their erasures.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync_service.privacy.keys import KeyedHasher
from sync_service.privacy.subject import parse_request, related_ids, resolve, table_filters
from sync_service.store.models import privacy_erasures, privacy_tombstones, quarantine


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def export_subject(
    engine: Engine,
    key: Callable[[], bytes],
    *,
    contact: str | None = None,
    email: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Every stored row about the person named by ``contact`` or ``email``, table by table.

    ``key`` (the tombstones' key) is asked only when the store holds tombstones.

    Raises:
        InputError: neither or both of ``contact`` and ``email``, or a malformed one.
    """
    kind, subject_key = parse_request(contact, email)
    with engine.connect() as conn:
        subject = resolve(conn, kind, subject_key)
        related = related_ids(conn, subject)
        tables: dict[str, list[dict[str, Any]]] = {}
        for name, (table, where) in table_filters(subject).items():
            if name == "quarantine":
                where = sa.or_(where, quarantine.c.record_id.in_(sorted(related)))
            rows = conn.execute(sa.select(table).where(where)).mappings()
            tables[name] = [_plain(dict(r)) for r in rows]
        erasures: list[dict[str, Any]] = []
        has_tombstones = conn.execute(
            sa.select(sa.func.count()).select_from(privacy_tombstones)
        ).scalar()
        if has_tombstones:
            hasher = KeyedHasher(key())
            digests = {hasher.of_id(i) for i in subject.ids} | {
                hasher.of_email(e) for e in subject.emails
            }
            digests.discard(None)
            t = privacy_tombstones
            found = sorted(d for d in digests if d)
            ids = {
                int(i)
                for i in conn.execute(
                    sa.select(t.c.erasure_id).where(t.c.digest.in_(found))
                ).scalars()
                if i is not None
            }
            e = privacy_erasures
            asked = e.c.subject_digest == hasher.digest(kind, subject_key)
            ids |= set(conn.execute(sa.select(e.c.id).where(asked)).scalars())
            # The person's tombstones: their own digests, and the others their erasures left
            # (an e-mail no longer in the store after the erasure).
            marks = conn.execute(
                sa.select(t).where(sa.or_(t.c.digest.in_(found), t.c.erasure_id.in_(sorted(ids))))
            )
            tables["privacy_tombstones"] = [_plain(dict(r)) for r in marks.mappings()]
            rows = conn.execute(sa.select(e).where(e.c.id.in_(sorted(ids)))).mappings()
            erasures = [_plain(dict(r)) for r in rows]
    return {
        "subject": {"requested_by": kind, "value": subject_key, "exported_at": now.isoformat()},
        "found": bool(subject.contact_rows),
        "erased": bool(erasures),
        "erasures": erasures,
        "tables": tables,
        "counts": {name: len(rows) for name, rows in tables.items()},
    }
