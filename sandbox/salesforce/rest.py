"""The REST resources of the Salesforce side besides SOQL (``query.py``).

Describe, sObject rows (create, read, update, delete, deleted/updated since), sObject
Collections, limits; and ``create_record``, which Bulk ingest shares.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.http import Response, json_response
from sandbox.org import Org, RecordError, UnknownFieldError, sf_text
from sandbox.salesforce.routes import Call
from sandbox.salesforce.state import (
    SalesforceState,
    bad_json,
    errors,
    lock_error,
    not_found,
)
from sandbox.schema import BOOLEAN_TYPES, ObjectDef
from sandbox.store import SALESFORCE

#: The resources a version's root lists.
ROOT_RESOURCES = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
#: How far back ``/deleted/`` and ``/updated/`` reach, in days.
CHANGED_DAYS = {"deleted": 15, "updated": 30}


def create_record(org: Org, od: ObjectDef, body: dict[str, Any]) -> dict[str, Any]:
    """Create one record from API field values; the per-record result Salesforce returns.

    Raises:
        UnknownFieldError: a field the object does not have (the whole request fails).
    """
    stored: dict[str, Any] = {}
    errs: list[RecordError] = []
    for name, value in body.items():
        f = od.field(name)
        if f is None:
            raise UnknownFieldError(od.name, name)
        col, val, err = org.coerce(od, name, value, check_access=f.createable)
        if not f.createable:
            err = RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {f.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile "
                "or permission set.",
                [f.name],
            )
        if err:
            errs.append(err)
        else:
            stored[col] = val
    for f in od.fields.values():
        if (
            f.createable
            and not f.nillable
            and f.type not in BOOLEAN_TYPES
            and stored.get(f.name) is None
        ):
            errs.append(
                RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{f.name}]",
                    [f.name],
                )
            )
    if errs:
        return {"success": False, "errors": [e.as_json() for e in errs]}
    rid = org.insert(od.name, stored)
    return {"id": rid, "success": True, "errors": []}


class RestResources:
    """Describe, sObject rows, sObject Collections and limits."""

    def __init__(self, state: SalesforceState) -> None:
        self.state = state
        self.org = state.org

    # -- describe ----------------------------------------------------------------------------
    def resources(self, call: Call) -> Response:
        """``GET /services/data/vXX.X/``: the resources of this version."""
        return json_response(
            200, {name: f"/services/data/v{call.version}/{name}" for name in ROOT_RESOURCES}
        )

    def _summary(self, version: str, od: ObjectDef) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{od.name}"
        return {
            "name": od.name,
            "label": od.label,
            "labelPlural": od.label + "s",
            "keyPrefix": od.key_prefix,
            "custom": od.custom,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "replicateable": True,
            "mergeable": "MasterRecordId" in od.fields,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def sobjects(self, call: Call) -> Response:
        """``GET /sobjects``: every object (describeGlobal)."""
        return json_response(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [self._summary(call.version, o) for o in self.state.objects.values()],
            },
        )

    def object_info(self, call: Call) -> Response:
        """``GET /sobjects/{object}``: the object's basic information."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        return json_response(
            200, {"objectDescribe": self._summary(call.version, od), "recentItems": []}
        )

    def describe(self, call: Call) -> Response:
        """``GET /sobjects/{object}/describe``: the object and its fields."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        with self.state.store.lock:
            fields = [f.describe() for f in od.fields.values()]
        body = self._summary(call.version, od)
        body.update(fields=fields, childRelationships=[], recordTypeInfos=[])
        return json_response(200, body)

    # -- sObject rows ------------------------------------------------------------------------
    def create(self, call: Call) -> Response:
        """``POST /sobjects/{object}/``: create one record."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        body.pop("attributes", None)
        result = create_record(self.org, od, body)
        if result.get("success"):
            return json_response(201, result)
        return json_response(
            400,
            [
                {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}
                for e in result["errors"]
            ],
        )

    def get_record(self, call: Call) -> Response:
        """``GET /sobjects/{object}/{id}``: one record (``?fields=`` narrows it)."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        record = self.org.get(od.name, call.params["id"])
        if record is None or record.get("IsDeleted"):
            return not_found()
        wanted = call.req.query.get("fields")
        if wanted:
            keep = {f.strip().lower() for f in wanted.split(",")}
            record = {k: v for k, v in record.items() if k.lower() in keep or k == "Id"}
        return json_response(
            200,
            {
                "attributes": {
                    "type": od.name,
                    "url": f"/services/data/v{call.version}/sobjects/{od.name}/{record['Id']}",
                },
                **record,
            },
        )

    def update_record(self, call: Call) -> Response:
        """``PATCH /sobjects/{object}/{id}``: update one record (204, or the error list)."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        if not isinstance(body, dict):
            return errors(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        body.pop("attributes", None)
        rid, stored, errs = self.org.validate_update(od.name, call.params["id"], body)
        if not errs and self.state.faults.lock_row():
            errs = [lock_error()]
        if errs:
            status = 404 if errs[0].status_code == "INVALID_CROSS_REFERENCE_KEY" else 400
            return json_response(
                status,
                [
                    {"message": e.message, "errorCode": e.status_code, "fields": e.fields}
                    for e in errs
                ],
            )
        self.org.apply_updates(od.name, [(rid, stored)])
        return Response(204, content_type="application/json;charset=UTF-8")

    def delete_record(self, call: Call) -> Response:
        """``DELETE /sobjects/{object}/{id}``: to the recycle bin (``IsDeleted``)."""
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        record = self.org.get(od.name, call.params["id"])
        if record is None or record.get("IsDeleted"):
            return errors(404, "ENTITY_IS_DELETED", "entity is deleted")
        self.org.soft_delete(od.name, record["Id"])
        return Response(204)

    def deleted(self, call: Call) -> Response:
        """``GET /sobjects/{object}/deleted/?start=&end=`` (at most 15 days back)."""
        return self._changed(call, "deleted")

    def updated(self, call: Call) -> Response:
        """``GET /sobjects/{object}/updated/?start=&end=`` (at most 30 days back)."""
        return self._changed(call, "updated")

    def _changed(self, call: Call, which: str) -> Response:
        od = self.state.object_named(call.params["object"])
        if od is None:
            return not_found()
        try:
            start = _parse_param_dt(call.req.query["start"])
            end = _parse_param_dt(call.req.query["end"])
        except (KeyError, ValueError):
            return errors(400, "MALFORMED_QUERY", "start and end must be valid dateTimes")
        max_days = CHANGED_DAYS[which]
        if start < dt.datetime.now(dt.UTC) - dt.timedelta(days=max_days):
            return errors(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than {max_days} days ago",
            )
        store = self.state.store
        table = store.table(SALESFORCE, od.name)
        lo, hi = sf_text(start), sf_text(end)
        if which == "deleted":
            rows = store.fetchall(
                f'SELECT "Id", "SystemModstamp" FROM {table} WHERE "IsDeleted" = 1 '
                f'AND "SystemModstamp" >= ? AND "SystemModstamp" <= ?',
                (lo, hi),
            )
            return json_response(
                200,
                {
                    "deletedRecords": [{"id": r[0], "deletedDate": r[1]} for r in rows],
                    "earliestDateAvailable": sf_text(self.org.now - dt.timedelta(days=15)),
                    "latestDateCovered": hi,
                },
            )
        rows = store.fetchall(
            f'SELECT "Id" FROM {table} WHERE "IsDeleted" = 0 '
            f'AND "SystemModstamp" >= ? AND "SystemModstamp" <= ?',
            (lo, hi),
        )
        return json_response(200, {"ids": [r[0] for r in rows], "latestDateCovered": hi})

    # -- limits ------------------------------------------------------------------------------
    def limits(self, call: Call) -> Response:
        """``GET /limits``: the daily allocations and what is left."""
        used = self.state.api_used
        limit = self.state.faults.api_limit
        return json_response(
            200,
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            },
        )

    # -- sObject Collections -----------------------------------------------------------------
    def collections_update(self, call: Call) -> Response:
        """``PATCH /composite/sobjects``: up to 200 updates, per-record results, allOrNone."""
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return errors(400, "INVALID_FIELD", "records is required and must be a list")
        if len(records) > 200:
            return errors(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        planned: list[tuple[str, str, dict[str, Any]] | None] = []
        results: list[dict[str, Any]] = []
        for rec in records:
            if not isinstance(rec, dict):
                return errors(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
            rec = dict(rec)
            attrs = rec.pop("attributes", None) or {}
            obj_name = attrs.get("type") if isinstance(attrs, dict) else None
            od = self.state.object_named(str(obj_name)) if obj_name else None
            if od is None:
                return errors(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type: attributes.type is missing or unknown",
                )
            rid_raw = rec.pop("id", None) or rec.pop("Id", None)
            rid, stored, errs = self.org.validate_update(od.name, rid_raw, rec)
            if not errs and self.state.faults.lock_row():
                errs = [lock_error()]
            if errs:
                planned.append(None)
                results.append({"success": False, "errors": [e.as_json() for e in errs]})
            else:
                planned.append((od.name, rid, stored))
                results.append({"id": rid, "success": True, "errors": []})
        failed = any(p is None for p in planned)
        if all_or_none and failed:
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
            return json_response(
                200,
                [
                    r if not r["success"] else {"success": False, "errors": [rolled]}
                    for r in results
                ],
            )
        by_obj: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for p in planned:
            if p is not None:
                by_obj.setdefault(p[0], []).append((p[1], p[2]))
        for obj, updates in by_obj.items():
            self.org.apply_updates(obj, updates)
        return json_response(200, results)

    def collections_create(self, call: Call) -> Response:
        """``POST /composite/sobjects``: up to 200 inserts (allOrNone not rolled back here)."""
        try:
            body = call.req.json()
        except ValueError:
            return bad_json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records or len(records) > 200:
            return errors(400, "INVALID_FIELD", "records must be a list of 1 to 200 records")
        results = []
        for rec in records:
            rec = dict(rec)
            attrs = rec.pop("attributes", None) or {}
            od = self.state.object_named(str(attrs.get("type", "")))
            if od is None:
                return errors(400, "INVALID_TYPE", "Must send a concrete entity type")
            results.append(create_record(self.org, od, rec))
        return json_response(200, results)


def _parse_param_dt(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
