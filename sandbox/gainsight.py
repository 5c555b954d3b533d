"""The Gainsight NXT side: the data API's query and update, with its envelope and auth.

- ``accesskey`` header; a missing or wrong key answers 401.
- ``POST /v1/data/objects/query/{object}`` with ``select``, ``where`` (``conditions`` of
  ``{name, alias, value: [...], operator}`` and an ``expression`` over the aliases, AND by
  default), ``orderBy`` (``{"Field": "asc"|"desc"}``), ``limit`` (1..5000, default 100) and
  ``offset``. Operators: EQ, NE, GT, GTE, LT, LTE, IN, NOT_IN, CONTAINS, NOT_CONTAINS,
  STARTS_WITH, ENDS_WITH, IS_NULL, IS_NOT_NULL, BTW. EQ on text is case-sensitive, as a
  database is: matching emails is the caller's job.
- ``PUT /v1/data/objects/{object}?keys=F1,F2`` with ``{"records": [...]}`` (at most 50; at most
  three keys) updates the records matching the keys; ``POST /v1/data/objects/{object}``
  inserts.
- ``GET /v1/meta/services/objects/{object}/describe`` lists the fields.

Answers carry Date and DateTime values as epoch milliseconds (the documented Read API form);
filters take text (``yyyy-MM-dd HH:mm:ss``, ISO 8601) or epoch milliseconds.

Envelope: ``{result, errorCode, errorDesc, requestId, data, message}``. Per-record problems of
a write are listed in ``data.errors`` as ``{index, errorCode, errorDesc, record}`` while the
others are written (``result`` stays true, as the real API reports partial success).
Error codes used: the documented ``GS_APIG_2401`` (refused key), ``GSOBJ_1005`` (a filter's
date-time unreadable) and ``GSOBJ_1008`` (a filter value of the wrong type); and the sandbox's
own ``GS_RATE_LIMIT``, ``GS_INVALID_REQUEST``,
``GS_INVALID_OBJECT``, ``GS_INVALID_FIELD``, ``GS_LIMIT_EXCEEDED``, ``GS_RECORD_NOT_FOUND``,
``GS_INVALID_VALUE``, ``GS_SERVER_ERROR``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.faults import GAINSIGHT, ApiCounter, Faults
from sandbox.http import Request, Response, json_response
from sandbox.org import Org, UnknownFieldError, gs_text, parse_any_datetime
from sandbox.schema import BOOLEAN_TYPES, NUMBER_TYPES, Field, ObjectDef
from sandbox.store import quote

MAX_LIMIT = 5000
MAX_WRITE = 50


class _GsError(Exception):
    def __init__(self, status: int, code: str, desc: str) -> None:
        super().__init__(desc)
        self.status = status
        self.code = code
        self.desc = desc


def envelope(
    data: Any = None,
    *,
    result: bool = True,
    code: str | None = None,
    desc: str | None = None,
) -> dict[str, Any]:
    """Gainsight's response envelope."""
    return {
        "result": result,
        "errorCode": code,
        "errorDesc": desc,
        "requestId": str(uuid.uuid4()),
        "data": data,
        "message": None if result else desc,
    }


def epoch_ms(text: str) -> int:
    """A stored date (``YYYY-MM-DD``, midnight UTC) or date-time as epoch milliseconds.

    The Read API answers Date and DateTime values "in epoch format" (Custom Object API
    documentation, Read API sample response), not as the text filters are written in.
    """
    value = parse_any_datetime(str(text))
    return int(value.timestamp()) * 1000 + value.microsecond // 1000


def _fail(status: int, code: str, desc: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, envelope(result=False, code=code, desc=desc), headers)


