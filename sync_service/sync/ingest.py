"""Pull streams into the store: rows and their watermark committed together.

The watermark rules (tests name them):

* **Closed lower bound with an overlap.** A run starts reading at the saved cursor moved back by
  the overlap window, so rows the CRM committed late, just below the old watermark, are read
  again. Upserts by primary key make the repeats harmless. The overlap reaches back from where
  the last *finished* read ended (``read_until``), not further: after a quiet spell a run starts
  at the cursor, so a burst just below it (our own writeback's echo) is not read on every cycle.
* **Rows and cursor in one transaction.** Each batch's rows, its quarantined records and the
  cursor of its last record commit together: a crash (even ``kill -9``) resumes after the last
  committed batch, with no gap and no duplicate. Batches that do not move the cursor (a Bulk
  read's, whose cursor moves only with its last batch) share a transaction, up to
  ``SHARED_COMMIT_ROWS`` records: a crash would read them again anyway, and on SQLite each
  commit writes every index page its rows touched, so fewer commits write about half as much.
* **The cursor only moves forward** and never past the run's start time (streams read up to
  ``until``), so a ``--full`` resync that dies half-way does not drag the next incremental run
  back to the beginning.
* **Erased people stay erased.** Rows naming a person erased on request are stripped of their
  personal data before they are written (``IngestOptions.scrub``; see
  :mod:`sync_service.privacy.tombstones`), in the batch's own transaction.
* **Suppress, never delete.** A record deleted in the CRM is kept with ``deleted = true``;
  reconciliation marks rows the CRM no longer has at all (hard deletes) the same way.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical.errors import FatalApiError, MappingError, RecordError, ServiceError
from canonical.model import Entity
from canonical.redaction import mask_emails
from connectors.base import Batch, Connector, Cursor, StreamSpec
from sync_service.ops.progress import ProgressHook
from sync_service.ops.runs import Run, utcnow
from sync_service.store.initial_load import deferred_indexes, restore_indexes
from sync_service.store.models import (
    CANONICAL_TABLES,
    privacy_tombstones,
    quarantine,
    sync_state,
)
from sync_service.store.upsert import PreparedUpsert, prepare_upsert, upsert
from sync_service.sync import changes, completeness
from sync_service.sync.gc_pause import fewer_collections
from sync_service.sync.readahead import read_ahead

log = logging.getLogger(__name__)


#: Records of batches that do not move the cursor written in one transaction at most.
SHARED_COMMIT_ROWS = 50_000


class RowScrubber(Protocol):
    """Strips the rows of people erased on request before they are stored (privacy)."""

    def __call__(
        self, entity: Entity, rows: list[dict[str, Any]], bad: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Strip ``rows`` and quarantined ``bad`` records in place; return tombstones to add."""
        ...


