"""Request bodies for Gainsight's query API, built in one module.

``POST /v1/data/objects/query/{object}`` takes (Gainsight's Company and custom object Read API
documentation)::

    {"select": ["Gsid", "Name", ...],
     "where": {"conditions": [{"name": "ModifiedDate", "alias": "A", "value": [...],
                               "operator": "GTE"}, ...],
               "expression": "A AND B"},
     "orderBy": {"ModifiedDate": "asc", "Gsid": "asc"},
     "limit": 5000, "offset": 0}

Identifiers come from mappings and are validated here; values only ever travel as JSON values
inside ``value`` lists, never spliced into text. Date-time filter values use the form the
documentation shows (``yyyy-MM-dd HH:mm:ss``, UTC); answers carry epoch milliseconds.

Incremental windows (see :mod:`connectors.base`): a stream reads records strictly after a
:class:`~connectors.base.Cursor` ``(ts, id)`` and with ``ts <= until``. Since filter values have
whole-second precision, the server-side filter is ``ModifiedDate >= floor(ts)`` and
``ModifiedDate <= ceil(until)``; the stream drops what falls outside the exact window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from canonical.errors import MappingError
from connectors.base import FieldFilter

#: A field name (``Name``, ``Renewal_Date__gc``) or a lookup path (``Company_ID__gr.Name``).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127}){0,3}$")
#: Object names are plain identifiers.
_OBJECT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

_OPERATORS = {"=": "EQ", "!=": "NE", "<": "LT", "<=": "LTE", ">": "GT", ">=": "GTE", "IN": "IN"}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FILTER_FORMAT = "%Y-%m-%d %H:%M:%S"


def check_identifier(name: str, *, what: str = "field") -> str:
    """Return ``name`` if it is a valid Gainsight field name or lookup path, else raise."""
    if not isinstance(name, str) or not _IDENT.match(name):
        msg = f"gainsight {what} name {name!r} is not a valid field name"
        raise MappingError(msg)
    return name


def check_object(name: str) -> str:
    """Return ``name`` if it is a valid Gainsight object name, else raise."""
    if not isinstance(name, str) or not _OBJECT.match(name):
        msg = f"gainsight object name {name!r} is not a valid object name"
        raise MappingError(msg)
    return name


def format_datetime(value: datetime) -> str:
    """A filter value for a DATETIME field: ``yyyy-MM-dd HH:mm:ss`` in UTC."""
    if value.tzinfo is None:
        msg = "naive datetime in a Gainsight filter; pass an aware UTC datetime"
        raise ValueError(msg)
    return value.astimezone(UTC).strftime(FILTER_FORMAT)


def filter_value(value: Any) -> Any:
    """A mapping's filter value as JSON: date-times and dates as the text filters take.

    A mapping may filter on a date (``2024-01-31``) or a date-time; JSON has neither, and the
    query API reads ``yyyy-MM-dd HH:mm:ss`` and ``yyyy-MM-dd``. A naive date-time is UTC.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return format_datetime(aware)
    if isinstance(value, date):
        return value.isoformat()
    return value


def floor_second(value: datetime) -> datetime:
    """``value`` without its sub-second part."""
    return value.replace(microsecond=0)


def ceil_second(value: datetime) -> datetime:
    """``value`` rounded up to a whole second."""
    return value if value.microsecond == 0 else value.replace(microsecond=0) + timedelta(seconds=1)


def parse_datetime(value: Any) -> datetime | None:
    """An answer's date-time (epoch milliseconds or ISO text) as an aware UTC datetime.

    Returns None for None; raises ValueError for anything unreadable.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        msg = "boolean is not a date-time"
        raise ValueError(msg)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            msg = "not a finite number"
            raise ValueError(msg)
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d{10,}", text):
            return EPOCH + timedelta(milliseconds=int(text))
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    msg = f"{type(value).__name__} is not a date-time"
    raise ValueError(msg)


@dataclass
class Conditions:
    """A where clause under construction: conditions get aliases A, B, ... and are ANDed."""

    items: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> Conditions:
        """No conditions yet."""
        return cls([])

    def add(self, name: str, operator: str, values: Sequence[Any]) -> Conditions:
        """Add ``name operator values``."""
        alias = _alias(len(self.items))
        self.items.append(
            {
                "name": check_identifier(name),
                "alias": alias,
                "value": [filter_value(v) for v in values],
                "operator": operator,
            }
        )
        return self

    def add_filter(self, flt: FieldFilter) -> Conditions:
        """Add a mapping's structured filter, translated to Gainsight operators."""
        op = flt.operator
        if op in _OPERATORS:
            return self.add(flt.field, _OPERATORS[op], flt.values)
        if op == "NOT IN":
            # NE per value keeps to the operators every Gainsight field type documents.
            for v in flt.values:
                self.add(flt.field, "NE", [v])
            return self
        if op == "LIKE":
            (pattern,) = flt.values
            text = str(pattern)
            inner = text.strip("%")
            if "%" in inner or "_" in inner:
                msg = f"gainsight filter on {flt.field}: LIKE supports only 'x%', '%x' and '%x%'"
                raise MappingError(msg)
            if text.startswith("%") and text.endswith("%"):
                return self.add(flt.field, "CONTAINS", [inner])
            if text.endswith("%"):
                return self.add(flt.field, "STARTS_WITH", [inner])
            if text.startswith("%"):
                return self.add(flt.field, "ENDS_WITH", [inner])
            return self.add(flt.field, "EQ", [inner])
        msg = f"gainsight filter on {flt.field}: operator {op!r} is not supported"
        raise MappingError(msg)

    def where(self) -> dict[str, Any] | None:
        """The ``where`` object, or None when there is no condition."""
        if not self.items:
            return None
        return {
            "conditions": self.items,
            "expression": " AND ".join(c["alias"] for c in self.items),
        }


def _alias(n: int) -> str:
    # A..Z, then AA, AB, ...: more conditions than letters is unlikely but must not collide.
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def query_body(
    select: Sequence[str],
    conditions: Conditions,
    *,
    order_by: Sequence[str],
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """A complete query body (fields validated, ascending order on ``order_by``)."""
    body: dict[str, Any] = {"select": [check_identifier(f) for f in dict.fromkeys(select)]}
    where = conditions.where()
    if where:
        body["where"] = where
    body["orderBy"] = {check_identifier(f): "asc" for f in order_by}
    body["limit"] = limit
    body["offset"] = offset
    return body


def incremental_conditions(
    replication_key: str,
    lower: datetime | None,
    until: datetime,
    filters: Sequence[FieldFilter] = (),
) -> Conditions:
    """``replication_key >= lower`` (whole seconds) and ``<= ceil(until)``, plus filters."""
    cond = Conditions.empty()
    if lower is not None:
        cond.add(replication_key, "GTE", [format_datetime(floor_second(lower))])
    cond.add(replication_key, "LTE", [format_datetime(ceil_second(until))])
    for flt in filters:
        cond.add_filter(flt)
    return cond
