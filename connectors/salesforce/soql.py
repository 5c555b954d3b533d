"""Every SOQL statement the connector sends is built here.

Values go through :func:`simple_salesforce.format_soql`, which quotes and escapes them;
datetimes are made aware UTC first (format_soql reads naive ones as local time). Identifiers
(object and field names from the mappings) cannot be quoted in SOQL, so they are validated
against the API-name grammar and only then inserted with ``:literal``.

format_soql drops sub-second digits. For the lower bound that rounds down, which is safe (a few
rows are read twice; upserts make that harmless). The upper bound ``until`` is rounded *up* to the
next whole second first, so an edit made in the same second as the run's start is not left for
the next run; the cursor may then sit up to a second past ``until``, which the caller's overlap
window covers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from simple_salesforce.format import format_soql

from canonical.errors import MappingError
from connectors.base import Cursor, FieldFilter, StreamSpec

#: One API-name segment: letters, digits, underscores; custom and namespaced names included.
_NAME = r"[A-Za-z][A-Za-z0-9_]{0,79}"
_OBJECT_RE = re.compile(rf"^{_NAME}$")
_FIELD_RE = re.compile(rf"^{_NAME}(\.{_NAME}){{0,4}}$")
_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE"})


def object_name(name: str) -> str:
    """Return ``name`` if it is a valid sObject API name, else raise MappingError."""
    if not isinstance(name, str) or not _OBJECT_RE.match(name) or name[-2:] == "__":
        msg = f"'{name}' is not a valid Salesforce object API name (letters, digits, underscores)"
        raise MappingError(msg)
    return name


def field_name(name: str) -> str:
    """Return ``name`` if it is a valid field API name or relationship path, else raise."""
    if not isinstance(name, str) or not _FIELD_RE.match(name):
        msg = (
            f"'{name}' is not a valid Salesforce field API name "
            "(letters, digits, underscores; relationship paths joined by '.')"
        )
        raise MappingError(msg)
    return name


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values are refused (they would be read as local time)."""
    if value.tzinfo is None or value.utcoffset() is None:
        msg = (
            f"naive datetime {value.isoformat()} given to a SOQL query: pass an aware UTC datetime"
        )
        raise ValueError(msg)
    return value.astimezone(UTC)


def ceil_second(value: datetime) -> datetime:
    """``value`` in UTC rounded up to a whole second (format_soql would truncate it)."""
    value = utc(value)
    if value.microsecond:
        value = value.replace(microsecond=0) + timedelta(seconds=1)
    return value


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str | int | float | bool | date) or value is None:
        return value
    msg = f"filter value of type {type(value).__name__} cannot be used in SOQL"
    raise MappingError(msg)


def filter_clause(flt: FieldFilter) -> str:
    """One structured filter as a SOQL condition, values quoted by format_soql."""
    name = field_name(flt.field)
    op = flt.operator.upper() if isinstance(flt.operator, str) else flt.operator
    if op not in _OPERATORS:
        msg = f"filter on '{name}': operator '{flt.operator}' is not one of {sorted(_OPERATORS)}"
        raise MappingError(msg)
    values = [_value(v) for v in flt.values]
    if op in ("IN", "NOT IN"):
        if not values:
            msg = f"filter on '{name}': {op} needs at least one value"
            raise MappingError(msg)
        return format_soql("{name:literal} " + op + " {values}", name=name, values=values)
    if len(values) != 1:
        msg = f"filter on '{name}': operator {op} takes exactly one value, got {len(values)}"
        raise MappingError(msg)
    return format_soql("{name:literal} " + op + " {value}", name=name, value=values[0])


def select_list(fields: Iterable[str]) -> str:
    """Validated, de-duplicated field list in first-seen order."""
    seen: dict[str, None] = {}
    for name in fields:
        seen.setdefault(field_name(name), None)
    return ", ".join(seen)


def cursor_condition(replication_key: str, primary_key: str, since: Cursor) -> str:
    """Rows strictly after ``since`` in (replication_key, primary_key) order.

    An empty ``record_id`` means every row at exactly ``since.updated_at`` is still to come.
    """
    rk, pk = field_name(replication_key), field_name(primary_key)
    ts = utc(since.updated_at)
    if not since.record_id:
        return format_soql("{rk:literal} >= {ts}", rk=rk, ts=ts)
    return format_soql(
        "({rk:literal} > {ts} OR ({rk:literal} = {ts} AND {pk:literal} > {rid}))",
        rk=rk,
        pk=pk,
        ts=ts,
        rid=since.record_id,
    )


def where_clause(
    spec: StreamSpec, since: Cursor | None, until: datetime | None, extra: Sequence[str] = ()
) -> str:
    """The WHERE clause (with the keyword) of a stream read, or an empty string."""
    parts: list[str] = []
    if spec.replication_key is not None:
        if since is not None:
            parts.append(cursor_condition(spec.replication_key, spec.primary_key, since))
        if until is not None:
            rk = field_name(spec.replication_key)
            parts.append(format_soql("{rk:literal} <= {until}", rk=rk, until=ceil_second(until)))
    parts.extend(filter_clause(f) for f in spec.filters)
    parts.extend(extra)
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def read_query(
    spec: StreamSpec,
    fields: Sequence[str],
    since: Cursor | None,
    until: datetime | None,
    *,
    ordered: bool = True,
) -> str:
    """SELECT for a stream read: the compound cursor, the ``until`` cap, the filters, ordered.

    Bulk API 2.0 jobs are built with ``ordered=False``: ORDER BY disables PK chunking there.
    """
    obj = object_name(spec.object_name)
    soql = f"SELECT {select_list(fields)} FROM {obj}{where_clause(spec, since, until)}"
    if ordered:
        order = [spec.replication_key] if spec.replication_key else []
        order.append(spec.primary_key)
        soql += " ORDER BY " + ", ".join(field_name(f) for f in order)
    return soql


def count_query(spec: StreamSpec, since: Cursor | None, until: datetime | None) -> str:
    """``SELECT COUNT()`` over the same rows a read would return."""
    obj = object_name(spec.object_name)
    return f"SELECT COUNT() FROM {obj}{where_clause(spec, since, until)}"


def ids_query(spec: StreamSpec, *, ordered: bool = True) -> str:
    """The ids of every live row matching the stream's filters (for reconciliation)."""
    obj = object_name(spec.object_name)
    pk = field_name(spec.primary_key)
    soql = f"SELECT {pk} FROM {obj}{where_clause(spec, None, None)}"
    return soql + (f" ORDER BY {pk}" if ordered else "")


def ids_count_query(spec: StreamSpec) -> str:
    """``SELECT COUNT()`` of the live rows :func:`ids_query` returns."""
    return f"SELECT COUNT() FROM {object_name(spec.object_name)}{where_clause(spec, None, None)}"


def keys_query(object_api_name: str, key_field: str, keys: Sequence[str]) -> str:
    """``SELECT Id, <key> FROM <object> WHERE <key> IN (...)``: records by external key."""
    obj, key = object_name(object_api_name), field_name(key_field)
    return format_soql(f"SELECT Id, {key} FROM {obj} WHERE {key} IN {{}}", list(keys))
