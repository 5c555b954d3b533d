"""The guard's side of the writeback: create logged asks in the CRM, stamp requests made there.

**Creates.** An ask logged through the API waits in the outbox as a ``create`` row keyed by its
ask id. :func:`apply_creates` hands them to ``Connector.create``, which finds a record already
holding that key (an earlier answer lost) or inserts it, so each ask is created exactly once
however often a crash or an outage interrupts. When the CRM confirms, one transaction marks the
row done, audits the values, stores the CRM's record as the ask (``source = salesforce``) and
marks the API row as merged into it: the ask is counted once, before and after the next sync.

**Stamps.** :func:`stamp_requests` takes the requests a sync just read that the guard has not
seen (no ask id, no stamp) and decides each as of its own date, counting the asks made before
it, with the contact's consents as stored: ``Clear``, ``Conflict`` (with the reasons) or
``Override`` (the requester's box ticked on a conflicting request). The stamps go through the
outbox as ordinary updates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.errors import RetriableError
from connectors.base import Connector, RecordChange
from rules import Policy, today_for
from rules.guard import CLEAR, CONFLICT, OVERRIDE, LedgerAsk, Verdict, decide, window_start
from sync_service.mapping.asks import AskFields
from sync_service.store.ledger import ask_rows, consent_types_of, verdict_row
from sync_service.store.models import advocacy_asks, runs
from sync_service.store.upsert import upsert
from sync_service.writeback.audit import record_confirmed
from sync_service.writeback.outbox import (
    FAILED,
    PENDING,
    UPDATE,
    OpenRow,
    load_open,
    mark_attempted,
    mark_done,
    pending_creates,
    queue,
)

log = logging.getLogger(__name__)

SALESFORCE = "salesforce"
#: Creates per Connector.create call (sObject Collections take 200 records a request).
CREATE_BATCH = 200


@dataclass(frozen=True)
class StampTarget:
    """The writeback target of the stamps: the ask object's two guard fields."""

    object_name: str
    fields: dict[str, str]
    target: str = SALESFORCE
    entity: str = "ask"
    owned: bool = True
    override_field: str | None = None


def stamp_target(fields: AskFields) -> StampTarget:
    """The target :func:`~sync_service.writeback.apply.apply_pending` writes the stamps with."""
    return StampTarget(
        fields.object_name, {"guard_status": fields.status, "guard_reason": fields.reason}
    )


def _adopt(conn: Connection, ask_id: str, crm_id: str, now: datetime) -> None:
    """Store the CRM's record as the ask and retire the API row (in the caller's transaction)."""
    a = advocacy_asks
    row = conn.execute(sa.select(a).where(a.c.source == "api", a.c.id == ask_id)).mappings().first()
    if row is None:
        return
    adopted = dict(row)
    adopted.update(source=SALESFORCE, id=crm_id, synced_at=now)
    conn.execute(
        sa.delete(a).where(a.c.source == SALESFORCE, a.c.id == crm_id, a.c.deleted == sa.true())
    )
    upsert(conn, a, [adopted])
    conn.execute(
        sa.update(a)
        .where(a.c.source == "api", a.c.id == ask_id)
        .values(deleted=True, merged_into=crm_id, synced_at=now)
    )


def apply_creates(
    engine: Engine,
    connector: Connector,
    fields: AskFields,
    *,
    max_attempts: int = 5,
    now: Callable[[], datetime],
) -> dict[str, int]:
    """Create every pending logged ask in the CRM; returns counts (created, failed, pending).

    A request-level failure (the CRM unreachable) leaves the rows pending for the next run.
    """
    counts = {"created": 0, "failed": 0, "pending": 0}
    while True:
        rows = pending_creates(engine, SALESFORCE, fields.object_name, CREATE_BATCH)
        if not rows:
            return counts
        changes = [RecordChange(r.record_id, dict(r.fields)) for r in rows]
        try:
            results = connector.create(fields.object_name, changes, fields.ask_id)
        except RetriableError as exc:
            with engine.begin() as conn:
                mark_attempted(conn, [(r, str(exc)) for r in rows], state=PENDING, now=now())
            counts["pending"] += len(rows)
            log.warning("asks: the CRM is unreachable (%s); %d asks wait", exc, len(rows))
            return counts
        by_key = {r.record_id: r for r in results}
        done: list[OpenRow] = []
        retry: list[tuple[OpenRow, str]] = []
        refused: list[tuple[OpenRow, str]] = []
        stamp = now()
        with engine.begin() as conn:
            for row in rows:
                result = by_key.get(row.record_id)
                if result is not None and result.success and result.crm_id:
                    _adopt(conn, row.record_id, result.crm_id, stamp)
                    done.append(replace(row, record_id=result.crm_id))
                    continue
                text = (
                    f"{result.code or 'ERROR'}: {result.message or 'no message'}"
                    if result is not None
                    else "NO_RESULT: the CRM returned no verdict; sent again"
                )
                stays = result is None or result.retryable
                if stays and row.attempts + 1 < max_attempts:
                    retry.append((row, text))
                else:
                    refused.append((row, text))
            record_confirmed(conn, SALESFORCE, fields.object_name, done, now=stamp, run_id=None)
            mark_done(conn, done, stamp)  # by outbox row id
            mark_attempted(conn, retry, state=PENDING, now=stamp)
            mark_attempted(conn, refused, state=FAILED, now=stamp)
        counts["created"] += len(done)
        counts["failed"] += len(refused)
        for row, text in refused:
            log.warning("asks: the CRM refused the ask %s: %s", row.record_id, text)
        if retry:
            counts["pending"] += len(retry)
            return counts  # the next run tries them again; no busy loop on a stubborn record


