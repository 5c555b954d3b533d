"""The cycle: pull → evaluate → write back, as jobs with run records and locks.

Each job body is one function call, tested without a scheduler; ``serve`` and the CLI both
come through :func:`run_job`. Every job holds its lock for its whole run, so replicas sharing a
store never run the same job at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from canonical.errors import BudgetExhaustedError, ConfigError, MappingError, ServiceError
from canonical.model import System
from sync_service.context import AppContext
from sync_service.factory import build_connector, source_enabled
from sync_service.ops.housekeeping import housekeeping
from sync_service.ops.locks import job_lock
from sync_service.ops.progress import ProgressHook
from sync_service.ops.runs import Run, run_record, utcnow
from sync_service.privacy.tombstones import load_scrubber
from sync_service.settings import KNOWN_JOBS
from sync_service.sync import completeness
from sync_service.sync.changes import incremental_enabled
from sync_service.sync.ingest import (
    IngestOptions,
    RowScrubber,
    reconcile_stream,
    start_cursor,
    sync_source,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from connectors.base import Connector
    from rules import Policy

log = logging.getLogger(__name__)

SYNC_JOBS: tuple[System, ...] = tuple(System)
JOBS = KNOWN_JOBS


def _lock(ctx: AppContext, stage: str) -> AbstractContextManager[Any]:
    # Stage locks are named apart from the scheduler's job locks: a scheduled "salesforce" job
    # holds "salesforce" and runs the stages "stage.salesforce", "stage.evaluate" and
    # "stage.writeback", which a CLI run or another replica's job cannot enter meanwhile.
    return job_lock(ctx.engine, f"stage.{stage}")


def _overlap(ctx: AppContext, system: str) -> timedelta:
    seconds = (
        ctx.settings.salesforce.overlap_seconds
        if system == System.SALESFORCE
        else ctx.settings.gainsight.overlap_seconds
    )
    return timedelta(seconds=seconds)


def _scrubber(ctx: AppContext, now: datetime) -> RowScrubber:
    # Read once per run: ``forget`` holds the sync stage locks, so no erasure lands mid-run.
    return load_scrubber(ctx.engine, ctx.privacy_key, now, ctx.settings.privacy)


def _record_usage(run: Run, system: str, connector: Any) -> None:
    usage = connector.usage()
    run.api_calls[system] = {"calls": usage.calls, "used": usage.used, "limit": usage.limit}


def sync_job(
    ctx: AppContext,
    system: str,
    *,
    full: bool = False,
    stop: threading.Event | None = None,
    progress: ProgressHook | None = None,
) -> Run:
    """Pull one source into the store (incremental, or ``full`` resync without dropping data)."""
    with _lock(ctx, system), run_record(ctx.engine, system) as run:
        mappings = ctx.mappings(run)
        source = mappings.salesforce if system == System.SALESFORCE else mappings.gainsight
        if source is None or not source_enabled(ctx.settings, system):
            run.counts["skipped"] = 1
            run.error = f"{system} is not configured (no mapping or disabled); nothing to sync"
            log.info(run.error)
            return run
        connector = build_connector(ctx.settings, system, engine=ctx.engine, var_dir=ctx.var_dir)
        try:
            now = utcnow()
            opts = IngestOptions(
                overlap=_overlap(ctx, system),
                now=now,
                full=full,
                progress=progress,
                scrub=_scrubber(ctx, now),
            )
            _plan_reads(ctx, connector, source.entities.values(), opts)
            sync_source(ctx.engine, connector, source.entities.values(), run, opts, stop)
            if system == System.GAINSIGHT:
                _link_identities(ctx, run, full=full)
        except (ConfigError, BudgetExhaustedError):
            raise
        except ServiceError as exc:
            # Recorded, not raised: the other sources and the evaluation still run.
            run.status = "failed"
            run.error = str(exc)
            log.error("%s sync failed: %s", system, exc)
        finally:
            _record_usage(run, system, connector)
            connector.close()
    return run


def _plan_reads(
    ctx: AppContext, connector: Connector, entities: Iterable[Any], opts: IngestOptions
) -> None:
    """Tell the connector every stream's window before the first read.

    Salesforce then asks every stream's ``COUNT()`` in one Composite call instead of one call
    per stream; a stream whose window differs from the plan (its mapping changed) asks itself.
    """
    with ctx.engine.connect() as conn:
        specs = [m.stream_spec() for m in entities]
        reads = [(s, start_cursor(conn, connector.system, s.name, opts), opts.now) for s in specs]
    connector.plan_reads(reads)


def _link_identities(ctx: AppContext, run: Run, *, full: bool) -> None:
    """Link the Gainsight rows to Salesforce: those changed, or (``full``) all of them."""
    from sync_service.sync.identity import link_identities

    result = link_identities(ctx.engine, full=full)
    for key, value in result.as_counts().items():
        run.counts[key] = value
    if not result.full:
        for table, n in result.scope.items():
            run.counts[f"identity.scope.{table}"] = n


def reconcile_job(ctx: AppContext, *, stop: threading.Event | None = None) -> Run:
    """Re-read every stream in full: refresh formula fields, catch hard deletes, report drift.

    Then the daily housekeeping: trim the operational history older than
    ``sync.history_days`` and apply the privacy retention (see ops.housekeeping).
    """
    with _lock(ctx, "reconcile"), run_record(ctx.engine, "reconcile") as run:
        mappings = ctx.mappings(run)
        for source in mappings.sources:
            if not source_enabled(ctx.settings, source.system):
                continue
            connector = build_connector(
                ctx.settings, source.system, engine=ctx.engine, var_dir=ctx.var_dir
            )
            try:
                now = utcnow()
                opts = IngestOptions(
                    overlap=_overlap(ctx, source.system), now=now, scrub=_scrubber(ctx, now)
                )
                for mapping in source.entities.values():
                    if not reconcile_stream(ctx.engine, connector, mapping, run, opts, stop):
                        run.mark_partial("stopped by shutdown; reconciliation runs again next time")
                        return run
                if source.system == System.GAINSIGHT:
                    # the weekly safety net: every row linked again, whatever was marked
                    _link_identities(ctx, run, full=True)
            finally:
                _record_usage(run, source.system, connector)
                connector.close()
        for name, n in housekeeping(ctx.engine, ctx.settings, now=utcnow()).items():
            run.add(name, n)
    return run


def evaluate_job(
    ctx: AppContext,
    *,
    progress: ProgressHook | None = None,
    stop: threading.Event | None = None,
    full: bool = False,
) -> Run:
    """Compute the statuses of the contacts and accounts whose inputs changed (or ``full``: all).

    Incremental unless ``full`` (see :mod:`sync_service.sync.changes`); a changed policy or
    mapping turns it into a full evaluation by itself. An invalid rules edit is reported in
    the run and the last valid policy keeps running.
    """
    from sync_service.evaluate.evaluation import evaluate_all, load_policy_or_last_valid

    settings = ctx.settings
    job = "evaluate_full" if full else "evaluate"
    with _lock(ctx, "evaluate"), run_record(ctx.engine, job) as run:
        policy, problems = load_policy_or_last_valid(
            settings.rules_file, ctx.var_dir / "rules.last-valid.yaml"
        )
        run.config_errors.extend(problems)
        if held_for_gaps(ctx, policy, run, stop=stop):
            return run
        evaluate_all(
            ctx.engine,
            policy,
            utcnow(),
            run,
            progress=progress,
            incremental=not full and incremental_enabled(),
            inputs_digest=inputs_digest(ctx, policy, run),
        )
    return run


def inputs_digest(ctx: AppContext, policy: Policy, run: Run | None = None) -> str:
    """A digest of the policy and of what every mapped stream reads: verdicts depend on both."""
    from sync_service.sync.ingest import spec_digest

    parts = [policy.hash]
    try:
        mappings = ctx.mappings(run)
    except MappingError:
        mappings = None
    if mappings is not None:
        for source in mappings.sources:
            parts += sorted(spec_digest(em.stream_spec()) for em in source.entities.values())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def current_streams(ctx: AppContext, run: Run | None = None) -> list[tuple[str, str]] | None:
    """``(connector, stream)`` of every enabled source's mapped streams (None: no mappings)."""
    try:
        mappings = ctx.mappings(run)
    except MappingError:
        return None  # then every stream on file counts
    out: list[tuple[str, str]] = []
    for source in mappings.sources:
        if source_enabled(ctx.settings, source.system):
            out += [(source.system, em.stream_spec().name) for em in source.entities.values()]
    return out


