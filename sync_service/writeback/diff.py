"""The diff: evaluations against what the CRM holds, into the outbox.

For one writeback target, evaluations are read in keyset-paged chunks (memory holds one chunk),
joined in the store with the target's CRM records (``extra['_crm']``, ``synced_at``), the last
confirmed written values (``writeback_state``) and the open outbox rows. Each record's changed
fields replace its open outbox row; a record with nothing to change loses its open row. No row,
no API call.

The caller owns the transaction: the blast-radius guard (and ``--dry-run``) roll it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_service.store.models import ERASED_KEY, evaluations
from sync_service.sync import changes
from sync_service.writeback.cursor import DiffCursor
from sync_service.writeback.guards import BlastRadiusGuard, Verdict, decide, is_overridden
from sync_service.writeback.outbox import OutboxChanges, load_open, load_written
from sync_service.writeback.report import Conflict, Sample, WritebackReport
from sync_service.writeback.targets import (
    WritebackTargetLike,
    entity_kind,
    link_column,
    record_table,
)
from sync_service.writeback.values import crm_values, desired_values, normalise

_EVALUATION_COLUMNS = (
    evaluations.c.entity_id,
    evaluations.c.status,
    evaluations.c.eligible,
    evaluations.c.score,
    evaluations.c.reason,
    evaluations.c.next_available,
    evaluations.c.recent_asks,
    evaluations.c.last_ask,
    evaluations.c.available_for,
    evaluations.c.policy_version,
)


def target_key(target: WritebackTargetLike) -> str:
    """``salesforce.Contact``: how reports and counters name a target object."""
    return f"{target.target}.{target.object_name}"


def _is_erased(extra: Any) -> bool:
    return isinstance(extra, dict) and bool(extra.get(ERASED_KEY))


def diff_target(
    conn: Connection,
    target: WritebackTargetLike,
    *,
    guard: BlastRadiusGuard,
    report: WritebackReport,
    now: datetime,
    run_id: int | None,
    chunk_size: int = 2000,
    write_erased: bool = True,
    since: DiffCursor | None = None,
) -> None:
    """Enqueue the changed fields of every record of ``target``; figures go to ``report``.

    ``write_erased=False`` leaves the records of people erased on request alone. ``since``:
    only the verdicts rewritten and the records whose written fields changed in the CRM (see
    :mod:`sync_service.writeback.cursor`); the others count for the blast-radius guard as
    unchanged, as a full diff would have counted them.
    """
    kind = entity_kind(target)
    table = record_table(target)
    link = link_column(target)
    which: list[Any] = [evaluations.c.entity_type == kind]
    if since is not None:
        read_again = changes.crm_marked(table, link, target.target, since.upto)
        which.append(
            sa.or_(
                evaluations.c.run_id > since.run_id,
                evaluations.c.run_id.is_(None),
                evaluations.c.entity_id.in_(read_again),
            )
        )
    last = ""
    seen = 0
    while True:
        chunk = list(
            conn.execute(
                sa.select(*_EVALUATION_COLUMNS)
                .where(*which, evaluations.c.entity_id > last)
                .order_by(evaluations.c.entity_id)
                .limit(chunk_size)
            ).mappings()
        )
        seen += len(chunk)
        if not chunk:
            if since is not None:
                _count_unseen(conn, target, kind, seen, guard, report)
            return
        last = str(chunk[-1]["entity_id"])
        by_entity = {str(e["entity_id"]): e for e in chunk}
        records = list(
            conn.execute(
                sa.select(
                    table.c.id,
                    link.label("entity_id"),
                    table.c.extra,
                    table.c.synced_at,
                    table.c.deleted,
                ).where(table.c.source == target.target, link.in_(list(by_entity)))
            ).mappings()
        )
        report.counts["missing"] += len(by_entity) - len({r["entity_id"] for r in records})
        if not write_erased:
            erased = [r for r in records if _is_erased(r["extra"])]
            if erased:
                report.counts["erased"] += len(erased)
                open_rows = load_open(
                    conn, target.target, target.object_name, [str(r["id"]) for r in erased]
                )
                drop = OutboxChanges(target.target, target.object_name, run_id, now)
                for existing in open_rows.values():
                    drop.drop(existing)
                drop.flush(conn)
                records = [r for r in records if not _is_erased(r["extra"])]
        _diff_chunk(conn, target, by_entity, records, guard, report, now, run_id)


def _count_unseen(
    conn: Connection,
    target: WritebackTargetLike,
    kind: str,
    seen: int,
    guard: BlastRadiusGuard,
    report: WritebackReport,
) -> None:
    """Count the verdicts an incremental diff skipped as unchanged records (the guard's base)."""
    total = conn.execute(
        sa.select(sa.func.count()).select_from(evaluations).where(evaluations.c.entity_type == kind)
    ).scalar_one()
    skipped = max(0, int(total) - seen)
    report.counts["not_rediffed"] += skipped
    guard.count_unchanged(target_key(target), skipped)


def _diff_chunk(
    conn: Connection,
    target: WritebackTargetLike,
    by_entity: Mapping[str, sa.RowMapping],
    records: Sequence[sa.RowMapping],
    guard: BlastRadiusGuard,
    report: WritebackReport,
    now: datetime,
    run_id: int | None,
) -> None:
    key = target_key(target)
    record_ids = [str(r["id"]) for r in records]
    written = load_written(conn, target.target, target.object_name, record_ids)
    open_rows = load_open(conn, target.target, target.object_name, record_ids)
    out = OutboxChanges(target.target, target.object_name, run_id, now)
    guards_status = "status" in target.fields
    for record in records:
        record_id = str(record["id"])
        existing = open_rows.get(record_id)
        if record["deleted"]:
            # Writing to a deleted record only earns ENTITY_IS_DELETED.
            report.counts["missing"] += 1
            out.drop(existing)
            continue
        crm = crm_values(record["extra"])
        if is_overridden(crm, target.override_field):
            report.counts["overridden"] += 1
            out.drop(existing)
            continue
        evaluation = by_entity[str(record["entity_id"])]
        desired = desired_values(evaluation)
        report.counts["records"] += 1
        fields: dict[str, Any] = {}
        olds: dict[str, Any] = {}
        status_changed = False
        for result, crm_field in target.fields.items():
            want = desired[result]
            decision = decide(
                result,
                want,
                written=written.get((record_id, crm_field)),
                crm_known=crm_field in crm,
                crm_value=normalise(result, crm.get(crm_field)),
                synced_at=record["synced_at"],
                owned=target.owned,
            )
            if decision.verdict is Verdict.UNCHANGED:
                continue
            if decision.verdict is Verdict.ADOPT:
                out.adopt(record_id, crm_field, want)
                report.counts["adopted"] += 1
                continue
            if decision.verdict in (Verdict.CONFLICT, Verdict.OVERWRITE):
                last_written = written.get((record_id, crm_field))
                report.add_conflict(
                    Conflict(
                        target=target.target,
                        object_name=target.object_name,
                        record_id=record_id,
                        field=crm_field,
                        written=last_written[0] if last_written else None,
                        current=decision.old,
                        desired=want,
                        overwritten=decision.verdict is Verdict.OVERWRITE,
                    )
                )
                if decision.verdict is Verdict.CONFLICT:
                    continue
            fields[crm_field] = want
            olds[crm_field] = decision.old
            if result == "status" and decision.old is not None:
                status_changed = True
        if guards_status:
            guard.count(key, status_changed=status_changed)
        if not fields:
            report.counts["unchanged"] += 1
            out.drop(existing)
            continue
        report.counts["changed"] += 1
        for crm_field in fields:
            report.field_counts[f"{key}.{crm_field}"] += 1
        report.add_sample(
            Sample(
                target.target,
                target.object_name,
                record_id,
                {f: (olds[f], fields[f]) for f in fields},
            )
        )
        if out.put(record_id, fields, olds, evaluation["policy_version"], existing):
            report.counts["enqueued"] += 1
        elif existing is not None and existing.state == "failed":
            report.counts["blocked"] += 1
    out.flush(conn)