def _order_key(source: str, rid: str) -> tuple[int, str]:
    # Asks logged through the guard were checked when made: they come first on their day.
    return (0 if source == "api" else 1, rid)


#: The first asks run stamps requests synced in the day before it, not the whole history.
FIRST_WINDOW = timedelta(days=1)
#: Requests older than this on their own date are history, never stamped.
STAMP_HORIZON_DAYS = 30


def stamp_window(engine: Engine, now: datetime, overlap: timedelta) -> datetime:
    """Stamp requests synced since the last successful asks run started (minus ``overlap``).

    Any job may have synced a request (the Salesforce sync reads the asks stream too), so the
    window is the asks job's own, not the rows its sync read.
    """
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(runs.c.started_at)).where(
                runs.c.job == "asks", runs.c.status.in_(("success", "partial"))
            )
        ).scalar()
    return (last - overlap) if last is not None else now - FIRST_WINDOW


def stamp_requests(
    engine: Engine,
    policy: Policy,
    fields: AskFields,
    *,
    since: datetime,
    now: datetime,
) -> dict[str, int]:
    """Queue a stamp for each request synced since ``since`` that the guard has not seen.

    Returns counts per stamp (Clear, Conflict, Override).
    """
    a = advocacy_asks
    counts = {CLEAR: 0, CONFLICT: 0, OVERRIDE: 0}
    with engine.begin() as conn:
        fresh = conn.execute(
            sa.select(a.c.id, a.c.contact_id, a.c.account_id, a.c.ask_type, a.c.team)
            .add_columns(a.c.requested_date, a.c.extra)
            .where(
                a.c.source == SALESFORCE,
                a.c.deleted == sa.false(),
                a.c.synced_at >= since,
                a.c.requested_date > today_for(policy, now) - timedelta(days=STAMP_HORIZON_DAYS),
            )
        ).all()
        open_ids = _open_stamps(conn, fields.object_name, [r.id for r in fresh])
        today = today_for(policy, now)
        for r in fresh:
            extra = r.extra or {}
            if extra.get("guard_ask_id") or extra.get("guard_status") or r.id in open_ids:
                continue
            if r.contact_id is None or r.requested_date is None:
                continue
            status, reason = _stamp_one(conn, policy, r, min(r.requested_date, today))
            if status == CONFLICT and extra.get("guard_override"):
                status, reason = OVERRIDE, f"override ticked: {reason}"
            counts[status] += 1
            # Remember the stamp on the stored row too, so a later run never stamps it twice
            # (the CRM's value replaces it at the next sync).
            conn.execute(
                sa.update(a)
                .where(a.c.source == SALESFORCE, a.c.id == r.id)
                .values(extra={**extra, "guard_status": status, "guard_reason": reason[:255]})
            )
            queue(
                conn,
                target=SALESFORCE,
                object_name=fields.object_name,
                record_id=r.id,
                fields={fields.status: status, fields.reason: reason[:255]},
                operation=UPDATE,
                now=now,
            )
    return counts


def _open_stamps(conn: Connection, object_name: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(load_open(conn, SALESFORCE, object_name, ids[start : start + 500]))
    return found


def _stamp_one(conn: Connection, policy: Policy, r: Any, day: date) -> tuple[str, str]:
    """Decide one CRM request as of its date, counting the asks made before it."""
    me = _order_key(SALESFORCE, str(r.id))

    def before(column: str, key: str, scope: str) -> list[LedgerAsk]:
        since = window_start(policy, day, scope)
        return [
            LedgerAsk(x.ask_type, x.team, x.requested_date)
            for x in ask_rows(conn, column, key, since, until=day)
            if x.requested_date < day or _order_key(x.source, x.id) < me
        ]

    row = verdict_row(conn, "contact", str(r.contact_id))
    verdict = Verdict(row.status, row.reason, row.next_available) if row is not None else None
    mine = before("contact_id", str(r.contact_id), "contact")
    theirs = before("account_id", str(r.account_id), "account") if r.account_id else []
    consent = consent_types_of(conn, str(r.contact_id))
    decision = decide(policy, verdict, mine, theirs, str(r.ask_type or ""), r.team, day, consent)
    if decision.allowed:
        return CLEAR, "within the policy when requested"
    return CONFLICT, "; ".join(decision.reasons) or decision.status
