"""Value converters: CRM values (JSON or Bulk CSV strings) to canonical Python values.

Each mapped field gets one converter, built once when the mapping loads, so the hot path of
``EntityMapping.to_row`` is a dict lookup and one call per field. A converter raises
``ValueError`` (or ``TypeError``) for a value it cannot use; the caller turns that into a
``RecordError`` naming the field.

Accepted inputs, by canonical type:

* ``string``: any scalar (numbers and booleans are rendered as text); cut to 255 characters,
  the width of the store's string columns, rather than quarantining a long title.
* ``integer``: int, integral float, or a decimal string (``"12"``, ``"12.0"``); never a boolean.
* ``number``: int, float, or a numeric string; never a boolean.
* ``boolean``: bool, 0/1, or ``true/false/yes/no/1/0`` in any case (Bulk API CSV gives text).
* ``date``: ``YYYY-MM-DD``; a datetime is reduced to its UTC date.
* ``datetime``: ISO 8601 (``2024-01-31T12:00:00.000+0000``, ``...Z``, naive = UTC) or epoch
  seconds/milliseconds; always returned aware, in UTC.

Empty strings count as missing (Bulk API CSV writes null as an empty field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from canonical.model import FieldType

Converter = Callable[[Any], Any]

#: Width of the store's string columns (``sa.String(255)``).
MAX_STRING = 255

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_MISSING = object()


def to_string(value: Any) -> str:
    """Text, cut to :data:`MAX_STRING` characters."""
    if type(value) is str:
        return value if len(value) <= MAX_STRING else value[:MAX_STRING]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)[:MAX_STRING]
    if isinstance(value, datetime):
        return _aware(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    msg = f"expected text, got {type(value).__name__}"
    raise ValueError(msg)


def to_integer(value: Any) -> int:
    """A whole number; fractional values are refused rather than silently rounded."""
    t = type(value)
    if t is int:
        return int(value)
    if t is float:
        if value.is_integer():
            return int(value)
        msg = "is not a whole number"
        raise ValueError(msg)
    if t is str:
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = float(text)
            if number.is_integer():
                return int(number)
            raise
    msg = f"expected a whole number, got {t.__name__}"
    raise ValueError(msg)


def to_number(value: Any) -> float:
    """A float (currency, percent and double fields)."""
    t = type(value)
    if t is float or t is int:
        return float(value)
    if t is str:
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            msg = "is not a finite number"
            raise ValueError(msg)
        return number
    msg = f"expected a number, got {t.__name__}"
    raise ValueError(msg)


def to_boolean(value: Any) -> bool:
    """A checkbox: bool, 0/1, or the usual words."""
    t = type(value)
    if t is bool:
        return bool(value)
    if t is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif t is int and value in (0, 1):
        return bool(value)
    msg = "is not a yes/no value"
    raise ValueError(msg)


def _aware(value: datetime) -> datetime:
    # Naive timestamps from a CRM are UTC by convention (Salesforce and Gainsight both say so).
    tz = value.tzinfo
    if tz is UTC:
        return value
    if tz is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_datetime(value: Any) -> datetime:
    """An aware UTC datetime."""
    t = type(value)
    if t is str:
        return _aware(datetime.fromisoformat(value.strip()))
    if t is datetime:
        return _aware(value)
    if t is int or t is float:
        # Epoch milliseconds (Gainsight) or seconds: no plausible date needs 1e11 seconds.
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OSError, OverflowError):  # the platform's time_t cannot hold it
            msg = "is out of range for a timestamp"
            raise ValueError(msg) from None
    if isinstance(value, datetime):  # e.g. ruamel's TimeStamp
        return _aware(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    msg = f"expected a timestamp, got {t.__name__}"
    raise ValueError(msg)


def to_date(value: Any) -> date:
    """A calendar date; a timestamp becomes its UTC date."""
    t = type(value)
    if t is str:
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
        return to_datetime(text).date()
    if t is date:
        return value  # type: ignore[no-any-return]
    return to_datetime(value).date()


BASE_CONVERTERS: dict[FieldType, Converter] = {
    "string": to_string,
    "integer": to_integer,
    "number": to_number,
    "boolean": to_boolean,
    "date": to_date,
    "datetime": to_datetime,
}


def json_safe(value: Any) -> Any:
    """Dates and datetimes as ISO text, for the ``extra`` JSON column."""
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return value


def _transformer(steps: Sequence[str]) -> Callable[[str], str]:
    table: dict[str, Callable[[str], str]] = {
        "strip": str.strip,
        "lower": str.lower,
        "upper": str.upper,
    }
    ops = [table[s] for s in steps]

    def apply(text: str) -> str:
        for op in ops:
            text = op(text)
        return text

    return apply


class UnmappedValueError(ValueError):
    """A value a strict value map does not list."""


def build_converter(
    ftype: FieldType,
    *,
    value_map: Mapping[Any, Any] | None = None,
    strict: bool = False,
    transform: Sequence[str] = (),
    json_output: bool = False,
) -> Converter:
    """The converter for one mapped field.

    Args:
        ftype: the canonical type.
        value_map: CRM value -> canonical value (already of ``ftype``); looked up before
            conversion, after ``transform``.
        strict: refuse values the map does not list (otherwise they are converted as they are).
        transform: ``strip``/``lower``/``upper`` applied to text values first.
        json_output: render dates as ISO text (values stored in ``extra``).
    """
    base = BASE_CONVERTERS[ftype]
    if json_output and ftype in ("date", "datetime"):
        inner = base

        def base(value: Any) -> Any:
            return inner(value).isoformat()

    conv = base
    if value_map is not None:
        table = dict(value_map)
        # CRM booleans and numbers arrive as JSON values or as CSV text: accept either spelling.
        for key, val in list(table.items()):
            table.setdefault(to_string(key) if not isinstance(key, str) else key, val)

        def mapped(value: Any) -> Any:
            hit = table.get(value, _MISSING)
            if hit is _MISSING and type(value) is not str:
                hit = table.get(to_string(value), _MISSING)
            if hit is not _MISSING:
                return hit
            if strict:
                msg = "is not in the value map"
                raise UnmappedValueError(msg)
            return base(value)

        conv = mapped
    if transform:
        text_op = _transformer(transform)
        after = conv

        def transformed(value: Any) -> Any:
            if type(value) is str:
                value = text_op(value)
                if not value:  # blank once stripped: missing, like an empty field
                    return None
            return after(value)

        conv = transformed
    return conv


def convert_static(ftype: FieldType, value: Any) -> Any:
    """Convert a value written in the mapping file (a default, a value-map target).

    YAML already types most scalars; this applies the same rules as for CRM values.

    Raises:
        ValueError: when ``value`` is not a valid ``ftype``.
    """
    if value is None:
        return None
    if isinstance(value, bool) and ftype in ("integer", "number"):
        msg = "is a yes/no value, not a number"
        raise ValueError(msg)
    return BASE_CONVERTERS[ftype](value)