class EntityMappingLike(Protocol):
    """What ingest needs of an entity mapping (see :mod:`sync_service.mapping`)."""

    entity: Entity

    def stream_spec(self) -> StreamSpec:
        """The stream to read for this entity."""
        ...

    def to_row(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The canonical row for a raw record; raises RecordError for a bad one."""
        ...


class SourceMappingLike(Protocol):
    """What ingest needs of a source mapping."""

    system: str

    @property
    def entities(self) -> dict[Entity, Any]:
        """Entity mappings in sync order."""
        ...


@dataclass(frozen=True)
class IngestOptions:
    """How one sync reads.

    Attributes:
        overlap: how far before the saved cursor a run starts reading again.
        full: read every record from the beginning (upserts; nothing is dropped).
        now: the run's start time; streams read up to it.
        progress: told ``(stream, records, total)`` after each committed batch (a terminal's
            bar); ``total`` is what the CRM counted for the read, when it counted.
        scrub: strips the rows of erased people before they are stored (see
            :mod:`sync_service.privacy.tombstones`); None stores rows as mapped.
    """

    overlap: timedelta
    now: datetime
    full: bool = False
    progress: ProgressHook | None = None
    scrub: RowScrubber | None = None


def read_cursor(conn: Connection, connector: str, stream: str) -> Cursor | None:
    """The saved cursor of a stream, or None before its first sync."""
    row = conn.execute(
        sa.select(sync_state.c.cursor_updated_at, sync_state.c.cursor_id).where(
            sync_state.c.connector == connector, sync_state.c.stream == stream
        )
    ).first()
    if row is None or row.cursor_updated_at is None:
        return None
    return Cursor(row.cursor_updated_at, row.cursor_id or "")


def _save_cursor(conn: Connection, connector: str, stream: str, cursor: Cursor) -> None:
    current = read_cursor(conn, connector, stream)
    if current is not None and current >= cursor:
        return
    upsert(
        conn,
        sync_state,
        [
            {
                "connector": connector,
                "stream": stream,
                "cursor_updated_at": cursor.updated_at,
                "cursor_id": cursor.record_id,
                "updated_at": utcnow(),
            }
        ],
    )


def _mark_state(conn: Connection, connector: str, stream: str, **values: Any) -> None:
    upsert(
        conn,
        sync_state,
        [{"connector": connector, "stream": stream, "updated_at": utcnow(), **values}],
    )


def spec_digest(spec: StreamSpec) -> str:
    """A stable fingerprint of what a stream reads (object, fields, keys, filters)."""
    return hashlib.sha256(repr(spec).encode()).hexdigest()[:32]


def _saved_digest(conn: Connection, connector: str, stream: str) -> str | None:
    value = conn.execute(
        sa.select(sync_state.c.mapping_digest).where(
            sync_state.c.connector == connector, sync_state.c.stream == stream
        )
    ).scalar()
    return str(value) if value is not None else None


def _read_until(conn: Connection, connector: str, stream: str) -> datetime | None:
    value = conn.execute(
        sa.select(sync_state.c.read_until).where(
            sync_state.c.connector == connector, sync_state.c.stream == stream
        )
    ).scalar()
    return value if isinstance(value, datetime) else None


def start_cursor(
    conn: Connection, connector: str, stream: str, opts: IngestOptions
) -> Cursor | None:
    """Where a run starts reading: nothing for a full sync, else the cursor minus the overlap.

    The overlap exists for rows committed late, within ``overlap`` of their timestamp. A read
    that *finished* at ``read_until`` has seen every row stamped before ``read_until - overlap``,
    so after a quiet spell the run starts at the cursor itself rather than a whole overlap before
    it: otherwise the last busy minutes (the echo of a large writeback, say) are read again on
    every cycle until something newer moves the cursor.
    """
    if opts.full:
        return None
    saved = read_cursor(conn, connector, stream)
    if saved is None:
        return None
    start = saved.updated_at - opts.overlap
    until = _read_until(conn, connector, stream)
    if until is not None:
        start = max(start, min(saved.updated_at, until - opts.overlap))
    return Cursor(start, "")


def _rows(
    mapping: EntityMappingLike,
    records: Iterable[dict[str, Any]],
    system: str,
    stream: str,
    run: Run,
    synced_at: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    pk = mapping.stream_spec().primary_key
    for raw in records:
        try:
            row = mapping.to_row(raw)
        except RecordError as exc:
            record_id = exc.record_id or (str(raw.get(pk)) if raw.get(pk) else None)
            bad.append(
                {
                    "connector": system,
                    "stream": stream,
                    "record_id": record_id,
                    "reason": exc.reason,
                    "payload": _jsonable(raw),
                    "created_at": synced_at,
                    "run_id": run.id,
                }
            )
            continue
        row["source"] = system
        row["synced_at"] = synced_at
        rows.append(row)
    return rows, bad


def _mapped(
    mapping: EntityMappingLike,
    records: Iterable[dict[str, Any]],
    system: str,
    stream: str,
    run: Run,
    opts: IngestOptions,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows, quarantined records and new tombstones of a batch, erased people stripped."""
    rows, bad = _rows(mapping, records, system, stream, run, opts.now)
    tombs = opts.scrub(mapping.entity, rows, bad) if opts.scrub is not None else []
    return rows, bad, tombs


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    # The payload helps an admin find the bad value; contact emails are personal data that an
    # admin can look up by record id, so they are kept as a stable hash only.
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            out[key] = mask_emails(value)
        elif isinstance(value, int | float | bool | type(None)):
            out[key] = value
        else:
            out[key] = mask_emails(str(value))
    return out


def _write_quarantine(conn: Connection, bad: list[dict[str, Any]]) -> None:
    system_stream = (bad[0]["connector"], bad[0]["stream"]) if bad else None
    if bad and system_stream:
        ids = [b["record_id"] for b in bad if b["record_id"]]
        if ids:
            # One open entry per record: a record read again in the overlap is not a new problem.
            conn.execute(
                quarantine.delete().where(
                    quarantine.c.connector == system_stream[0],
                    quarantine.c.stream == system_stream[1],
                    quarantine.c.record_id.in_(ids),
                    quarantine.c.resolved.is_(False),
                )
            )
        conn.execute(quarantine.insert(), bad)


def _resolve_quarantine(conn: Connection, system: str, stream: str, good_ids: list[str]) -> None:
    # A record fixed at the source leaves quarantine the next time it is read cleanly.
    conn.execute(
        quarantine.update()
        .where(
            quarantine.c.connector == system,
            quarantine.c.stream == stream,
            quarantine.c.record_id.in_(good_ids),
            quarantine.c.resolved.is_(False),
        )
        .values(resolved=True)
    )


def _open_quarantine(conn: Connection, system: str, stream: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(quarantine)
            .where(
                quarantine.c.connector == system,
                quarantine.c.stream == stream,
                quarantine.c.resolved.is_(False),
            )
        ).scalar_one()
    )


