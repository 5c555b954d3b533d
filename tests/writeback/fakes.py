"""An in-memory CRM that honours Connector.write, and helpers to seed the store."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors.base import ApiUsage, Connector, RecordChange, Stream, StreamSpec, WriteResult
from sync_service.mapping.model import WritebackTarget
from sync_service.settings import WritebackSettings
from sync_service.store.models import accounts, contacts, evaluations
from sync_service.store.upsert import upsert

FIELDS = {
    "status": "Advocate_Status__c",
    "eligible": "Advocate_Eligible__c",
    "score": "Advocate_Score__c",
    "reason": "Advocate_Reason__c",
    "next_available": "Advocate_Next_Available__c",
}
OVERRIDE = "Advocate_Override__c"


def contact_target(
    owned: bool = True, fields: Mapping[str, str] | None = None, override: str | None = OVERRIDE
) -> WritebackTarget:
    return WritebackTarget(
        target="salesforce",
        entity="contact",
        object_name="Contact",
        fields=dict(fields or FIELDS),
        owned=owned,
        override_field=override,
    )


def settings(**kw: Any) -> WritebackSettings:
    base: dict[str, Any] = {"retry_base_seconds": 0.0, "min_records_for_guard": 50}
    base.update(kw)
    return WritebackSettings(**base)


class SimulatedCrash(RuntimeError):
    """The process died (raised from inside Connector.write)."""


@dataclass
class FakeCRM(Connector):
    """Records per object; per-record lock failures and refusals; crash injection.

    Calls are counted as sObject Collections would: one per 200 records.
    """

    system = "salesforce"
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    locks: dict[str, int] = field(default_factory=dict)  # record id -> lock failures left
    refuse: dict[str, tuple[str, str]] = field(default_factory=dict)
    crash_before_call: int | None = None
    crash_after_call: int | None = None
    write_calls: list[tuple[str, list[RecordChange]]] = field(default_factory=list)
    applied: list[tuple[str, str, str, Any]] = field(default_factory=list)
    calls: int = 0

    def stream(self, spec: StreamSpec) -> Stream:
        raise NotImplementedError

    def write(self, object_name: str, changes: Sequence[RecordChange]) -> list[WriteResult]:
        self.write_calls.append((object_name, list(changes)))
        n = len(self.write_calls)
        if self.crash_before_call == n:
            raise SimulatedCrash("killed before the CRM saw the call")
        self.calls += math.ceil(len(changes) / 200)
        results: list[WriteResult] = []
        for change in changes:
            rid = change.record_id
            if rid in self.refuse:
                code, message = self.refuse[rid]
                results.append(WriteResult(rid, False, code, message, retryable=False))
                continue
            if self.locks.get(rid, 0) > 0:
                self.locks[rid] -= 1
                results.append(
                    WriteResult(
                        rid,
                        False,
                        "UNABLE_TO_LOCK_ROW",
                        "unable to obtain exclusive access to this record",
                        retryable=True,
                    )
                )
                continue
            record = self.data.setdefault(object_name, {}).setdefault(rid, {})
            for f, v in change.fields.items():
                record[f] = v
                self.applied.append((object_name, rid, f, v))
            results.append(WriteResult(rid, True))
        if self.crash_after_call == n:
            raise SimulatedCrash("killed after the CRM applied the call")
        return results

    def usage(self) -> ApiUsage:
        return ApiUsage(calls=self.calls)


def evaluation(
    status: str = "Eligible",
    eligible: bool = True,
    score: float | None = 50.0,
    reason: str | None = "opted in, promoter",
    next_available: date | None = None,
    policy_version: str = "v1",
) -> dict[str, Any]:
    return {
        "status": status,
        "eligible": eligible,
        "score": score,
        "reason": reason,
        "next_available": next_available,
        "policy_version": policy_version,
    }


def seed_evaluations(
    engine: Engine, rows: Mapping[str, Mapping[str, Any]], entity_type: str = "contact"
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        upsert(
            conn,
            evaluations,
            [
                {
                    "entity_type": entity_type,
                    "entity_id": eid,
                    "details": {},
                    "policy_hash": "h",
                    "evaluated_at": now,
                    **dict(values),
                }
                for eid, values in rows.items()
            ],
        )


def sync_records(
    engine: Engine,
    crm_values: Mapping[str, Mapping[str, Any]],
    *,
    table: sa.Table = contacts,
    source: str = "salesforce",
    links: Mapping[str, str] | None = None,
    deleted: frozenset[str] = frozenset(),
    synced_at: datetime | None = None,
) -> None:
    """What ingest leaves in the store: one row per record with ``extra['_crm']``."""
    when = synced_at or datetime.now(UTC)
    rows = []
    for rid, values in crm_values.items():
        row: dict[str, Any] = {
            "source": source,
            "id": rid,
            "extra": {"_crm": dict(values)},
            "synced_at": when,
            "deleted": rid in deleted,
        }
        if links is not None:
            row["sf_account_id" if table is accounts else "sf_contact_id"] = links[rid]
        rows.append(row)
    with engine.begin() as conn:
        upsert(conn, table, rows)


def sync_from(engine: Engine, crm: FakeCRM, object_name: str = "Contact") -> None:
    """Re-sync every record the fake CRM holds (as the next incremental pull would)."""
    sync_records(engine, crm.data.get(object_name, {}))


def blank() -> dict[str, Any]:
    """A record whose writeback fields were never set."""
    return {f: None for f in FIELDS.values()} | {OVERRIDE: False}