#: How long an evaluation waits for a running sync of its inputs to commit before it defers.
RUNNING_SYNC_WAIT = 15 * 60.0

#: Seconds between looks at the running syncs while an evaluation waits for them.
RUNNING_SYNC_POLL = 0.5


def held_for_gaps(
    ctx: AppContext,
    policy: Policy,
    run: Run,
    *,
    stop: threading.Event | None = None,
    wait: float | None = None,
) -> bool:
    """Hold or defer every verdict when a stream the policy reads is incomplete.

    A gap a finished sync left holds the evaluation (partial, alerted). A gap a running sync
    is filling is waited for (up to ``wait`` seconds, default :data:`RUNNING_SYNC_WAIT`, or until
    ``stop``), then looked at again;
    if that sync still runs, the evaluation is deferred to its follow-up (see sync.completeness).

    Returns:
        True when the evaluation must not run; ``run`` then says why (partial when held).
    """
    streams = current_streams(ctx, run)
    deadline = time.monotonic() + (RUNNING_SYNC_WAIT if wait is None else wait)
    waited = False
    while True:
        finished, running = completeness.classify(ctx.engine, streams)
        found = completeness.blocking(policy, finished)
        if found:
            with ctx.engine.connect() as conn:
                reason = completeness.hold(conn, run, found)
            log.warning("%s", reason)
            return True
        pending = completeness.blocking(policy, running)
        if not pending:
            return False
        names = ", ".join(f"{g.connector}.{g.stream}" for g in pending)
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            completeness.defer(run, pending)
            log.info("%s", run.error)
            return True
        if not waited:
            waited = True
            run.add(completeness.WAITED_KEY)
            log.info("evaluation waits for the running sync of %s to commit", names)
        if stop is not None:
            stop.wait(RUNNING_SYNC_POLL)
        else:
            time.sleep(RUNNING_SYNC_POLL)