def _report(
    run: Run,
    opts: IngestOptions,
    system: str,
    stream: str,
    batches: list[tuple[int, list[dict[str, Any]]]],
    total: int | None = None,
) -> None:
    """Count committed batches on the run, tell the progress bar, warn of quarantined records."""
    for rows, bad in batches:
        run.add(f"records.{stream}", rows)
        if opts.progress is not None:
            opts.progress(f"{system}.{stream}", rows + len(bad), total)
        if bad:
            run.add(f"quarantined.{stream}", len(bad))
            log.warning(
                "%d %s record(s) quarantined, e.g. %s: %s",
                len(bad),
                stream,
                bad[0]["record_id"],
                bad[0]["reason"],
            )


def sync_stream(
    engine: Engine,
    connector: Connector,
    mapping: EntityMappingLike,
    run: Run,
    opts: IngestOptions,
    stop: threading.Event | None = None,
) -> bool:
    """Read one stream since its cursor into the store; return False if stopped early.

    Raises:
        ConnectorError: from the connector (the batches before it stay committed).
    """
    spec = mapping.stream_spec()
    system = connector.system
    table = CANONICAL_TABLES[mapping.entity]
    digest = spec_digest(spec)
    with engine.connect() as conn:
        since = start_cursor(conn, system, spec.name, opts)
        saved_digest = _saved_digest(conn, system, spec.name)
        has_quarantine = _open_quarantine(conn, system, spec.name) > 0
        saved = read_cursor(conn, system, spec.name)
        restore_indexes(conn, table)  # a first load killed before it built them
        # Incomplete until it finishes, whatever stops it (even kill -9): see sync.completeness.
        completeness.mark_started(conn, system, spec.name, str(mapping.entity))
        conn.commit()
    if since is not None and saved_digest not in (None, digest):
        log.info("the mapping of %s.%s changed: reading it again in full", system, spec.name)
        run.add(f"remapped.{spec.name}")
        since = None
    log.info(
        "sync %s.%s from %s", system, spec.name, since.updated_at.isoformat() if since else "start"
    )
    stream = connector.stream(spec)

    # The next batch is read, mapped and turned into upsert parameters (Python work) while this
    # one is written (mostly SQLite's, without the GIL); see sync.readahead. Batches are
    # still written in order, each with its cursor in the transaction that commits it.
    def batches() -> Iterator[
        tuple[
            Batch,
            list[dict[str, Any]],
            list[dict[str, Any]],
            list[dict[str, Any]],
            PreparedUpsert | None,
        ]
    ]:
        for batch in stream.read(since, opts.now):
            rows, bad, marks = _mapped(mapping, batch.records, system, spec.name, run, opts)
            write = prepare_upsert(engine.dialect, table, rows) if rows else None
            yield batch, rows, bad, marks, write

    prepared = read_ahead(batches(), name=f"read-{spec.name}")
    with (
        fewer_collections(),
        deferred_indexes(engine, table, first_load=since is None),
        closing(prepared),
    ):
        conn = engine.connect()
        # Only counts and quarantined records wait for the commit: rows are let go once written.
        uncommitted: list[tuple[int, list[dict[str, Any]]]] = []
        held = 0  # records in the open transaction
        try:
            for batch, rows, bad, tombs, write in prepared:
                if write is not None:
                    # the marks commit with the rows they describe (sync.changes)
                    if since is None:
                        changes.mark_full(conn, system, spec.name, opts.now)
                    else:
                        changed = changes.changed_marks(
                            conn, table, system, rows, opts.now, spec.object_name
                        )
                        changes.write_marks(conn, changed)
                        if changes.input_marks(changed):
                            run.add(f"changed.{spec.name}", changes.input_marks(changed))
                    write.execute(conn)
                if tombs:
                    upsert(conn, privacy_tombstones, tombs)
                if bad:
                    _write_quarantine(conn, bad)
                    has_quarantine = True
                if has_quarantine and rows:
                    _resolve_quarantine(conn, system, spec.name, [r["id"] for r in rows])
                moves = False
                if batch.cursor is not None and (saved is None or batch.cursor > saved):
                    _save_cursor(conn, system, spec.name, batch.cursor)
                    saved, moves = batch.cursor, True
                uncommitted.append((len(rows), bad))
                held += len(rows) + len(bad)
                stopping = stop is not None and stop.is_set()
                if moves or stopping or held >= SHARED_COMMIT_ROWS:
                    conn.commit()
                    _report(run, opts, system, spec.name, uncommitted, stream.last_count)
                    uncommitted, held = [], 0
                if stopping:
                    return False
            conn.commit()
            _report(run, opts, system, spec.name, uncommitted, stream.last_count)
        finally:
            conn.close()  # rolls back what was not committed
    with engine.begin() as conn:
        # read_until: every row stamped before it (less the overlap) has now been seen
        marks: dict[str, Any] = {
            "mapping_digest": digest,
            "read_until": opts.now,
            **completeness.COMPLETE,
        }
        if opts.full or since is None:
            marks["last_full_sync_at"] = opts.now
        _mark_state(conn, system, spec.name, **marks)
    return True


