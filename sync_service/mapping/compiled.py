"""``to_row`` compiled per mapping: the hot path of every sync, millions of calls a run.

The mapping is known once loaded, so rather than interpret it for every record, we generate
one Python function per entity mapping: local variables instead of loops, the common value
shapes checked inline (a text field that already holds short text, a checkbox that already
holds a bool), and the row built as a single dict display. The generated code only contains
names the loader has validated (API names, canonical names, feature names) and reaches every
value through the namespace, never through formatted literals.

Anything off the happy path (no id, a deleted or malformed record, an empty required field,
a value a converter refuses) goes to ``EntityMapping.to_row_checked``, the field-by-field
reference implementation, which returns the same row or raises the precise ``RecordError``.
A property test holds the two to the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from canonical.model import CANONICAL_FIELDS
from connectors.base import DELETED_KEY, INVALID_KEY
from sync_service.mapping.convert import MAX_STRING, _aware, to_datetime

if TYPE_CHECKING:
    from sync_service.mapping.model import EntityMapping, FieldMapping


RowFunction = Callable[[Mapping[str, Any]], dict[str, Any]]

_MAX_ID = 64


def _field_code(var: str, index: str, f: FieldMapping, ns: dict[str, Any]) -> list[str]:
    """Lines that leave the converted value of ``f`` in ``var`` (or hand over to the slow path)."""
    ns[f"C{index}"] = f.convert
    ns[f"D{index}"] = f.default
    lines = [f"    {var} = get({f.crm_field!r})"]
    # The common shape of each type first, inline; anything else goes through the converter.
    if f.plain and f.type == "string":
        lines += [
            f"    if {var}.__class__ is str and 0 < len({var}) <= {MAX_STRING}:",
            "        pass",
        ]
    elif f.transform_only and f.type == "string":
        ops = "".join(f".{op}()" for op in f.transform)
        lines += [
            # // 3: case mapping can lengthen text (upper('ﬃ') == 'FFI'); the cut stays exact
            f"    if {var}.__class__ is str and {var} and len({var}) <= {MAX_STRING // 3}:",
            f"        {var} = {var}{ops} or None",
        ]
    elif f.plain and f.type == "boolean":
        lines += [f"    if {var}.__class__ is bool:", "        pass"]
    elif f.plain and f.type == "datetime" and not f.is_extra:
        lines += [
            f"    if {var}.__class__ is str and {var}:",
            f"        {var} = fromiso({var})",
            f"        if {var}.tzinfo is not UTC:",
            f"            {var} = aware({var})",
        ]
    elif f.plain and f.type == "date" and not f.is_extra:
        lines += [
            f"    if {var}.__class__ is str and len({var}) == 10:",
            f"        {var} = date_fromiso({var})",
        ]
    else:
        lines += ["    if False:", "        pass"]
    lines.append(f"    elif {var} is None or {var} == '':")
    if f.required and f.default is None:
        lines.append("        return slow(raw)")
    else:
        lines.append(f"        {var} = D{index}")
    lines += ["    else:", f"        {var} = C{index}({var})"]
    return lines


def compile_to_row(em: EntityMapping) -> RowFunction:
    """Generate the fast ``to_row`` of ``em``."""
    ns: dict[str, Any] = {
        "slow": em.to_row_checked,
        "UTC": UTC,
        "aware": _aware,
        "to_datetime": to_datetime,
        "fromiso": datetime.fromisoformat,
        "date_fromiso": date.fromisoformat,
        "ValueError": ValueError,
        "TypeError": TypeError,
        "OverflowError": OverflowError,
        "ArithmeticError": ArithmeticError,
    }
    body = [
        "def to_row(raw):",
        "    get = raw.get",
        f"    rid = get({em.primary_key!r})",
        f"    if rid.__class__ is not str or not rid or len(rid) > {_MAX_ID}"
        f" or get({DELETED_KEY!r}) or get({INVALID_KEY!r}):",
        "        return slow(raw)",
        "    try:",
    ]
    inner: list[str] = []
    row_items: list[str] = ["'id': rid"]
    mapped = {f.name for f in em.fields}
    row_items += [f"{name!r}: None" for name in CANONICAL_FIELDS[em.entity] if name not in mapped]
    for i, f in enumerate(em.fields):
        inner += _field_code(f"v{i}", f"{i}", f, ns)
        row_items.append(f"{f.name!r}: v{i}")
    extra_items: list[str] = []
    for i, f in enumerate(em.extra_fields):
        inner += _field_code(f"x{i}", f"x{i}", f, ns)
        extra_items.append(f"{f.name!r}: x{i}")
    if em.crm_fields:
        crm = ", ".join(f"{name!r}: get({name!r})" for name in em.crm_fields)
        extra_items.append(f"'_crm': {{{crm}}}")
    if em.replication_key:
        inner += [
            f"    ts = get({em.replication_key!r})",
            "    if ts.__class__ is str and ts:",
            "        ts = fromiso(ts)",
            "        if ts.tzinfo is not UTC:",
            "            ts = aware(ts)",
            "    elif ts is None or ts == '':",
            "        ts = None",
            "    else:",
            "        ts = to_datetime(ts)",
        ]
    else:
        inner.append("    ts = None")
    body += ["    " + line for line in inner]
    body += [
        "    except (ValueError, TypeError, OverflowError, ArithmeticError):",
        "        return slow(raw)",
        "    return {" + ", ".join(row_items) + ", 'extra': {" + ", ".join(extra_items) + "},"
        " 'source_updated_at': ts, 'deleted': False, 'merged_into': None}",
    ]
    source = "\n".join(body) + "\n"
    code = compile(source, f"<to_row {em.system}:{em.entity.value}>", "exec")
    exec(code, ns)  # noqa: S102 - generated from validated names only (see module docstring)
    fn: RowFunction = ns["to_row"]
    fn.__doc__ = source  # what ran, for debugging
    return fn