def evaluated(run: Run) -> bool:
    """Whether an evaluation run computed verdicts a writeback may send (not held or deferred)."""
    return run.status == "success" and not run.counts.get(completeness.DEFERRED_KEY)


def writeback_job(
    ctx: AppContext, *, confirm: bool = False, progress: ProgressHook | None = None
) -> Run:
    """Write changed results back to the CRM fields (only what changed; guards apply)."""
    from sync_service.writeback.job import writeback_job as write_back

    with _lock(ctx, "writeback"), run_record(ctx.engine, "writeback") as run:
        if not ctx.settings.writeback.enabled:
            run.counts["skipped"] = 1
            run.error = "writeback is disabled (writeback.enabled: false); nothing written"
            return run
        write_back(
            ctx.engine,
            ctx.settings,
            run=run,
            mappings=ctx.mappings(run),
            confirm=confirm,
            progress=progress,
        )
    return run


def match_job(ctx: AppContext) -> Run | None:
    """Reference matching on every open deal (after the evaluation); None when it is off.

    An invalid ``config/matching.yaml`` is reported in the run and the last valid rules keep
    matching; with no valid version ever seen, the run fails and changes nothing (the last
    suggestions stay). The rest of the cycle is not affected either way.
    """
    from sync_service.match.job import SNAPSHOT_NAME, run_match

    if ctx.settings.matching_file is None:
        return None
    with _lock(ctx, "match"), run_record(ctx.engine, "match") as run:
        try:
            run_match(
                ctx.engine,
                ctx.settings,
                ctx.mappings(run),
                run=run,
                connector_factory=lambda: build_connector(
                    ctx.settings, "salesforce", engine=ctx.engine
                ),
                now=utcnow,
                snapshot=ctx.var_dir / SNAPSHOT_NAME,
            )
        except ConfigError as exc:
            # Recorded, not raised: the cycle's other stages ran; a fixed file is used next time.
            run.status = "failed"
            run.error = str(exc)
            log.error("matching skipped: %s", exc)
    return run