def sync_source(
    engine: Engine,
    connector: Connector,
    entities: Iterable[EntityMappingLike],
    run: Run,
    opts: IngestOptions,
    stop: threading.Event | None = None,
) -> None:
    """Sync every stream of one source, in order.

    A stream the CRM rejects as configured (unknown field, no access) fails alone: the others
    still sync and the run ends failed with every such error listed. A budget stop or an
    exhausted retry ends the source at once (the run record turns it into partial or failed).
    """
    failures: list[str] = []
    entities = list(entities)
    # Every stream of the source is incomplete until its own sync finishes: a run stopped
    # (or killed) after the first stream leaves the streams it never reached marked as well,
    # so no evaluation sees this run's contacts beside last run's asks, or a half first load.
    with engine.begin() as conn:
        for mapping in entities:
            spec = mapping.stream_spec()
            completeness.mark_started(conn, connector.system, spec.name, str(mapping.entity))
    for mapping in entities:
        if stop is not None and stop.is_set():
            run.mark_partial("stopped by shutdown; the next run resumes from the saved cursors")
            return
        name = mapping.stream_spec().name
        try:
            finished = sync_stream(engine, connector, mapping, run, opts, stop)
        except (FatalApiError, MappingError) as exc:
            failures.append(f"{connector.system}.{name}: {exc}")
            log.error("stream %s failed: %s", name, exc)
            completeness.mark_reason(engine, connector.system, name, f"failed: {exc}")
            continue
        except ServiceError as exc:  # budget spent, retries exhausted: the source stops here
            completeness.mark_reason(engine, connector.system, name, f"stopped short: {exc}")
            raise
        if not finished:
            completeness.mark_reason(engine, connector.system, name, "stopped by shutdown")
            run.mark_partial("stopped by shutdown; the next run resumes from the saved cursors")
            return
    if failures:
        run.status = "failed"
        run.error = "; ".join(failures)


