"""Applying the outbox: pending rows to the CRM, and the CRM's verdicts back into the store.

Pending rows are read in batches and handed to ``Connector.write`` (which picks sObject
Collections or a Bulk API 2.0 job by size). Every write call is followed by one transaction
that records its verdicts:

* confirmed → ``writeback_state`` updated, ``writeback_log`` appended, row done;
* retryable (``UNABLE_TO_LOCK_ROW``, or no verdict at all) → attempts+1, still pending;
  retried under the one retry policy (:mod:`connectors.retry`, a jittered doubling wait) up to
  ``max_attempts`` times in this run, then left for the next run;
* permanent → row failed with the CRM's code and message.

A crash at any point loses nothing: what the CRM confirmed is committed per call, the rest is
still pending and the next run sends it again (the same values, so a repeat is harmless).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tenacity import RetryCallState, Retrying

from canonical.errors import RetriableError
from canonical.model import System
from connectors.base import Connector, RecordChange, WriteResult
from connectors.retry import Doubling, Sleep, retrying
from sync_service.ops.progress import ProgressHook
from sync_service.settings import WritebackSettings
from sync_service.store.models import contacts
from sync_service.writeback.audit import record_confirmed
from sync_service.writeback.outbox import (
    FAILED,
    PENDING,
    OpenRow,
    mark_attempted,
    mark_done,
    pending_batches,
    pending_count,
)
from sync_service.writeback.report import SAMPLE_LIMIT, Failure, WritebackReport
from sync_service.writeback.targets import WritebackTargetLike

logger = logging.getLogger(__name__)


class _RecordsToRetry(Exception):
    """Some records of a call failed retryably: the policy sends them again after a wait."""

    def __init__(self, rows: list[OpenRow]) -> None:
        super().__init__(f"{len(rows)} records to send again")
        self.rows = rows


def _verdicts(
    rows: Sequence[OpenRow], results: Sequence[WriteResult]
) -> list[tuple[OpenRow, WriteResult]]:
    by_id = {r.record_id: r for r in results if r.record_id}
    out: list[tuple[OpenRow, WriteResult]] = []
    for i, row in enumerate(rows):
        result = by_id.get(row.record_id)
        if result is None and len(results) == len(rows) and not results[i].record_id:
            # A connector that answers in order but without ids (a collections failure has none).
            result = results[i]
        if result is None:
            result = WriteResult(
                row.record_id,
                success=False,
                code="NO_RESULT",
                message="the CRM returned no verdict for this record; it will be sent again",
                retryable=True,
            )
        out.append((row, result))
    return out


#: Retryable codes that belong to one record; any other retryable code on every record of a
#: call means the call itself failed.
PER_RECORD_RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW", "NO_RESULT", "UNPROCESSED"})


def _request_level_retryable(results: Sequence[WriteResult]) -> str | None:
    """The shared error when every record of a call failed retryably the same way, else None."""
    if not results or any(r.success or not r.retryable for r in results):
        return None
    kinds = {(r.code, r.message) for r in results}
    if len(kinds) != 1:
        return None
    code, message = kinds.pop()
    if code in PER_RECORD_RETRYABLE:
        return None
    return f"{code or 'ERROR'}: {message or 'no message'}"


def _only(row: OpenRow, allowed: set[str]) -> OpenRow:
    fields = {f: v for f, v in row.fields.items() if f in allowed}
    if len(fields) == len(row.fields):
        return row
    return replace(row, fields=fields)


def _parents(
    engine: Engine, target: WritebackTargetLike, record_ids: Sequence[str]
) -> dict[str, str] | None:
    """Contact id -> account id, so the connector can send contacts of one account together.

    Salesforce locks the parent account while updating a contact; records sharing a parent
    in different concurrent requests are what UNABLE_TO_LOCK_ROW is made of.
    """
    # Only contacts have a parent account to group by (the guard's stamps on requests do not).
    entity = str(getattr(target.entity, "value", target.entity)).lower()
    if (
        target.target != System.SALESFORCE
        or entity not in ("contact", "contacts")
        or not record_ids
    ):
        return None
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contacts.c.id, contacts.c.account_id).where(
                contacts.c.source == System.SALESFORCE,
                contacts.c.id.in_(list(record_ids)),
                contacts.c.account_id.is_not(None),
            )
        )
        return {str(i): str(a) for i, a in rows}


def _write(
    connector: Connector,
    object_name: str,
    changes: list[RecordChange],
    parents: dict[str, str] | None,
    on_call: Callable[[list[WriteResult]], None],
) -> list[WriteResult]:
    # ``parents`` and ``on_call`` are optional extras of a connector (Salesforce's), not of the
    # base contract; without ``on_call`` a write's verdicts are committed when it returns.
    accepts = inspect.signature(connector.write).parameters
    extras: dict[str, Any] = {}
    if parents and "parents" in accepts:
        extras["parents"] = parents
    if "on_call" in accepts:
        extras["on_call"] = on_call
    if extras:
        write: Any = connector.write
        results: list[WriteResult] = write(object_name, changes, **extras)
        return results
    return connector.write(object_name, changes)


class _PerCall:
    """The ``on_call`` hook: commits one API call's verdicts before the connector's next call.

    A crash (even ``kill -9``) then re-sends at most the records of the call in flight.
    """

    def __init__(
        self,
        engine: Engine,
        target: WritebackTargetLike,
        rows: Sequence[OpenRow],
        report: WritebackReport,
        run_id: int | None,
        now: Callable[[], datetime],
    ) -> None:
        self.engine, self.target, self.report, self.run_id, self.now = (
            engine,
            target,
            report,
            run_id,
            now,
        )
        self.by_id = {r.record_id: r for r in rows}
        self.recorded: set[str] = set()
        self.retry: list[OpenRow] = []

    def __call__(self, results: list[WriteResult]) -> None:
        mine = [r for r in results if r.record_id in self.by_id]
        rows = [self.by_id[r.record_id] for r in mine]
        self.retry += _record(
            self.engine, self.target, rows, mine, self.report, self.run_id, self.now()
        )
        self.recorded.update(r.record_id for r in rows)


def apply_configured(
    engine: Engine,
    connector: Connector,
    target: WritebackTargetLike,
    settings: WritebackSettings,
    *,
    report: WritebackReport,
    run_id: int | None,
    now: Callable[[], datetime],
    sleep: Sleep,
    progress: ProgressHook | None = None,
) -> None:
    """:func:`apply_pending` with the batch size, attempts and waits of the writeback settings."""
    apply_pending(
        engine,
        connector,
        target,
        report=report,
        batch_size=settings.batch_size,
        max_attempts=settings.max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        run_id=run_id,
        now=now,
        sleep=sleep,
        progress=progress,
    )


def apply_pending(
    engine: Engine,
    connector: Connector,
    target: WritebackTargetLike,
    *,
    report: WritebackReport,
    batch_size: int,
    max_attempts: int,
    retry_base_seconds: float,
    retry_max_seconds: float,
    run_id: int | None,
    now: Callable[[], datetime],
    sleep: Sleep,
    progress: ProgressHook | None = None,
) -> None:
    """Send the target's pending rows to ``connector`` and record every verdict.

    Sets ``report.stopped`` (and returns) when the CRM is unreachable for a whole batch; the
    rows stay pending. Other connector errors (auth, budget, a rejected request) propagate.
    """
    allowed = set(target.fields.values())
    policy = retrying(
        max_attempts,
        wait=Doubling(retry_base_seconds, retry_max_seconds),
        what=f"{target.target} writeback",
        sleep=sleep,
        retry_on=_RecordsToRetry,
        before_sleep=_count_retried(report),
    )
    label = f"writeback.{target.object_name}"
    total = pending_count(engine, target.target, target.object_name) if progress else None
    for batch in pending_batches(engine, target.target, target.object_name, batch_size):
        if progress is not None:
            progress(label, len(batch), total)
        # Only mapped fields are ever written, whatever an older row holds; a row left with
        # nothing mapped has nothing to send.
        todo = [_only(r, allowed) for r in batch]
        empty = [r for r in todo if not r.fields]
        if empty:
            with engine.begin() as conn:
                mark_done(conn, empty, now())
            todo = [r for r in todo if r.fields]
        parents = _parents(engine, target, [r.record_id for r in todo])
        if not _send(engine, connector, target, todo, parents, report, run_id, now, policy):
            return


def _send(
    engine: Engine,
    connector: Connector,
    target: WritebackTargetLike,
    rows: list[OpenRow],
    parents: dict[str, str] | None,
    report: WritebackReport,
    run_id: int | None,
    now: Callable[[], datetime],
    policy: Retrying,
) -> bool:
    """Write ``rows``, sending the retryable ones again under ``policy``; False to stop."""
    todo = rows

    def attempt() -> bool:
        nonlocal todo
        if not todo:
            return True
        changes = [RecordChange(r.record_id, dict(r.fields)) for r in todo]
        calls = _PerCall(engine, target, todo, report, run_id, now)
        try:
            results = _write(connector, target.object_name, changes, parents, calls)
        except RetriableError as exc:
            todo = [r for r in todo if r.record_id not in calls.recorded]
            with engine.begin() as conn:
                mark_attempted(conn, [(r, str(exc)) for r in todo], state=PENDING, now=now())
            report.stopped = (
                f"{target.target} unreachable while writing {target.object_name} ({exc}); "
                f"{len(todo):,} records stay pending for the next run"
            )
            logger.warning("writeback stopped: %s", report.stopped)
            return False
        retry = calls.retry
        rest = [r for r in todo if r.record_id not in calls.recorded]
        if rest:  # a connector without on_call, or records its calls did not report
            left = [x for x in results if x.record_id not in calls.recorded]
            retry += _record(
                engine, target, rest, left if calls.recorded else results, report, run_id, now()
            )
        outage = _request_level_retryable(results)
        if outage is not None:
            # The whole call failed (outage, spent budget, expired credentials) rather than
            # some records: waiting out the next batches would only burn time and calls.
            report.stopped = (
                f"{target.target} refused the whole write of {target.object_name} "
                f"({outage}); {len(retry):,} records stay pending for the next run"
            )
            logger.warning("writeback stopped: %s", report.stopped)
            return False
        if retry:
            # The rows carry their attempt count as stored by _record.
            todo = [replace(r, attempts=r.attempts + 1) for r in retry]
            raise _RecordsToRetry(retry)
        return True

    try:
        return bool(policy(attempt))
    except _RecordsToRetry:
        return True  # attempts spent: the rows stay pending for the next run


def _count_retried(report: WritebackReport) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _RecordsToRetry):
            report.counts["retried"] += len(exc.rows)

    return before_sleep


def _record(
    engine: Engine,
    target: WritebackTargetLike,
    rows: Sequence[OpenRow],
    results: Sequence[WriteResult],
    report: WritebackReport,
    run_id: int | None,
    now: datetime,
) -> list[OpenRow]:
    """Commit one call's verdicts in one transaction; return the rows worth retrying."""
    confirmed: list[OpenRow] = []
    refused: list[tuple[OpenRow, str]] = []
    retry: list[tuple[OpenRow, str]] = []
    for row, result in _verdicts(rows, results):
        if result.success:
            confirmed.append(row)
            continue
        text = f"{result.code or 'ERROR'}: {result.message or 'no message'}"
        if result.retryable:
            retry.append((row, text))
        else:
            refused.append((row, text))
    with engine.begin() as conn:
        n_fields = record_confirmed(
            conn, target.target, target.object_name, confirmed, now=now, run_id=run_id
        )
        mark_done(conn, confirmed, now)
        mark_attempted(conn, refused, state=FAILED, now=now)
        mark_attempted(conn, retry, state=PENDING, now=now)
    report.counts["success"] += len(confirmed)
    report.counts["fields_written"] += n_fields
    for row, text in refused:
        code, _, message = text.partition(": ")
        report.add_failure(Failure(target.target, target.object_name, row.record_id, code, message))
        if report.counts["failed"] <= SAMPLE_LIMIT:  # the run record carries the full count
            logger.warning(
                "writeback refused: %s %s %s: %s",
                target.target,
                target.object_name,
                row.record_id,
                text,
            )
    return [row for row, _ in retry]