def asks_job(ctx: AppContext, *, stop: threading.Event | None = None) -> Run:
    """The frequent, cheap asks run: requests made in the CRM stamped, logged asks created.

    Reads only the asks stream, incrementally; stamps each new request made in the CRM
    (Clear / Conflict / Override); creates the asks logged through the API that the CRM lacks
    (exactly once); writes the stamps. A CRM outage leaves everything pending for the next run.
    """
    from canonical.model import Entity
    from sync_service.evaluate.evaluation import SNAPSHOT_NAME, load_policy_or_last_valid
    from sync_service.mapping.asks import AskFields
    from sync_service.writeback import asks as guard_writes
    from sync_service.writeback.apply import apply_configured
    from sync_service.writeback.report import WritebackReport

    settings = ctx.settings
    with _lock(ctx, "asks"), run_record(ctx.engine, "asks") as run:
        source = ctx.mappings(run).salesforce
        fields = AskFields.from_mapping(source)
        if source is None or fields is None or not source_enabled(settings, "salesforce"):
            run.counts["skipped"] = 1
            run.error = "asks are not mapped for Salesforce (with the guard fields); nothing to do"
            log.info(run.error)
            return run
        policy, problems = load_policy_or_last_valid(
            settings.rules_file, ctx.var_dir / SNAPSHOT_NAME
        )
        run.config_errors.extend(problems)
        connector = build_connector(settings, "salesforce", engine=ctx.engine, var_dir=ctx.var_dir)
        started = utcnow()
        since = guard_writes.stamp_window(ctx.engine, started, _overlap(ctx, "salesforce"))
        try:
            opts = IngestOptions(overlap=_overlap(ctx, "salesforce"), now=started)
            sync_source(ctx.engine, connector, [source.entities[Entity.ASK]], run, opts, stop)
            for status, n in guard_writes.stamp_requests(
                ctx.engine, policy, fields, since=since, now=started
            ).items():
                run.counts[f"stamped.{status.lower()}"] = n
            for key, n in guard_writes.apply_creates(
                ctx.engine, connector, fields, now=utcnow
            ).items():
                run.counts[f"asks.{key}"] = n
            report = WritebackReport(dry_run=False)
            apply_configured(
                ctx.engine,
                connector,
                guard_writes.stamp_target(fields),
                settings.writeback,
                report=report,
                run_id=run.id,
                now=utcnow,
                sleep=time.sleep,
            )
            run.counts["stamps.written"] = report.counts["success"]
            if report.stopped or run.counts.get("asks.pending"):
                run.mark_partial(report.stopped or "the CRM is unreachable; asks stay pending")
        except (ConfigError, BudgetExhaustedError):
            raise
        except ServiceError as exc:
            run.status = "failed"
            run.error = str(exc)
            log.error("asks run failed: %s", exc)
        finally:
            _record_usage(run, "salesforce", connector)
            connector.close()
    return run


def run_job(ctx: AppContext, job: str, *, stop: threading.Event | None = None) -> Run:
    """Run one scheduled job; a sync job is followed by evaluation and writeback.

    Raises:
        LockBusyError: another replica runs this job now (a skip, not a failure).
        ServiceError: the job failed; its run record says so already.
    """
    if job in SYNC_JOBS:
        run = sync_job(ctx, job, stop=stop)
        if run.status in ("success", "partial") and not (stop and stop.is_set()):
            _follow_up(ctx, stop)
        return run
    if job == "reconcile":
        run = reconcile_job(ctx, stop=stop)
        if run.status in ("success", "partial") and not (stop and stop.is_set()):
            _follow_up(ctx, stop)
        return run
    if job == "evaluate":
        return evaluate_job(ctx, stop=stop)
    if job == "evaluate_full":
        return evaluate_job(ctx, stop=stop, full=True)
    if job == "writeback":
        return writeback_job(ctx)
    if job == "cycle":
        return run_cycle(ctx, stop=stop)[-1]
    if job == "asks":
        return asks_job(ctx, stop=stop)
    msg = f"unknown job '{job}'; jobs are: {', '.join(JOBS)}"
    raise ConfigError(msg)


def _follow_up(ctx: AppContext, stop: threading.Event | None) -> None:
    if evaluated(evaluate_job(ctx, stop=stop)):
        writeback_job(ctx)
        match_job(ctx)


def run_cycle(
    ctx: AppContext,
    *,
    full: bool = False,
    stop: threading.Event | None = None,
    progress: ProgressHook | None = None,
) -> list[Run]:
    """One full cycle: every configured source, then evaluation, writeback and matching.

    Evaluation runs even when a source failed (its last good data still stands); writeback and
    the reference matching (when ``matching_file`` is set) run only after a successful
    evaluation.
    """
    runs: list[Run] = []
    for system in SYNC_JOBS:
        if not source_enabled(ctx.settings, system):
            continue
        runs.append(sync_job(ctx, system, full=full, stop=stop, progress=progress))
        if stop is not None and stop.is_set():
            return runs
    evaluation = evaluate_job(ctx, progress=progress, stop=stop)
    runs.append(evaluation)
    if evaluated(evaluation):
        runs.append(writeback_job(ctx, progress=progress))
        matched = match_job(ctx)
        if matched is not None:
            runs.append(matched)
    return runs
