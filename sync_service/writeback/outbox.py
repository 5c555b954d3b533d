"""The writeback outbox: field changes waiting for the CRM's confirmation.

A row's life::

    (diff) ──► pending ──write confirmed──► done      (writeback_state + writeback_log updated)
                  │  ▲
                  │  └── retryable failure (UNABLE_TO_LOCK_ROW, 5xx): stays pending, attempts+1
                  └────► failed   permanent failure, with the CRM's code and message

There is at most one open (pending or failed) row per ``(target, object, record)``, enforced by
a partial unique index: a new diff replaces the open row's fields instead of adding a second
row, so repeats are idempotent. A failed row is tried again only when the values to write
change (or with ``writeback --retry-failed``); sending the same rejected values again would
only fail again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync_service.store.models import writeback_outbox as outbox
from sync_service.store.models import writeback_state
from sync_service.store.upsert import upsert

PENDING = "pending"
FAILED = "failed"
DONE = "done"

#: Operations: change an existing record (the diff's rows), or create one (logged asks).
UPDATE = "update"
CREATE = "create"


@dataclass(frozen=True)
class OpenRow:
    """An outbox row not yet done."""

    id: int
    record_id: str
    state: str
    fields: dict[str, Any]
    old_values: dict[str, Any]
    attempts: int
    policy_version: str | None


def _open_row(row: sa.RowMapping) -> OpenRow:
    return OpenRow(
        id=int(row["id"]),
        record_id=str(row["record_id"]),
        state=str(row["state"]),
        fields=dict(row["fields"] or {}),
        old_values=dict(row["old_values"] or {}),
        attempts=int(row["attempts"] or 0),
        policy_version=row["policy_version"],
    )


_OPEN_COLUMNS = (
    outbox.c.id,
    outbox.c.record_id,
    outbox.c.state,
    outbox.c.fields,
    outbox.c.old_values,
    outbox.c.attempts,
    outbox.c.policy_version,
)


def load_open(
    conn: Connection, target: str, object_name: str, record_ids: Sequence[str]
) -> dict[str, OpenRow]:
    """The open rows of these records, by record id."""
    if not record_ids:
        return {}
    rows = conn.execute(
        sa.select(*_OPEN_COLUMNS).where(
            outbox.c.target == target,
            outbox.c.object_name == object_name,
            outbox.c.record_id.in_(list(record_ids)),
            outbox.c.state != DONE,
        )
    ).mappings()
    return {str(r["record_id"]): _open_row(r) for r in rows}


def load_written(
    conn: Connection, target: str, object_name: str, record_ids: Sequence[str]
) -> dict[tuple[str, str], tuple[Any, datetime]]:
    """(record id, CRM field) -> (value, confirmed_at) last confirmed written."""
    if not record_ids:
        return {}
    rows = conn.execute(
        sa.select(
            writeback_state.c.record_id,
            writeback_state.c.field,
            writeback_state.c.value,
            writeback_state.c.confirmed_at,
        ).where(
            writeback_state.c.target == target,
            writeback_state.c.object_name == object_name,
            writeback_state.c.record_id.in_(list(record_ids)),
        )
    )
    return {(str(r[0]), str(r[1])): (r[2], r[3]) for r in rows}


@dataclass
class OutboxChanges:
    """The outbox and state edits one diff chunk makes, applied together by :meth:`flush`."""

    target: str
    object_name: str
    run_id: int | None
    now: datetime

    def __post_init__(self) -> None:
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[int] = []
        self.adopted: list[dict[str, Any]] = []

    def put(
        self,
        record_id: str,
        fields: dict[str, Any],
        old_values: dict[str, Any],
        policy_version: str | None,
        existing: OpenRow | None,
    ) -> bool:
        """Make ``fields`` the record's one pending change; return False if it already was.

        A failed row holding exactly these values stays failed (resending them would fail
        again); any other open row is replaced.
        """
        if existing is not None:
            if existing.fields == fields and (
                existing.state == FAILED
                or (existing.old_values == old_values and existing.policy_version == policy_version)
            ):
                return False
            self.updates.append(
                {
                    "b_id": existing.id,
                    "fields": fields,
                    "old_values": old_values,
                    "policy_version": policy_version,
                    "state": PENDING,
                    "attempts": existing.attempts if existing.state == PENDING else 0,
                    "last_error": None,
                    "updated_at": self.now,
                    "run_id": self.run_id,
                }
            )
            return True
        self.inserts.append(
            {
                "target": self.target,
                "object_name": self.object_name,
                "record_id": record_id,
                "fields": fields,
                "old_values": old_values,
                "state": PENDING,
                "attempts": 0,
                "policy_version": policy_version,
                "created_at": self.now,
                "updated_at": self.now,
                "run_id": self.run_id,
            }
        )
        return True

    def drop(self, existing: OpenRow | None) -> None:
        """Remove the record's open row: nothing (any more) to write."""
        if existing is not None:
            self.deletes.append(existing.id)

    def adopt(self, record_id: str, field: str, value: Any) -> None:
        """Record that the CRM already holds ``value`` (set there by a person), without a call."""
        self.adopted.append(
            {
                "target": self.target,
                "object_name": self.object_name,
                "record_id": record_id,
                "field": field,
                "value": value,
                "confirmed_at": self.now,
            }
        )

    def flush(self, conn: Connection) -> None:
        """Apply the buffered edits in the caller's transaction."""
        if self.deletes:
            conn.execute(sa.delete(outbox).where(outbox.c.id.in_(self.deletes)))
        if self.updates:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == sa.bindparam("b_id"))
                .values(
                    fields=sa.bindparam("fields"),
                    old_values=sa.bindparam("old_values"),
                    policy_version=sa.bindparam("policy_version"),
                    state=sa.bindparam("state"),
                    attempts=sa.bindparam("attempts"),
                    last_error=sa.bindparam("last_error"),
                    updated_at=sa.bindparam("updated_at"),
                    run_id=sa.bindparam("run_id"),
                ),
                self.updates,
            )
        if self.inserts:
            conn.execute(sa.insert(outbox), self.inserts)
        if self.adopted:
            upsert(conn, writeback_state, self.adopted)
        self.inserts, self.updates, self.deletes, self.adopted = [], [], [], []