_OPS: dict[str, str] = {"EQ": "=", "NE": "!=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}
_EXPR_TOKEN = re.compile(r"\s*(\(|\)|AND\b|OR\b|NOT\b|[A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class GainsightApp:
    """The HTTP handler of the Gainsight side."""

    def __init__(
        self, org: Org, faults: Faults, counter: ApiCounter, access_key: Callable[[], str]
    ) -> None:
        self.org = org
        self.store = org.store
        self.faults = faults
        self.counter = counter
        self.access_key = access_key

    @property
    def objects(self) -> dict[str, ObjectDef]:
        """The Gainsight schemas."""
        return self.store.schemas[GAINSIGHT]

    def _object(self, name: str) -> ObjectDef:
        for obj in self.objects.values():
            if obj.name.lower() == name.lower():
                return obj
        raise _GsError(400, "GS_INVALID_OBJECT", f"Object {name} does not exist")

    def __call__(self, req: Request) -> Response:
        """Route one request."""
        if req.headers.get("accesskey") != self.access_key():
            # The documented code for a refused key (Data Management APIs' failure sample).
            return _fail(401, "GS_APIG_2401", "Invalid or missing access key")
        wait = self.faults.gainsight_throttle()
        if wait is not None:
            return _fail(
                429,
                "GS_RATE_LIMIT",
                "Rate limit exceeded: too many requests in this minute",
                {"Retry-After": str(wait)},
            )
        parts = [p for p in req.path.split("/") if p]
        kind = {"PUT": "update", "POST": "insert"}.get(req.method, "other")
        if parts[:4] == ["v1", "data", "objects", "query"]:
            kind = "query"
        elif parts[:2] == ["v1", "meta"]:
            kind = "describe"
        # Like Salesforce's allocation: every authorised call counts, refused ones too.
        self.counter.add(GAINSIGHT, kind)
        decision = self.faults.decide(GAINSIGHT)
        if decision.status is not None:
            headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after else {}
            if decision.status == 429:
                return _fail(429, "GS_RATE_LIMIT", "Rate limit exceeded", headers)
            return _fail(decision.status, "GS_SERVER_ERROR", "Service unavailable", headers)
        try:
            if parts[:4] == ["v1", "data", "objects", "query"] and len(parts) == 5:
                if req.method != "POST":
                    raise _GsError(405, "GS_INVALID_REQUEST", "Use POST for queries")
                return self.query(parts[4], self._body(req))
            if parts[:3] == ["v1", "data", "objects"] and len(parts) == 4:
                if req.method == "PUT":
                    return self.update(parts[3], req.query.get("keys", ""), self._body(req))
                if req.method == "POST":
                    return self.insert(parts[3], self._body(req))
            if (
                parts[:4] == ["v1", "meta", "services", "objects"]
                and len(parts) == 6
                and parts[5] == "describe"
            ):
                return self.describe(parts[4])
        except _GsError as exc:
            return _fail(exc.status, exc.code, exc.desc)
        return _fail(404, "GS_INVALID_REQUEST", f"No such resource: {req.path}")

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError as exc:
            raise _GsError(400, "GS_INVALID_REQUEST", "Request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise _GsError(400, "GS_INVALID_REQUEST", "Request body must be a JSON object")
        return body

    def _field(self, od: ObjectDef, name: Any) -> Field:
        f = od.fields.get(str(name))  # Gainsight field names are exact
        if f is None:
            raise _GsError(400, "GS_INVALID_FIELD", f"Field {name} does not exist on {od.name}")
        return f

    # -- query -------------------------------------------------------------------------------
    def query(self, obj_name: str, body: dict[str, Any]) -> Response:
        """Answer a query: records of the selected fields, filtered, ordered, paged."""
        od = self._object(obj_name)
        select = body.get("select")
        if not isinstance(select, list) or not select:
            raise _GsError(400, "GS_INVALID_REQUEST", "select must list at least one field")
        fields = [self._field(od, name) for name in select]
        limit = body.get("limit", 100)
        offset = body.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _GsError(400, "GS_LIMIT_EXCEEDED", f"limit must be between 1 and {MAX_LIMIT}")
        if not isinstance(offset, int) or offset < 0:
            raise _GsError(400, "GS_INVALID_REQUEST", "offset must be a non-negative integer")
        where_sql, params = self._where(od, body.get("where"))
        order_parts = []
        order_by = body.get("orderBy") or {}
        if not isinstance(order_by, dict):
            raise _GsError(400, "GS_INVALID_REQUEST", "orderBy must map field names to asc/desc")
        for name, direction in order_by.items():
            f = self._field(od, name)
            d = str(direction).upper()
            if d not in ("ASC", "DESC"):
                raise _GsError(400, "GS_INVALID_REQUEST", f"orderBy {name}: use asc or desc")
            order_parts.append(f"{quote(f.name)} {d}")
        order_parts.append("rowid")
        cols = ", ".join(quote(f.name) for f in fields)
        sql = (
            f"SELECT {cols} FROM {self.store.table(GAINSIGHT, od.name)}"
            f"{' WHERE ' + where_sql if where_sql else ''} ORDER BY {', '.join(order_parts)} "
            f"LIMIT {limit} OFFSET {offset}"
        )
        rows = self.store.fetchall(sql, params)
        bools = [i for i, f in enumerate(fields) if f.type in BOOLEAN_TYPES]
        dates = [i for i, f in enumerate(fields) if f.type in ("date", "datetime")]
        names = [f.name for f in fields]
        records = []
        for row in rows:
            rec = dict(zip(names, row, strict=True))
            for i in bools:
                if row[i] is not None:
                    rec[names[i]] = bool(row[i])
            for i in dates:
                if row[i] is not None:
                    rec[names[i]] = epoch_ms(row[i])
            records.append(rec)
        return json_response(200, envelope({"records": records}))

    def _value(self, f: Field, value: Any) -> Any:
        if value is None:
            return None
        if f.type in BOOLEAN_TYPES:
            if isinstance(value, bool):
                return int(value)
            if str(value).lower() in ("true", "false"):
                return int(str(value).lower() == "true")
            raise _GsError(400, "GSOBJ_1008", f"{f.name}: expected a boolean")
        if f.type in NUMBER_TYPES:
            try:
                return float(value)
            except (TypeError, ValueError) as exc:
                raise _GsError(400, "GSOBJ_1008", f"{f.name}: expected a number") from exc
        if f.type == "datetime":
            if isinstance(value, int) and not isinstance(value, bool):
                # Epoch milliseconds, the form answers carry.
                return gs_text(dt.datetime.fromtimestamp(value / 1000, dt.UTC))
            try:
                return gs_text(parse_any_datetime(str(value)))
            except ValueError as exc:
                raise _GsError(
                    400, "GSOBJ_1005", f"Invalid dateTime format ({f.name}= {value})"
                ) from exc
        return str(value)

    def _where(self, od: ObjectDef, where: Any) -> tuple[str, list[Any]]:
        if not where:
            return "", []
        if not isinstance(where, dict) or not isinstance(where.get("conditions"), list):
            raise _GsError(400, "GS_INVALID_REQUEST", "where needs a list of conditions")
        by_alias: dict[str, tuple[str, list[Any]]] = {}
        aliases: list[str] = []
        for i, cond in enumerate(where["conditions"]):
            if not isinstance(cond, dict):
                raise _GsError(400, "GS_INVALID_REQUEST", "each condition must be an object")
            alias = str(cond.get("alias") or chr(ord("A") + i))
            f = self._field(od, cond.get("name"))
            op = str(cond.get("operator", "")).upper()
            raw = cond.get("value", [])
            values = raw if isinstance(raw, list) else [raw]
            col = quote(f.name)
            params: list[Any]
            if op in _OPS:
                if len(values) != 1:
                    raise _GsError(400, "GS_INVALID_REQUEST", f"{op} takes one value")
                value = self._value(f, values[0])
                if value is None:
                    sql = f"{col} IS NULL" if op == "EQ" else f"{col} IS NOT NULL"
                    params = []
                elif op == "NE":
                    sql, params = f"({col} IS NULL OR {col} != ?)", [value]
                else:
                    sql, params = f"{col} {_OPS[op]} ?", [value]
            elif op in ("IN", "NOT_IN"):
                params = [self._value(f, v) for v in values]
                if not params:
                    raise _GsError(400, "GS_INVALID_REQUEST", f"{op} needs values")
                marks = ", ".join("?" for _ in params)
                sql = (
                    f"{col} IN ({marks})"
                    if op == "IN"
                    else f"({col} IS NULL OR {col} NOT IN ({marks}))"
                )
            elif op in ("CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH"):
                if len(values) != 1:
                    raise _GsError(400, "GS_INVALID_REQUEST", f"{op} takes one value")
                text = str(values[0]).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                pattern = {
                    "CONTAINS": f"%{text}%",
                    "NOT_CONTAINS": f"%{text}%",
                    "STARTS_WITH": f"{text}%",
                    "ENDS_WITH": f"%{text}",
                }[op]
                neg = "NOT " if op == "NOT_CONTAINS" else ""
                sql, params = f"{col} {neg}LIKE ? ESCAPE '\\'", [pattern]
            elif op in ("IS_NULL", "IS_NOT_NULL"):
                sql, params = f"{col} IS {'NOT ' if op == 'IS_NOT_NULL' else ''}NULL", []
            elif op == "BTW":
                if len(values) != 2:
                    raise _GsError(400, "GS_INVALID_REQUEST", "BTW takes two values")
                params = [self._value(f, values[0]), self._value(f, values[1])]
                sql = f"{col} BETWEEN ? AND ?"
            else:
                raise _GsError(400, "GS_INVALID_REQUEST", f"Unsupported operator {op}")
            by_alias[alias.upper()] = (sql, params)
            aliases.append(alias.upper())
        expression = where.get("expression") or " AND ".join(aliases)
        return self._expression(str(expression), by_alias)

    @staticmethod
    def _expression(
        expression: str, by_alias: dict[str, tuple[str, list[Any]]]
    ) -> tuple[str, list[Any]]:
        """Translate ``A AND (B OR NOT C)`` over condition aliases into SQL."""
        out: list[str] = []
        params: list[Any] = []
        pos = 0
        depth = 0
        expect_operand = True
        text = expression.strip()
        while pos < len(text):
            m = _EXPR_TOKEN.match(text, pos)
            if m is None:
                raise _GsError(400, "GS_INVALID_REQUEST", f"Invalid expression: {expression}")
            tok = m.group(1).upper()
            pos = m.end()
            if tok == "(":
                depth += 1
                out.append("(")
            elif tok == ")":
                depth -= 1
                if depth < 0 or expect_operand:
                    raise _GsError(400, "GS_INVALID_REQUEST", f"Invalid expression: {expression}")
                out.append(")")
            elif tok in ("AND", "OR"):
                if expect_operand:
                    raise _GsError(400, "GS_INVALID_REQUEST", f"Invalid expression: {expression}")
                out.append(tok)
                expect_operand = True
            elif tok == "NOT":
                out.append("NOT")
            else:
                if tok not in by_alias or not expect_operand:
                    raise _GsError(
                        400, "GS_INVALID_REQUEST", f"Invalid expression: unknown alias {tok}"
                    )
                sql, p = by_alias[tok]
                out.append(f"({sql})")
                params.extend(p)
                expect_operand = False
        if depth != 0 or expect_operand:
            raise _GsError(400, "GS_INVALID_REQUEST", f"Invalid expression: {expression}")
        return " ".join(out), params

    # -- writes ------------------------------------------------------------------------------
    def update(self, obj_name: str, keys_param: str, body: dict[str, Any]) -> Response:
        """Update records found by ``keys``; per-record errors in ``data.errors``."""
        od = self._object(obj_name)
        keys = [k.strip() for k in keys_param.split(",") if k.strip()]
        if not keys or len(keys) > 3:
            raise _GsError(400, "GS_INVALID_REQUEST", "keys must name one to three fields")
        key_fields = [self._field(od, k) for k in keys]
        records = body.get("records")
        if not isinstance(records, list) or not records:
            raise _GsError(400, "GS_INVALID_REQUEST", "records must be a non-empty list")
        if len(records) > MAX_WRITE:
            raise _GsError(
                400, "GS_LIMIT_EXCEEDED", f"At most {MAX_WRITE} records can be written per call"
            )
        table = self.store.table(GAINSIGHT, od.name)
        errors: list[dict[str, Any]] = []
        written: list[dict[str, Any]] = []
        updates: list[tuple[str, dict[str, Any]]] = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise _GsError(400, "GS_INVALID_REQUEST", "each record must be an object")
            try:
                if any(k.name not in rec for k in key_fields):
                    raise _GsError(400, "GS_INVALID_REQUEST", "record lacks a key field")
                conds = " AND ".join(f"{quote(k.name)} = ?" for k in key_fields)
                matches = self.store.fetchall(
                    f'SELECT "Gsid" FROM {table} WHERE {conds}',
                    [self._value(k, rec[k.name]) for k in key_fields],
                )
                if not matches:
                    raise _GsError(404, "GS_RECORD_NOT_FOUND", "No record matches the keys")
                stored: dict[str, Any] = {}
                for name, value in rec.items():
                    if name in keys:
                        continue
                    try:
                        col, val, err = self.org.coerce(od, name, value)
                    except UnknownFieldError as exc:
                        raise _GsError(400, "GS_INVALID_FIELD", str(exc)) from exc
                    if err is not None:
                        raise _GsError(400, "GS_INVALID_VALUE", err.message)
                    stored[col] = val
                if self.faults.lock_row():
                    raise _GsError(409, "GS_RECORD_LOCKED", "Record is locked, retry later")
            except _GsError as exc:
                errors.append(
                    {
                        "index": i,
                        "errorCode": exc.code,
                        "errorDesc": exc.desc,
                        "record": {k: rec.get(k) for k in keys},
                    }
                )
                continue
            for (gsid_,) in matches:
                updates.append((gsid_, stored))
                written.append({"Gsid": gsid_, **{k: rec[k] for k in keys if k != "Gsid"}})
        self.org.apply_updates(od.name, updates)
        return json_response(
            200, envelope({"count": len(written), "errors": errors, "records": written})
        )

    def insert(self, obj_name: str, body: dict[str, Any]) -> Response:
        """Insert records (at most 50)."""
        od = self._object(obj_name)
        records = body.get("records")
        if not isinstance(records, list) or not records or len(records) > MAX_WRITE:
            raise _GsError(400, "GS_INVALID_REQUEST", f"records must list 1 to {MAX_WRITE}")
        out = []
        errors = []
        for i, rec in enumerate(records):
            stored: dict[str, Any] = {}
            problem = None
            for name, value in rec.items():
                try:
                    col, val, err = self.org.coerce(od, name, value)
                except UnknownFieldError as exc:
                    raise _GsError(400, "GS_INVALID_FIELD", str(exc)) from exc
                if err is not None:
                    problem = err.message
                stored[col] = val
            if problem:
                errors.append({"index": i, "errorCode": "GS_INVALID_VALUE", "errorDesc": problem})
                continue
            out.append({"Gsid": self.org.insert(od.name, stored)})
        return json_response(200, envelope({"count": len(out), "errors": errors, "records": out}))

    def describe(self, obj_name: str) -> Response:
        """The fields of an object, Data Management style."""
        od = self._object(obj_name)
        return json_response(
            200,
            envelope(
                [
                    {
                        "objectName": od.name,
                        "objectLabel": od.label,
                        "fields": [
                            {
                                "fieldName": f.name,
                                "label": f.label,
                                "dataType": f.type.upper(),
                                "readOnly": not f.updateable,
                                "picklistValues": list(f.picklist),
                            }
                            for f in od.fields.values()
                        ],
                    }
                ]
            ),
        )
