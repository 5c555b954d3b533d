"""The Salesforce side of the sandbox.

The OAuth token endpoint, REST (describe, query, sObject, Collections, limits) and Bulk API
2.0 (query and ingest jobs), with Salesforce's headers and error lists.

Every authenticated call is counted against a daily allocation reported in
``Sforce-Limit-Info: api-usage=N/M``; beyond it calls answer 403 ``REQUEST_LIMIT_EXCEEDED``.
Unknown or expired tokens answer 401 ``INVALID_SESSION_ID``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from sandbox.faults import SALESFORCE, ApiCounter, Faults
from sandbox.http import Request, Response, json_response
from sandbox.ids import sf_id
from sandbox.org import Org, RecordError, UnknownFieldError, sf_text
from sandbox.results import ResultSet
from sandbox.schema import BOOLEAN_TYPES, ObjectDef
from sandbox.soql import Query, SoqlError, from_sql, parse

log = logging.getLogger(__name__)

API_VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0")
ORG_ID = "00D5g000004SbXQEA0"
USER_ID = "0055g00000AbCdEQAV"
MAX_CURSORS = 20
_VERSION_RE = re.compile(r"^/services/data/v(\d{2,3}\.\d)(/.*)?$")


def _errors(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, [{"message": message, "errorCode": code}], headers)


@dataclass
class Credentials:
    """What the connected app and the integration user are."""

    client_id: str
    client_secret: str
    username: str
    password: str
    refresh_token: str
    access_token: str
    jwt_public_key: bytes


@dataclass
class _Cursor:
    """A REST query cursor: its result snapshot and the endpoint that made it."""

    result: ResultSet
    version: str
    endpoint: str


@dataclass
class _Job:
    """A Bulk API 2.0 job."""

    info: dict[str, Any]
    result: ResultSet | None = None
    uploads: list[bytes] = field(default_factory=list)
    success: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


class SalesforceApp:
    """The HTTP handler of the Salesforce side."""

    def __init__(
        self,
        org: Org,
        faults: Faults,
        counter: ApiCounter,
        creds: Credentials,
        base_url: Callable[[], str],
    ) -> None:
        self.org = org
        self.store = org.store
        self.faults = faults
        self.counter = counter
        self.creds = creds
        self.base_url = base_url
        self._lock = threading.Lock()
        # token -> (issued monotonic time, faults.token_epoch at issue)
        self.tokens: dict[str, tuple[float, int]] = {creds.access_token: (time.monotonic(), 0)}
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.jobs: dict[str, _Job] = {}
        self._n = 0
        self.api_used = 0

    # -- plumbing ----------------------------------------------------------------------------
    def _next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    @property
    def objects(self) -> dict[str, ObjectDef]:
        """The Salesforce schemas."""
        return self.store.schemas[SALESFORCE]

    def _object(self, name: str) -> ObjectDef | None:
        for obj in self.objects.values():
            if obj.name.lower() == name.lower():
                return obj
        return None

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.faults.api_limit}"}

    def __call__(self, req: Request) -> Response:
        """Route one request."""
        path = req.path
        if path.rstrip("/") == "/services/oauth2/token" and req.method == "POST":
            return self.token(req)
        if path.rstrip("/") in ("/services/data",) and req.method == "GET":
            return json_response(
                200,
                [
                    {"label": f"v{v}", "url": f"/services/data/v{v}", "version": v}
                    for v in API_VERSIONS
                ],
            )
        m = _VERSION_RE.match(path)
        if m is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = m.group(1), (m.group(2) or "/")
        denied = self._authorize(req)
        if denied is not None:
            return denied
        # Counted like the daily allocation: every authorised call, failed ones too.
        kind = next((p for p in rest.split("/") if p), "root")
        self.counter.add(SALESFORCE, {"queryAll": "query"}.get(kind, kind))
        decision = self.faults.decide(SALESFORCE)
        headers = self._limit_header()
        if decision.status is not None:
            status = decision.status
            if status == 429:
                headers["Retry-After"] = str(decision.retry_after or 1)
            code, message = _FAULTS.get(
                status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred")
            )
            return _errors(status, code, message, headers)
        try:
            resp = self._route(req, version, rest)
        except SoqlError as exc:
            resp = _errors(400, exc.code, exc.message)
        except UnknownFieldError as exc:
            resp = _errors(400, "INVALID_FIELD", str(exc))
        resp.headers.update(headers)
        return resp

    def _authorize(self, req: Request) -> Response | None:
        auth = req.headers.get("authorization", "")
        token = auth.split(" ", 1)[1].strip() if " " in auth else ""
        issued = self.tokens.get(token)
        if (
            issued is None
            or issued[1] < self.faults.token_epoch
            or time.monotonic() - issued[0] > self.faults.token_ttl
        ):
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self._lock:
            if self.api_used >= self.faults.api_limit:
                return _errors(
                    403,
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                    self._limit_header(),
                )
            self.api_used += 1
        return None

    def _route(self, req: Request, version: str, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = req.method
        kind = parts[0] if parts else ""
        if not parts:
            return json_response(
                200,
                {
                    name: f"/services/data/v{version}/{name}"
                    for name in ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
                },
            )
        if kind in ("query", "queryAll") and method == "GET":
            if len(parts) == 1:
                return self.query(req, version, kind)
            return self.query_more(req, parts[1])
        if kind == "sobjects":
            return self._sobjects(req, version, parts[1:])
        if kind == "limits" and method == "GET":
            return self.limits()
        if kind == "composite" and parts[1:] == ["sobjects"]:
            if method == "PATCH":
                return self.collections_update(req)
            if method == "POST":
                return self.collections_create(req)
        if kind == "jobs" and len(parts) >= 2:
            if parts[1] == "query":
                return self.bulk_query(req, version, parts[2:])
            if parts[1] == "ingest":
                return self.bulk_ingest(req, version, parts[2:])
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    # -- OAuth -------------------------------------------------------------------------------
    def _issue(self) -> Response:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        with self._lock:
            self.tokens[token] = (time.monotonic(), self.faults.token_epoch)
        self.counter.add_key("salesforce.token")  # logins do not count against the API budget
        issued_at = str(int(time.time() * 1000))
        return json_response(
            200,
            {
                "access_token": token,
                "instance_url": self.base_url(),
                "id": f"{self.base_url()}/id/{ORG_ID}/{USER_ID}",
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
                "scope": "api",
            },
        )

    def token(self, req: Request) -> Response:
        """``POST /services/oauth2/token``: JWT bearer, client credentials, password, refresh."""
        form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        form.update({k: v for k, v in req.query.items() if k not in form})
        grant = form.get("grant_type", "")

        def fail(error: str, description: str) -> Response:
            code = 401 if error == "invalid_client" else 400
            return json_response(code, {"error": error, "error_description": description})

        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", "")
            try:
                claims = jwt.decode(
                    assertion,
                    self.creds.jwt_public_key,
                    algorithms=["RS256"],
                    options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
                    leeway=5,
                )
            except jwt.ExpiredSignatureError:
                return fail("invalid_grant", "expired authorization code")
            except jwt.PyJWTError:
                return fail("invalid_grant", "invalid assertion")
            if claims.get("iss") != self.creds.client_id:
                return fail("invalid_client_id", "client identifier invalid")
            if claims.get("sub") != self.creds.username:
                return fail("invalid_grant", "user hasn't approved this consumer")
            aud = str(claims.get("aud", "")).rstrip("/")
            host = urlsplit(self.base_url()).netloc
            allowed = {
                self.base_url().rstrip("/"),
                host,
                "https://login.salesforce.com",
                "https://test.salesforce.com",
            }
            if aud not in allowed:
                return fail("invalid_grant", "audience is invalid")
            exp = float(claims["exp"])
            if exp - time.time() > 3600 * 24:
                return fail("invalid_grant", "expiration is too far in the future")
            return self._issue()
        if grant == "client_credentials":
            if (
                form.get("client_id") != self.creds.client_id
                or form.get("client_secret") != self.creds.client_secret
            ):
                return fail("invalid_client", "invalid client credentials")
            return self._issue()
        if grant == "password":
            if form.get("client_id") != self.creds.client_id or form.get("client_secret") not in (
                self.creds.client_secret,
                None,
            ):
                return fail("invalid_client_id", "client identifier invalid")
            if (
                form.get("username") != self.creds.username
                or form.get("password") != self.creds.password
            ):
                return fail("invalid_grant", "authentication failure")
            return self._issue()
        if grant == "refresh_token":
            if form.get("client_id") != self.creds.client_id:
                return fail("invalid_client_id", "client identifier invalid")
            if form.get("refresh_token") != self.creds.refresh_token:
                return fail("invalid_grant", "expired access/refresh token")
            return self._issue()
        return fail("unsupported_grant_type", "grant type not supported")

    # -- describe and sObjects ---------------------------------------------------------------
    def _obj_urls(self, version: str, name: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{name}"
        return {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        }

    def _obj_summary(self, version: str, od: ObjectDef) -> dict[str, Any]:
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
            "urls": self._obj_urls(version, od.name),
        }

    def _sobjects(self, req: Request, version: str, parts: list[str]) -> Response:
        method = req.method
        if not parts:
            if method != "GET":
                return _errors(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
            return json_response(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [self._obj_summary(version, o) for o in self.objects.values()],
                },
            )
        od = self._object(parts[0])
        if od is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 1:
            if method == "POST":
                return self.create(req, od)
            return json_response(
                200, {"objectDescribe": self._obj_summary(version, od), "recentItems": []}
            )
        if parts[1] == "describe" and method == "GET":
            with self.store.lock:
                fields = [f.describe() for f in od.fields.values()]
            body = self._obj_summary(version, od)
            body.update(fields=fields, childRelationships=[], recordTypeInfos=[])
            return json_response(200, body)
        if parts[1] in ("deleted", "updated") and method == "GET":
            return self.get_changed(req, od, parts[1])
        record_id = parts[1]
        if method == "GET":
            record = self.org.get(od.name, record_id)
            if record is None or record.get("IsDeleted"):
                return _errors(404, "NOT_FOUND", "The requested resource does not exist")
            wanted = req.query.get("fields")
            if wanted:
                keep = {f.strip().lower() for f in wanted.split(",")}
                record = {k: v for k, v in record.items() if k.lower() in keep or k == "Id"}
            return json_response(
                200,
                {
                    "attributes": {
                        "type": od.name,
                        "url": f"/services/data/v{version}/sobjects/{od.name}/{record['Id']}",
                    },
                    **record,
                },
            )
        if method == "PATCH":
            try:
                body = req.json()
            except ValueError:
                return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
            if not isinstance(body, dict):
                return _errors(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            body.pop("attributes", None)
            rid, stored, errors = self.org.validate_update(od.name, record_id, body)
            if not errors and self.faults.lock_row():
                errors = [_lock_error()]
            if errors:
                status = 404 if errors[0].status_code == "INVALID_CROSS_REFERENCE_KEY" else 400
                return json_response(
                    status,
                    [
                        {"message": e.message, "errorCode": e.status_code, "fields": e.fields}
                        for e in errors
                    ],
                )
            self.org.apply_updates(od.name, [(rid, stored)])
            return Response(204, content_type="application/json;charset=UTF-8")
        if method == "DELETE":
            record = self.org.get(od.name, record_id)
            if record is None or record.get("IsDeleted"):
                return _errors(404, "ENTITY_IS_DELETED", "entity is deleted")
            self.org.soft_delete(od.name, record["Id"])
            return Response(204)
        return _errors(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")

    def create(self, req: Request, od: ObjectDef) -> Response:
        """``POST /sobjects/{obj}/``: create one record."""
        try:
            body = req.json()
        except ValueError:
            return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        body.pop("attributes", None)
        result = self._create_one(od, body)
        if result.get("success"):
            return json_response(201, result)
        return json_response(
            400,
            [
                {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}
                for e in result["errors"]
            ],
        )

    def _create_one(self, od: ObjectDef, body: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        errors: list[RecordError] = []
        for name, value in body.items():
            f = od.field(name)
            if f is None:
                raise UnknownFieldError(od.name, name)
            col, val, err = self.org.coerce(od, name, value, check_access=f.createable)
            if not f.createable:
                err = RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                )
            if err:
                errors.append(err)
            else:
                stored[col] = val
        for f in od.fields.values():
            if (
                f.createable
                and not f.nillable
                and f.type not in BOOLEAN_TYPES
                and stored.get(f.name) is None
            ):
                errors.append(
                    RecordError(
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{f.name}]",
                        [f.name],
                    )
                )
        if errors:
            return {"success": False, "errors": [e.as_json() for e in errors]}
        rid = self.org.insert(od.name, stored)
        return {"id": rid, "success": True, "errors": []}

    def get_changed(self, req: Request, od: ObjectDef, which: str) -> Response:
        """``/sobjects/{obj}/deleted/`` (at most 15 days back) and ``/updated/`` (30 days)."""
        try:
            start = _parse_param_dt(req.query["start"])
            end = _parse_param_dt(req.query["end"])
        except (KeyError, ValueError):
            return _errors(400, "MALFORMED_QUERY", "start and end must be valid dateTimes")
        max_days = 15 if which == "deleted" else 30
        if start < dt.datetime.now(dt.UTC) - dt.timedelta(days=max_days):
            return _errors(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than {max_days} days ago",
            )
        table = self.store.table(SALESFORCE, od.name)
        lo, hi = sf_text(start), sf_text(end)
        if which == "deleted":
            rows = self.store.fetchall(
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
        rows = self.store.fetchall(
            f'SELECT "Id" FROM {table} WHERE "IsDeleted" = 0 '
            f'AND "SystemModstamp" >= ? AND "SystemModstamp" <= ?',
            (lo, hi),
        )
        return json_response(200, {"ids": [r[0] for r in rows], "latestDateCovered": hi})

    # -- query -------------------------------------------------------------------------------
    def _run(self, soql: str, include_deleted: bool, version: str) -> tuple[Query, ResultSet | int]:
        """Parse ``soql``; COUNT() queries give their count, others a result snapshot."""
        query = parse(soql, self.objects, self.org.now.date())
        if query.count_only:
            table = self.store.table(SALESFORCE, query.obj.name)
            parents = {
                rel: self.store.table(SALESFORCE, parent.name)
                for rel, (_f, parent) in query.joins.items()
            }
            from_part = from_sql(query, table, parents, include_deleted=include_deleted)
            sql = f"SELECT COUNT(*) FROM (SELECT 1 {from_part}"
            if query.limit is not None:
                sql += f" LIMIT {query.limit}"
            sql += ")"
            return query, int(self.store.fetchone(sql, query.params)[0])
        return query, ResultSet(self.store, query, include_deleted=include_deleted, version=version)

    def _batch_size(self, req: Request) -> int:
        opts = req.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize\s*=\s*(\d+)", opts)
        if not m:
            return 2000
        return max(200, min(2000, int(m.group(1))))

    def query(self, req: Request, version: str, endpoint: str) -> Response:
        """``GET /query?q=`` and ``/queryAll?q=``: the first page and a cursor for the rest."""
        soql = req.query.get("q")
        if not soql:
            return _errors(400, "MALFORMED_QUERY", "A query string (q) is required")
        _query, result = self._run(soql, endpoint == "queryAll", version)
        if isinstance(result, int):
            return json_response(200, {"totalSize": result, "done": True, "records": []})
        cursor = _Cursor(result, version, endpoint)
        return self._page(cursor, 0, self._batch_size(req), None)

    def _page(self, cursor: _Cursor, start: int, size: int, cursor_id: str | None) -> Response:
        total = cursor.result.total
        end = min(total, start + size)
        head = f'{{"totalSize":{total},"done":{"true" if end >= total else "false"}'
        if end < total:
            if cursor_id is None:
                cursor_id = sf_id("01g", self._next())
                with self._lock:
                    self.cursors[cursor_id] = cursor
                    while len(self.cursors) > MAX_CURSORS:
                        _, old = self.cursors.popitem(last=False)
                        old.result.drop()
            url = f"/services/data/v{cursor.version}/{cursor.endpoint}/{cursor_id}-{end}"
            head += f',"nextRecordsUrl":"{url}"'
        records = cursor.result.page_json(start, end)
        if cursor_id is None and end >= total:
            # One page and no locator handed out: nothing can ask for it again. A cursor's
            # pages stay readable (a client may retry one) until newer cursors evict it.
            cursor.result.drop()
        body = head + ',"records":[' + ",".join(records) + "]}"
        return Response(200, body.encode())

    def query_more(self, req: Request, locator: str) -> Response:
        """``GET /query/{cursor}-{offset}``: the next page of a cursor."""
        cursor_id, _, offset = locator.partition("-")
        with self._lock:
            cursor = self.cursors.get(cursor_id)
        if cursor is None or not offset.isdigit():
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(offset), self._batch_size(req), cursor_id)

    def limits(self) -> Response:
        """``GET /limits``: the daily allocations and what is left."""
        used = self.api_used
        limit = self.faults.api_limit
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
    def collections_update(self, req: Request) -> Response:
        """``PATCH /composite/sobjects``: up to 200 updates, per-record results, allOrNone."""
        try:
            body = req.json()
        except ValueError:
            return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return _errors(400, "INVALID_FIELD", "records is required and must be a list")
        if len(records) > 200:
            return _errors(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        planned: list[tuple[str, str, dict[str, Any]] | None] = []
        results: list[dict[str, Any]] = []
        for rec in records:
            if not isinstance(rec, dict):
                return _errors(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
            rec = dict(rec)
            attrs = rec.pop("attributes", None) or {}
            obj_name = attrs.get("type") if isinstance(attrs, dict) else None
            od = self._object(str(obj_name)) if obj_name else None
            if od is None:
                return _errors(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type: attributes.type is missing or unknown",
                )
            rid_raw = rec.pop("id", None) or rec.pop("Id", None)
            rid, stored, errors = self.org.validate_update(od.name, rid_raw, rec)
            if not errors and self.faults.lock_row():
                errors = [_lock_error()]
            if errors:
                planned.append(None)
                results.append({"success": False, "errors": [e.as_json() for e in errors]})
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

    def collections_create(self, req: Request) -> Response:
        """``POST /composite/sobjects``: up to 200 inserts (allOrNone not rolled back here)."""
        try:
            body = req.json()
        except ValueError:
            return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records or len(records) > 200:
            return _errors(400, "INVALID_FIELD", "records must be a list of 1 to 200 records")
        results = []
        for rec in records:
            rec = dict(rec)
            attrs = rec.pop("attributes", None) or {}
            od = self._object(str(attrs.get("type", "")))
            if od is None:
                return _errors(400, "INVALID_TYPE", "Must send a concrete entity type")
            results.append(self._create_one(od, rec))
        return json_response(200, results)

    # -- Bulk API 2.0 ------------------------------------------------------------------------
    def _job_base(self, version: str, job_id: str, kind: str) -> dict[str, Any]:
        stamp = sf_text(self.org.tick())
        return {
            "id": job_id,
            "createdById": USER_ID,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version),
            "jobType": kind,
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }

    def bulk_query(self, req: Request, version: str, parts: list[str]) -> Response:
        """``/jobs/query``: create, poll, results (CSV with ``Sforce-Locator``), abort, delete."""
        if not parts:
            if req.method != "POST":
                return json_response(
                    200,
                    {
                        "done": True,
                        "records": [
                            j.info for j in self.jobs.values() if j.info["jobType"] == "V2Query"
                        ],
                    },
                )
            try:
                body = req.json()
            except ValueError:
                return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
            op = body.get("operation")
            if op not in ("query", "queryAll"):
                return _errors(400, "INVALIDJOB", "operation must be query or queryAll")
            soql = body.get("query") or ""
            query, result = self._run(soql, op == "queryAll", version)
            if isinstance(result, int):
                return _errors(
                    400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0"
                )
            job_id = sf_id("750", self._next())
            info = self._job_base(version, job_id, "V2Query")
            info.update(
                operation=op,
                object=query.obj.name,
                state="UploadComplete",
                query=soql,
            )
            job = _Job(info, result=result)
            job.info["numberRecordsProcessed"] = result.total
            with self._lock:
                self.jobs[job_id] = job
                self._forget_old_jobs()
            return json_response(200, {k: v for k, v in info.items() if k != "query"})
        found = self.jobs.get(parts[0])
        if found is None or found.info["jobType"] != "V2Query":
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        job = found
        if len(parts) == 1:
            if req.method == "GET":
                if job.info["state"] == "UploadComplete":
                    job.info["state"] = "InProgress"
                elif job.info["state"] == "InProgress":
                    job.info["state"] = "JobComplete"
                return json_response(200, {k: v for k, v in job.info.items() if k != "query"})
            if req.method == "PATCH":
                job.info["state"] = "Aborted"
                return json_response(200, job.info)
            if req.method == "DELETE":
                with self._lock:
                    self.jobs.pop(parts[0], None)
                if job.result is not None:
                    job.result.drop()
                return Response(204)
        if parts[1:] == ["results"] and req.method == "GET":
            if job.info["state"] != "JobComplete":
                job.info["state"] = "JobComplete"  # a client that skips polling still gets data
            assert job.result is not None
            return self._results_csv(job.result, req)
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    def _results_csv(self, result: ResultSet, req: Request) -> Response:
        try:
            start = _decode_locator(req.query.get("locator", ""))
            size = int(req.query.get("maxRecords") or 100_000)
        except ValueError:
            return _errors(400, "INVALID_LOCATOR", "invalid locator or maxRecords")
        end = min(result.total, start + max(1, size))
        body, count = result.page_csv(start, end)
        locator = _encode_locator(end) if end < result.total else "null"
        return Response(
            200,
            body,
            content_type="text/csv",
            headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)},
        )

    def _forget_old_jobs(self) -> None:
        """Keep the newest query jobs' results (snapshots cost disk); Salesforce keeps 7 days."""
        query_jobs = [j for j in self.jobs.values() if j.result is not None]
        for old in query_jobs[:-MAX_CURSORS]:
            assert old.result is not None
            old.result.drop()
            old.result = None
            self.jobs.pop(old.info["id"], None)

    def bulk_ingest(self, req: Request, version: str, parts: list[str]) -> Response:
        """``/jobs/ingest``: create, upload CSV, close, poll, per-record results."""
        if not parts:
            if req.method != "POST":
                return json_response(
                    200,
                    {
                        "done": True,
                        "records": [
                            j.info for j in self.jobs.values() if j.info["jobType"] == "V2Ingest"
                        ],
                    },
                )
            try:
                body = req.json()
            except ValueError:
                return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
            op = body.get("operation")
            if op not in ("insert", "update", "upsert", "delete", "hardDelete"):
                return _errors(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {op}")
            od = self._object(str(body.get("object", "")))
            if od is None:
                return _errors(
                    400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}"
                )
            ext = body.get("externalIdFieldName")
            if op == "upsert" and (not ext or od.field(str(ext)) is None):
                return _errors(400, "INVALIDJOB", "InvalidJob : externalIdFieldName is required")
            job_id = sf_id("750", self._next())
            info = self._job_base(version, job_id, "V2Ingest")
            info.update(
                operation=op,
                object=od.name,
                state="Open",
                externalIdFieldName=ext,
                contentUrl=f"services/data/v{version}/jobs/ingest/{job_id}/batches",
                lineEnding=body.get("lineEnding", "LF"),
                columnDelimiter=body.get("columnDelimiter", "COMMA"),
                numberRecordsFailed=0,
            )
            with self._lock:
                self.jobs[job_id] = _Job(info)
            return json_response(200, info)
        job = self.jobs.get(parts[0])
        if job is None or job.info["jobType"] != "V2Ingest":
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        rest = parts[1:]
        if not rest:
            if req.method == "GET":
                if job.info["state"] == "UploadComplete":
                    job.info["state"] = "InProgress"
                elif job.info["state"] == "InProgress":
                    job.info["state"] = "JobComplete"
                return json_response(200, job.info)
            if req.method == "PATCH":
                try:
                    state = req.json().get("state")
                except (ValueError, AttributeError):
                    return _errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
                if state == "Aborted":
                    job.info["state"] = "Aborted"
                    return json_response(200, job.info)
                if state == "UploadComplete" and job.info["state"] == "Open":
                    self._process_ingest(job)
                    if job.info["state"] != "Failed":
                        job.info["state"] = "UploadComplete"
                    return json_response(200, job.info)
                return _errors(400, "INVALIDSTATUS", f"Invalid state transition to {state}")
            if req.method == "DELETE":
                self.jobs.pop(parts[0], None)
                return Response(204)
        if rest == ["batches"] and req.method == "PUT":
            if job.info["state"] != "Open":
                return _errors(409, "INVALIDSTATUS", "Job is not open for uploads")
            job.uploads.append(req.body)
            return Response(201)
        if (
            req.method == "GET"
            and rest
            and rest[0]
            in (
                "successfulResults",
                "failedResults",
                "unprocessedrecords",
            )
        ):
            return self._ingest_results(job, rest[0])
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    def _process_ingest(self, job: _Job) -> None:
        """Apply an ingest job's CSV now; results are served once the job is polled."""
        info = job.info
        od = self.objects[info["object"]]
        op = info["operation"]
        header: list[str] = []
        rows: list[list[str]] = []

        def fail(message: str) -> None:
            # A job that fails before processing wrote nothing: its rows are what
            # unprocessedrecords lists ("for failed or aborted jobs", Bulk API 2.0 docs).
            info.update(state="Failed", errorMessage=message)
            job.unprocessed = [row for row in rows if any(row)]

        for part in job.uploads:
            reader = csv.reader(io.StringIO(part.decode("utf-8-sig")))
            try:
                head = next(reader)
            except StopIteration:
                continue
            if header and head != header:
                fail("InvalidBatch : header mismatch")
                return
            header = head
            job.header = header
            rows.extend(reader)
        for name in header:
            if od.field(name) is None:
                fail(f"InvalidBatch : Field name not found : {name}")
                return
        lower = [h.lower() for h in header]
        id_pos = lower.index("id") if "id" in lower else None
        if op in ("update", "delete", "hardDelete") and id_pos is None:
            fail("InvalidBatch : Field name not found : Id")
            return
        updates: list[tuple[str, dict[str, Any]]] = []
        success_rows: list[list[str]] = []
        for row in rows:
            if not any(row):
                continue
            values = {
                h: (None if v == "#N/A" else v)
                for h, v in zip(header, row, strict=False)
                if v != "" and h.lower() != "id"
            }
            rid_raw = row[id_pos] if id_pos is not None and id_pos < len(row) else ""
            if self.faults.lock_row():
                job.failed.append([rid_raw, _lock_error().as_bulk(), *row])
                continue
            if op in ("delete", "hardDelete"):
                record = self.org.get(od.name, rid_raw) if rid_raw else None
                if record is None or (record["IsDeleted"] and op == "delete"):
                    job.failed.append([rid_raw, "ENTITY_IS_DELETED:entity is deleted:--", *row])
                    continue
                if op == "delete":
                    self.org.soft_delete(od.name, record["Id"])
                else:
                    self.org.hard_delete(od.name, record["Id"])
                job.success.append([record["Id"], "false", *row])
                continue
            if op == "insert" or (op == "upsert" and not rid_raw):
                result = self._create_one(od, values)
                if result["success"]:
                    job.success.append([result["id"], "true", *row])
                else:
                    err = RecordError(
                        result["errors"][0]["statusCode"],
                        result["errors"][0]["message"],
                        result["errors"][0]["fields"],
                    )
                    job.failed.append(["", err.as_bulk(), *row])
                continue
            rid, stored, errors = self.org.validate_update(od.name, rid_raw, values)
            if errors:
                job.failed.append([rid_raw, errors[0].as_bulk(), *row])
                continue
            updates.append((rid, stored))
            success_rows.append([rid, "false", *row])
        self.org.apply_updates(od.name, updates)
        job.success.extend(success_rows)
        info["numberRecordsProcessed"] = len(job.success) + len(job.failed)
        info["numberRecordsFailed"] = len(job.failed)

    def _ingest_results(self, job: _Job, kind: str) -> Response:
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows(job.success)
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows(job.failed)
        else:
            writer.writerow(job.header)
            writer.writerows(job.unprocessed)
        return Response(200, buf.getvalue().encode(), content_type="text/csv")


#: What a forced or random failure of each status says (403 is the concurrency limit, which a
#: client should back off from, unlike the daily limit's "TotalRequests Limit exceeded.").
_FAULTS: dict[int, tuple[str, str]] = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests"),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
}


def _lock_error() -> RecordError:
    return RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(text: str) -> int:
    if not text or text == "null":
        return 0
    padded = text + "=" * (-len(text) % 4)
    return int(base64.b64decode(padded).decode())


def _parse_param_dt(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