def pending_count(engine: Engine, target: str, object_name: str) -> int:
    """How many rows of one object wait to be sent (a progress bar's total)."""
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(
            outbox.c.target == target,
            outbox.c.object_name == object_name,
            outbox.c.state == PENDING,
        )
        return int(conn.execute(query).scalar_one())


def pending_batches(
    engine: Engine, target: str, object_name: str, batch_size: int
) -> Iterator[list[OpenRow]]:
    """Yield the pending rows of one object in id order, ``batch_size`` at a time.

    Keyset paging by id: a row left pending by a failure in this run is not read again in the
    same pass, and memory holds one batch.
    """
    last_id = 0
    while True:
        with engine.connect() as conn:
            rows = [
                _open_row(r)
                for r in conn.execute(
                    sa.select(*_OPEN_COLUMNS)
                    .where(
                        outbox.c.target == target,
                        outbox.c.object_name == object_name,
                        outbox.c.state == PENDING,
                        outbox.c.operation == UPDATE,
                        outbox.c.id > last_id,
                    )
                    .order_by(outbox.c.id)
                    .limit(batch_size)
                ).mappings()
            ]
        if not rows:
            return
        last_id = rows[-1].id
        yield rows


def queue(
    conn: Connection,
    *,
    target: str,
    object_name: str,
    record_id: str,
    fields: dict[str, Any],
    operation: str,
    now: datetime,
) -> None:
    """Add one pending row in the caller's transaction (a logged ask's create, a stamp)."""
    conn.execute(
        sa.insert(outbox),
        [
            {
                "target": target,
                "object_name": object_name,
                "record_id": record_id,
                "fields": fields,
                "old_values": {},
                "state": PENDING,
                "attempts": 0,
                "operation": operation,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def pending_creates(engine: Engine, target: str, object_name: str, limit: int) -> list[OpenRow]:
    """The oldest ``limit`` pending creates of one object (asks logged through the API)."""
    with engine.connect() as conn:
        return [
            _open_row(r)
            for r in conn.execute(
                sa.select(*_OPEN_COLUMNS)
                .where(
                    outbox.c.target == target,
                    outbox.c.object_name == object_name,
                    outbox.c.operation == CREATE,
                    outbox.c.state == PENDING,
                )
                .order_by(outbox.c.id)
                .limit(limit)
            ).mappings()
        ]


def mark_done(conn: Connection, rows: Iterable[OpenRow], now: datetime) -> None:
    """The CRM confirmed these rows."""
    params = [{"b_id": r.id, "attempts": r.attempts + 1} for r in rows]
    if params:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == sa.bindparam("b_id"), outbox.c.state == PENDING)
            .values(state=DONE, attempts=sa.bindparam("attempts"), last_error=None, updated_at=now),
            params,
        )


def mark_attempted(
    conn: Connection, rows: Iterable[tuple[OpenRow, str]], *, state: str, now: datetime
) -> None:
    """Record a failed attempt on each row with its error; ``state`` is pending or failed."""
    params = [{"b_id": r.id, "attempts": r.attempts + 1, "last_error": e[:2000]} for r, e in rows]
    if params:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == sa.bindparam("b_id"), outbox.c.state == PENDING)
            .values(
                state=state,
                attempts=sa.bindparam("attempts"),
                last_error=sa.bindparam("last_error"),
                updated_at=now,
            ),
            params,
        )


def retry_failed(conn: Connection, target: str | None = None) -> int:
    """Put failed rows back to pending (after an admin fixed the cause); return how many."""
    stmt = sa.update(outbox).where(outbox.c.state == FAILED)
    if target is not None:
        stmt = stmt.where(outbox.c.target == target)
    return int(conn.execute(stmt.values(state=PENDING, attempts=0)).rowcount or 0)


def purge_done(conn: Connection, now: datetime, keep: timedelta = timedelta(days=7)) -> int:
    """Delete done rows older than ``keep``; the audit log keeps the history."""
    result = conn.execute(
        sa.delete(outbox).where(outbox.c.state == DONE, outbox.c.updated_at < now - keep)
    )
    return int(result.rowcount or 0)


def open_counts(engine: Engine) -> dict[str, int]:
    """Number of outbox rows per state other than done (for status and the run record)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.state != DONE)
            .group_by(outbox.c.state)
        )
        return {str(state): int(n) for state, n in rows}