def reconcile_stream(
    engine: Engine,
    connector: Connector,
    mapping: EntityMappingLike,
    run: Run,
    opts: IngestOptions,
    stop: threading.Event | None = None,
) -> bool:
    """Re-read a whole stream, refresh every row, and mark rows the CRM no longer has deleted.

    Formula and roll-up fields change without touching the replication key, and hard deletes
    never show up in an incremental read: only a full pass sees both. Ids seen are kept in a
    temporary table, so memory stays bounded whatever the org's size. The cursor is not moved.
    Returns False if stopped early (then nothing is marked deleted).
    """
    spec = mapping.stream_spec()
    system = connector.system
    table = CANONICAL_TABLES[mapping.entity]
    seen = sa.Table(
        f"tmp_seen_{spec.name}",
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
        prefixes=["TEMPORARY"],
    )
    refreshed = 0
    with engine.connect() as conn:
        seen.create(conn)
        conn.commit()
        try:
            for batch in connector.stream(spec).read(None, opts.now):
                rows, bad, tombs = _mapped(mapping, batch.records, system, spec.name, run, opts)
                live = [r["id"] for r in rows if not r.get("deleted")]
                live += [str(b["record_id"]) for b in bad if b["record_id"]]
                if rows:
                    # formula fields change without the replication key: marked like any change
                    marks = changes.changed_marks(
                        conn, table, system, rows, opts.now, spec.object_name
                    )
                    changes.write_marks(conn, marks)
                    if changes.input_marks(marks):
                        run.add(f"reconcile.changed.{spec.name}", changes.input_marks(marks))
                    upsert(conn, table, rows)
                if tombs:
                    upsert(conn, privacy_tombstones, tombs)
                if bad:
                    _write_quarantine(conn, bad)
                if live:
                    upsert(conn, seen, [{"id": i} for i in live])
                conn.commit()
                refreshed += len(rows)
                if stop is not None and stop.is_set():
                    return False
            vanished = sa.and_(
                table.c.source == system,
                table.c.deleted.is_(False),
                table.c.id.not_in(sa.select(seen.c.id)),
            )
            changes.mark_where(conn, table, vanished, opts.now)
            gone = conn.execute(
                table.update().where(vanished).values(deleted=True, synced_at=opts.now)
            ).rowcount
            _mark_state(conn, system, spec.name, last_reconciled_at=opts.now)
            conn.commit()
        finally:
            seen.drop(conn, checkfirst=True)
            conn.commit()
    run.add(f"reconcile.refreshed.{spec.name}", refreshed)
    run.add(f"reconcile.hard_deleted.{spec.name}", gone)
    if gone:
        log.warning(
            "reconcile %s.%s: %d row(s) gone from the CRM, marked deleted", system, spec.name, gone
        )
    return True
