"""One writeback run: diff every target into the outbox, check the guards, apply the outbox."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import WritebackError
from connectors.base import Connector
from sync_service.ops.progress import ProgressHook
from sync_service.ops.runs import Run, utcnow
from sync_service.settings import WritebackSettings
from sync_service.store.models import writeback_outbox
from sync_service.sync import changes
from sync_service.writeback import cursor as diff_cursor
from sync_service.writeback import outbox
from sync_service.writeback.apply import apply_configured
from sync_service.writeback.diff import diff_target, target_key
from sync_service.writeback.guards import BlastRadiusGuard
from sync_service.writeback.report import WritebackReport
from sync_service.writeback.targets import WritebackTargetLike, check_target

logger = logging.getLogger(__name__)


def _target_digest(target: WritebackTargetLike, write_erased: bool) -> str:
    """What a target's diff depends on besides the verdicts: its fields and the erased rule."""
    return hashlib.sha256(f"{target!r}|{write_erased}".encode()).hexdigest()


def run_writeback(
    engine: Engine,
    targets: Sequence[WritebackTargetLike],
    connectors: Mapping[str, Connector],
    settings: WritebackSettings,
    *,
    run: Run | None = None,
    dry_run: bool = False,
    confirm: bool = False,
    retry_failed: bool = False,
    chunk_size: int = 2000,
    write_erased: bool = True,
    now: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
    progress: ProgressHook | None = None,
    incremental: bool = True,
) -> WritebackReport:
    """Write the changed results of every target back to its CRM.

    1. Diff, in one transaction: each target's changed fields replace its records' open outbox
       rows. ``dry_run`` rolls the transaction back after counting; so does a hold.
    2. Blast-radius guard: when too many statuses would change, the run is held (``run.status``
       ``held``, the reason in ``run.error`` and the log) unless ``confirm``.
    3. Apply: pending rows go to the connector of their target; verdicts are committed per call.

    Args:
        engine: the store.
        targets: the writeback targets of the mappings (only their fields are written).
        connectors: system name -> connector, for every target's system (not read in dry runs).
        settings: the writeback settings (guards, batch size, retries).
        run: the run record to fill (counts, status, error), when there is one.
        dry_run: count and sample what would change; write nothing anywhere.
        confirm: release a held writeback (skip the blast-radius guard once).
        retry_failed: send rows the CRM refused before once more (after an admin fixed them).
        chunk_size: evaluations per diff chunk (memory holds one chunk).
        write_erased: write the Opted Out verdict of people erased on request (once: it never
            changes); False leaves their CRM records alone (``privacy.write_erased_status``).
        now: the clock (tests pin it).
        sleep: how to wait between retries (tests skip the wait).
        progress: told ``("writeback.<Object>", n, total)`` as each batch is sent.
        incremental: diff only the verdicts rewritten and the records read again since the
            last writeback (:mod:`sync_service.writeback.cursor`); False diffs everything.

    Raises:
        WritebackError: a target is misconfigured or its system has no connector.
    """
    for target in targets:
        check_target(target)
        if not dry_run and target.target not in connectors:
            msg = (
                f"no {target.target} connector for writeback target {target_key(target)}; "
                f"configure {target.target} or remove the target from the mapping"
            )
            raise WritebackError(msg)
    report = WritebackReport(dry_run=dry_run)
    run_id = run.id if run is not None else None
    started = now()
    guard = BlastRadiusGuard(settings.max_status_change_share, settings.min_records_for_guard)

    with engine.connect() as conn:
        tx = conn.begin()
        try:
            if retry_failed and not dry_run:
                report.counts["requeued"] = outbox.retry_failed(conn)
            start = diff_cursor.at_start(conn, started)
            # a stream read in full may have changed any record: everything is diffed once
            incremental = incremental and not changes.crm_full(conn, start.upto)
            for target in targets:
                key, digest = target_key(target), _target_digest(target, write_erased)
                seen = diff_cursor.load(conn, key, digest) if incremental else None
                since = diff_cursor.DiffCursor(seen, start.upto) if seen is not None else None
                diff_target(
                    conn,
                    target,
                    guard=guard,
                    report=report,
                    now=started,
                    run_id=run_id,
                    chunk_size=chunk_size,
                    write_erased=write_erased,
                    since=since,
                )
                # committed with the outbox rows: a held or dry run leaves it where it was
                diff_cursor.save(conn, key, digest, start.run_id, started)
            changes.consume_crm(conn, start.upto)
            held = None if confirm else guard.verdict()
            if dry_run or held:
                tx.rollback()
            else:
                tx.commit()
        except BaseException:
            tx.rollback()
            raise
    report.held = held
    if held and not dry_run:
        logger.warning("%s", held)
    if held or dry_run:
        if held and not dry_run and run is not None:
            run.status = "held"
            run.error = held
        _finish(run, report)
        return report
    if confirm and guard.verdict():
        logger.warning("writeback released by --confirm: %s", guard.verdict())

    for target in targets:
        connector = connectors[target.target]
        calls_before = connector.usage().calls
        try:
            apply_configured(
                engine,
                connector,
                target,
                settings,
                report=report,
                run_id=run_id,
                now=now,
                sleep=sleep,
                progress=progress,
            )
        finally:
            usage = connector.usage()
            report.counts["calls"] += usage.calls - calls_before
            if run is not None:
                run.api_calls[connector.system] = {
                    "calls": usage.calls,
                    "used": usage.used,
                    "limit": usage.limit,
                }
        if report.stopped:
            break

    with engine.begin() as conn:
        outbox.purge_done(conn, now())
        report.counts["pending"] = _pending(conn, targets)
    problems = report.problems()
    if run is not None and problems:
        run.mark_partial(problems)
    _log_summary(report)
    _finish(run, report)
    return report


def _pending(conn: sa.Connection, targets: Sequence[WritebackTargetLike]) -> int:
    keys = {(t.target, t.object_name) for t in targets}
    if not keys:
        return 0
    cond = sa.or_(
        *(
            sa.and_(writeback_outbox.c.target == t, writeback_outbox.c.object_name == o)
            for t, o in sorted(keys)
        )
    )
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(writeback_outbox)
            .where(writeback_outbox.c.state == outbox.PENDING, cond)
        ).scalar_one()
    )


def _finish(run: Run | None, report: WritebackReport) -> None:
    if run is not None:
        run.counts.update(report.run_counts())


def _log_summary(report: WritebackReport) -> None:
    c = report.counts
    logger.info(
        "writeback: %d records checked, %d changed, %d confirmed, %d refused, %d pending, "
        "%d API calls",
        c["records"],
        c["changed"],
        c["success"],
        c["failed"],
        c["pending"],
        c["calls"],
    )
    if c["overridden"]:
        logger.info("writeback: %d records left alone: override field set", c["overridden"])
    if c["conflicts"]:
        first = report.conflicts[0]
        logger.warning(
            "writeback: %d fields changed in the CRM by a person since the last write "
            "(%d overwritten as owned fields; first: %s %s %s)",
            c["conflicts"],
            c["overwritten"],
            first.object_name,
            first.record_id,
            first.field,
        )
