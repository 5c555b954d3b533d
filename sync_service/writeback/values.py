"""Results as CRM field values: one normal form, so that equal values compare equal.

The CRM hands values back in its own shapes (a date as ``"2026-12-01"``, or from Gainsight as
epoch milliseconds ``1796083200000``; a number as ``57`` or ``57.0``; an empty text field as
None; a checkbox from a CSV as ``"true"``); the store keeps Python dates and floats. Both sides
go through :func:`normalise` before any comparison, or a harmless difference in shape would
become a write on every run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from canonical.model import RESULT_FIELDS
from sync_service.mapping.convert import to_date

#: Length of the reason text field (``Advocate_Reason__c``, text 255).
REASON_MAX_LENGTH = 255

#: Results written to a multi-select picklist (values ';'-separated, order immaterial).
MULTI_SELECT_RESULTS = frozenset({"available_for"})

#: Result names in the order they are written and shown.
RESULT_NAMES: tuple[str, ...] = tuple(RESULT_FIELDS)


def normalise(result: str, value: Any) -> Any:
    """The JSON-safe normal form of ``value`` for the result ``result``.

    Strings are stripped (empty is None), booleans are ``bool``, numbers ``float`` (rounded to
    4 places so float noise is no change), dates ``YYYY-MM-DD`` strings.
    """
    if value is None:
        return None
    kind = RESULT_FIELDS.get(result, "string")
    if kind == "boolean":
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "":
                return None
            return text in ("true", "1", "yes")
        return bool(value)
    if kind in ("number", "integer"):
        if isinstance(value, str):
            if not value.strip():
                return None
            value = float(value)
        number = float(value)
        if math.isnan(number):
            return None
        return round(number, 4)
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Gainsight's Read API answers dates in epoch milliseconds: the same day as text.
            return to_date(value).isoformat()
        text = str(value).strip()
        return text[:10] if text else None
    text = str(value).strip()
    if not text:
        return None
    if result in MULTI_SELECT_RESULTS:
        # The CRM answers a multi-select in its picklist's order: the set is the value.
        items = sorted({i.strip() for i in text.split(";") if i.strip()})
        return ";".join(items) or None
    if result == "reason":
        text = text[:REASON_MAX_LENGTH]
    return text


def same(result: str, a: Any, b: Any) -> bool:
    """Whether two normalised values of ``result`` are the same value in the CRM.

    A number field with scale 0 stores 57.3 as 57: an integral value on one side matches the
    other side rounded, so the CRM's own rounding is not mistaken for a person's edit.
    """
    if a is None or b is None:
        return a is None and b is None
    kind = RESULT_FIELDS.get(result, "string")
    if kind in ("number", "integer") and isinstance(a, float) and isinstance(b, float):
        return _same_number(a, b)
    return bool(a == b)


def crm_values(extra: Any) -> dict[str, Any]:
    """The CRM's current values of the fields the service writes, as the sync stored them.

    A stored row's ``extra['_crm']``; empty when the row has none.
    """
    crm = extra.get("_crm") if isinstance(extra, dict) else None
    return crm if isinstance(crm, dict) else {}


def same_as_written(read: Any, written: Any) -> bool:
    """Whether a value read from the CRM is the value the service last wrote to that field.

    Without the result's name: the written value (already normal) says what kind it is. Used to
    tell the echo of the service's own write from a person's edit (sync.changes).
    """
    if isinstance(read, str) and not read.strip():
        read = None
    if read is None or written is None:
        return read is None and written is None
    if _is_number(read) and _is_number(written):
        return _same_number(float(read), float(written))
    if isinstance(read, str) and isinstance(written, str):
        # a multi-select comes back in the picklist's order; it was written sorted
        return read.strip() == written or (";" in written and _items(read) == _items(written))
    return bool(read == written)


def _items(text: str) -> set[str]:
    return {i.strip() for i in text.split(";") if i.strip()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_number(a: float, b: float) -> bool:
    if math.isclose(a, b, abs_tol=1e-4):
        return True
    if a.is_integer() and not b.is_integer():
        return a == _half_up(b)
    if b.is_integer() and not a.is_integer():
        return b == _half_up(a)
    return False


def _half_up(x: float) -> float:
    # Salesforce rounds half away from zero; Python's round() rounds half to even.
    return float(math.copysign(math.floor(abs(x) + 0.5), x))


def desired_values(evaluation: Mapping[Any, Any]) -> dict[str, Any]:
    """Result name -> normalised value for one ``evaluations`` row (reason cut to 255)."""
    return {name: normalise(name, evaluation.get(name)) for name in RESULT_NAMES}


def truthy(value: Any) -> bool:
    """Whether a CRM checkbox value (``True``, ``"true"``, ``1``) is set."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
