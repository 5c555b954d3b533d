"""The data both servers and the test helpers share: read, validate and write records.

Writes validate the way Salesforce does (unknown field, read-only field, restricted picklist,
string length, type, number range) and bump ``LastModifiedDate``/``SystemModstamp`` (Gainsight:
``ModifiedDate``) with a clock that never goes backwards.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.ids import gsid, is_sf_id, sf_id, to18
from sandbox.schema import (
    BOOLEAN_TYPES,
    INT_TYPES,
    NUMBER_TYPES,
    Field,
    ObjectDef,
)
from sandbox.store import GAINSIGHT, SALESFORCE, SandboxStore, quote

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class RecordError:
    """One per-record error, in Salesforce's terms."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """As sObject Collections and the REST API list it."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_bulk(self) -> str:
        """As Bulk API 2.0's ``sf__Error`` column shows it."""
        return f"{self.status_code}:{self.message}:{','.join(self.fields)} --"


class UnknownFieldError(Exception):
    """A write named a field the object does not have (Salesforce rejects the whole request)."""

    def __init__(self, obj: str, name: str) -> None:
        super().__init__(f"No such column '{name}' on sobject of type {obj}")
        self.obj = obj
        self.name = name


def sf_text(value: dt.datetime) -> str:
    """Salesforce datetime text."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def gs_text(value: dt.datetime) -> str:
    """Gainsight datetime text."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_any_datetime(text: str) -> dt.datetime:
    """Parse ISO datetimes as either system writes them (``Z``, ``+0000``, ``+00:00``)."""
    norm = text.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", norm):
        norm = norm[:-2] + ":" + norm[-2:]
    value = dt.datetime.fromisoformat(norm)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Org:
    """Both systems' records, with Salesforce's write rules."""

    def __init__(self, store: SandboxStore, now: dt.datetime) -> None:
        self.store = store
        self.now = now
        self._clock_lock = threading.Lock()
        self._last = now
        self._counters: dict[str, int] = {}

    # -- schema lookups ----------------------------------------------------------------------
    def system_of(self, obj: str) -> str:
        """Which system holds ``obj`` (Salesforce and Gainsight object names do not collide)."""
        for system, objects in self.store.schemas.items():
            if obj in objects:
                return system
        msg = f"unknown object {obj!r}"
        raise KeyError(msg)

    def objdef(self, obj: str) -> ObjectDef:
        """The schema of ``obj``."""
        return self.store.schemas[self.system_of(obj)][obj]

    def key(self, obj: str) -> str:
        """The primary key field of ``obj``."""
        return "Id" if self.system_of(obj) == SALESFORCE else "Gsid"

    # -- clock -------------------------------------------------------------------------------
    def tick(self) -> dt.datetime:
        """Now (to the millisecond), never before the previous tick or the seed's reference time.

        Writes within one millisecond share it, as writes within one second share a
        SystemModstamp in a real org: the (SystemModstamp, Id) cursor must cope with ties. A
        clock that moved on by a millisecond per write instead ran ahead of the wall clock in
        a burst (a writeback of a few hundred records), so that a sync started right after
        bounded its read by a ``now`` earlier than the latest edits and left them for the next.
        """
        with self._clock_lock:
            now = dt.datetime.now(dt.UTC)
            now = max(now.replace(microsecond=now.microsecond // 1000 * 1000), self._last)
            self._last = now
            return now

    def new_id(self, obj: str) -> str:
        """A fresh id for a new record of ``obj``."""
        system = self.system_of(obj)
        with self._clock_lock:
            n = self._counters.get(obj)
            if n is None:
                table = self.store.table(system, obj)
                n = self.store.fetchone(f"SELECT COUNT(*) FROM {table}")[0] + 10_000_000
            n += 1
            self._counters[obj] = n
        od = self.objdef(obj)
        return sf_id(od.key_prefix, n) if system == SALESFORCE else gsid(od.key_prefix, n)

    # -- reading -----------------------------------------------------------------------------
    def decode(self, f: Field, value: Any) -> Any:
        """A stored value as the API shows it."""
        if value is None:
            return None
        if f.type in BOOLEAN_TYPES:
            return bool(value)
        if f.type in INT_TYPES:
            return int(value)
        if f.type in NUMBER_TYPES:
            return float(value)
        return value

    def iter_records(self, obj: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every record of ``obj`` as a dict of API values (streamed in chunks)."""
        system = self.system_of(obj)
        od = self.objdef(obj)
        fields = list(od.fields.values())
        cols = ", ".join(quote(f.name) for f in fields)
        where = "" if include_deleted or system == GAINSIGHT else ' WHERE "IsDeleted" = 0'
        table = self.store.table(system, obj)
        last = 0
        while True:
            with self.store.lock:
                rows = self.store.conn.execute(
                    f"SELECT rowid, {cols} FROM {table}"
                    f"{where}{' AND' if where else ' WHERE'} rowid > ? ORDER BY rowid LIMIT 5000",
                    (last,),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield {f.name: self.decode(f, v) for f, v in zip(fields, row[1:], strict=True)}
            last = rows[-1][0]

    def get(self, obj: str, record_id: str) -> dict[str, Any] | None:
        """One record by id (deleted ones too), or None."""
        system = self.system_of(obj)
        od = self.objdef(obj)
        fields = list(od.fields.values())
        cols = ", ".join(quote(f.name) for f in fields)
        key = self.key(obj)
        row = self.store.fetchone(
            f"SELECT {cols} FROM {self.store.table(system, obj)} WHERE {quote(key)} = ?",
            (to18(record_id) if system == SALESFORCE else record_id,),
        )
        if row is None:
            return None
        return {f.name: self.decode(f, v) for f, v in zip(fields, row, strict=True)}

    # -- validation --------------------------------------------------------------------------
    def coerce(
        self, od: ObjectDef, name: str, value: Any, *, check_access: bool = True
    ) -> tuple[str, Any, RecordError | None]:
        """Validate one field value for a write: (canonical name, stored value, error)."""
        f = od.field(name)
        if f is None:
            raise UnknownFieldError(od.name, name)
        label = f.label or f.name
        if check_access and not f.updateable:
            return (
                f.name,
                None,
                RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                ),
            )
        if value is None or value == "":
            if f.type in BOOLEAN_TYPES:
                return f.name, 0, None
            if not f.nillable:
                return (
                    f.name,
                    None,
                    RecordError(
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{f.name}]",
                        [f.name],
                    ),
                )
            return f.name, None, None
        bad_type = RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            f"{label}: value not of required type: {str(value)[:40]}",
            [f.name],
        )
        if f.type in BOOLEAN_TYPES:
            if isinstance(value, bool):
                return f.name, int(value), None
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return f.name, int(value.lower() in ("true", "1")), None
            return f.name, None, bad_type
        if f.type in NUMBER_TYPES:
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None:
                return f.name, None, bad_type
            if f.precision:
                limit = 10 ** (f.precision - f.scale)
                if abs(number) >= limit:
                    return (
                        f.name,
                        None,
                        RecordError(
                            "NUMBER_OUTSIDE_VALID_RANGE",
                            f"{label}: value outside of valid range on numeric field: {value}",
                            [f.name],
                        ),
                    )
            return f.name, int(number) if f.type in INT_TYPES else number, None
        if not isinstance(value, str):
            return f.name, None, bad_type
        if f.type == "date":
            text = value.strip()[:10] if "T" in value else value.strip()
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                return f.name, None, bad_type
            if not _DATE_RE.match(text):
                return f.name, None, bad_type
            return f.name, text, None
        if f.type == "datetime":
            try:
                parsed = parse_any_datetime(value)
            except ValueError:
                return f.name, None, bad_type
            if od.name in self.store.schemas[GAINSIGHT]:
                return f.name, gs_text(parsed), None
            return f.name, sf_text(parsed), None
        if f.type in ("reference", "id"):
            ref = to18(value)
            if not is_sf_id(ref):
                return (
                    f.name,
                    None,
                    RecordError(
                        "MALFORMED_ID",
                        f"{label}: id value of incorrect type: {value}",
                        [f.name],
                    ),
                )
            return f.name, ref, None
        # a multi-select holds ';'-separated values, each of which must be allowed
        chosen = value.split(";") if f.type == "multipicklist" else [value]
        if f.picklist and f.restricted and any(v not in f.picklist for v in chosen):
            return (
                f.name,
                None,
                RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{label}: bad value for restricted picklist field: {value}",
                    [f.name],
                ),
            )
        if f.length and len(value) > f.length:
            return (
                f.name,
                None,
                RecordError(
                    "STRING_TOO_LONG",
                    f"{label}: data value too large: {value[:40]}... (max length={f.length})",
                    [f.name],
                ),
            )
        return f.name, value, None

    def validate_update(
        self, obj: str, record_id: Any, values: dict[str, Any]
    ) -> tuple[str, dict[str, Any], list[RecordError]]:
        """Check an update of one record: (18-char id, stored values, errors).

        Raises UnknownFieldError when a field does not exist.
        """
        od = self.objdef(obj)
        errors: list[RecordError] = []
        rid = to18(str(record_id or ""))
        if not is_sf_id(rid) or not rid.startswith(od.key_prefix):
            errors.append(
                RecordError(
                    "MALFORMED_ID",
                    f"{od.label} ID: id value of incorrect type: {record_id}",
                    ["Id"],
                )
            )
        stored: dict[str, Any] = {}
        for name, value in values.items():
            col, val, err = self.coerce(od, name, value)
            if err is not None:
                errors.append(err)
            else:
                stored[col] = val
        if not errors:
            row = self.store.fetchone(
                f'SELECT "IsDeleted" FROM {self.store.table(SALESFORCE, obj)} WHERE "Id" = ?',
                (rid,),
            )
            if row is None:
                errors.append(
                    RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
                )
            elif row[0]:
                errors.append(RecordError("ENTITY_IS_DELETED", "entity is deleted", []))
        return rid, stored, errors

    # -- writing -----------------------------------------------------------------------------
    def _derived(self, obj: str, stored: dict[str, Any], current: dict[str, Any] | None) -> None:
        """Fields Salesforce computes: Contact.Name, IsClosed/IsWon from stage or status."""
        if obj == "Contact" and ("FirstName" in stored or "LastName" in stored):
            cur = current or {}
            first = stored.get("FirstName", cur.get("FirstName")) or ""
            last = stored.get("LastName", cur.get("LastName")) or ""
            stored.setdefault("Name", f"{first} {last}".strip())
        if obj == "Opportunity" and "StageName" in stored:
            stage = stored["StageName"] or ""
            stored.setdefault("IsClosed", int(stage.startswith("Closed")))
            stored.setdefault("IsWon", int(stage == "Closed Won"))
        if obj == "Case" and "Status" in stored:
            closed = stored["Status"] == "Closed"
            stored.setdefault("IsClosed", int(closed))
            stored.setdefault("ClosedDate", sf_text(self.tick()) if closed else None)

    def apply_updates(self, obj: str, updates: list[tuple[str, dict[str, Any]]]) -> None:
        """Write validated updates (key, stored values) in one transaction, bumping stamps."""
        if not updates:
            return
        system = self.system_of(obj)
        table = self.store.table(system, obj)
        key = self.key(obj)
        with self.store.lock:
            self.store.conn.execute("BEGIN")
            try:
                for rid, values in updates:
                    values = dict(values)
                    stamp = self.tick()
                    if system == SALESFORCE:
                        needs_current = obj == "Contact" and (
                            "FirstName" in values or "LastName" in values
                        )
                        current = self.get(obj, rid) if needs_current else None
                        self._derived(obj, values, current)
                        values["LastModifiedDate"] = values["SystemModstamp"] = sf_text(stamp)
                    else:
                        values["ModifiedDate"] = gs_text(stamp)
                    sets = ", ".join(f"{quote(k)} = ?" for k in values)
                    self.store.conn.execute(
                        f"UPDATE {table} SET {sets} WHERE {quote(key)} = ?",
                        [*values.values(), rid],
                    )
            except BaseException:
                self.store.conn.execute("ROLLBACK")
                raise
            self.store.conn.execute("COMMIT")

    def insert(self, obj: str, values: dict[str, Any]) -> str:
        """Create a record from already validated stored values; return its id."""
        system = self.system_of(obj)
        key = self.key(obj)
        rid = self.new_id(obj)
        stamp = self.tick()
        values = dict(values)
        values[key] = rid
        if system == SALESFORCE:
            self._derived(obj, values, None)
            text = sf_text(stamp)
            values.update(CreatedDate=text, LastModifiedDate=text, SystemModstamp=text)
            values.setdefault("IsDeleted", 0)
            if obj == "Reference_Request__c":
                values.setdefault("Name", f"RR-{rid[-9:-3]}")
            if obj == "Case":
                values.setdefault("CaseNumber", rid[-11:-3])
        else:
            text = gs_text(stamp)
            values.update(CreatedDate=text, ModifiedDate=text)
            if obj == "Person" and ("FirstName" in values or "LastName" in values):
                values["Name"] = (
                    f"{values.get('FirstName') or ''} {values.get('LastName') or ''}".strip()
                )
        self.store.insert_rows(system, obj, list(values), [list(values.values())])
        return rid

    # -- deletes and merges ------------------------------------------------------------------
    def soft_delete(self, obj: str, record_id: str) -> None:
        """Move a record to the recycle bin: ``IsDeleted`` true, visible to queryAll only."""
        rid = to18(record_id)
        stamp = sf_text(self.tick())
        self.store.execute(
            f'UPDATE {self.store.table(SALESFORCE, obj)} SET "IsDeleted" = 1, '
            '"LastModifiedDate" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
            (stamp, stamp, rid),
        )

    def hard_delete(self, obj: str, record_id: str) -> None:
        """Remove a record for good (gone from queryAll too: only an id-set diff notices)."""
        system = self.system_of(obj)
        key = self.key(obj)
        rid = to18(record_id) if system == SALESFORCE else record_id
        self.store.execute(
            f"DELETE FROM {self.store.table(system, obj)} WHERE {quote(key)} = ?", (rid,)
        )

    def merge(self, obj: str, winner_id: str, loser_id: str) -> None:
        """Merge ``loser`` into ``winner`` the way Salesforce does.

        The loser is deleted with ``MasterRecordId`` = winner; its children are re-parented to
        the winner (which bumps their ``SystemModstamp``).
        """
        winner, loser = to18(winner_id), to18(loser_id)
        children = {
            "Account": [
                ("Contact", "AccountId"),
                ("Opportunity", "AccountId"),
                ("Case", "AccountId"),
                ("Reference_Request__c", "Account__c"),
            ],
            "Contact": [("Case", "ContactId"), ("Reference_Request__c", "Contact__c")],
        }.get(obj)
        if children is None:
            msg = f"{obj} records cannot be merged"
            raise ValueError(msg)
        with self.store.lock:
            stamp = sf_text(self.tick())
            self.store.execute(
                f'UPDATE {self.store.table(SALESFORCE, obj)} SET "IsDeleted" = 1, '
                '"MasterRecordId" = ?, "LastModifiedDate" = ?, "SystemModstamp" = ? '
                'WHERE "Id" = ?',
                (winner, stamp, stamp, loser),
            )
            for child, ref in children:
                self.store.execute(
                    f"UPDATE {self.store.table(SALESFORCE, child)} SET {quote(ref)} = ?, "
                    '"LastModifiedDate" = ?, "SystemModstamp" = ? '
                    f"WHERE {quote(ref)} = ?",
                    (winner, stamp, stamp, loser),
                )
